// The page: checks that this browser can compute gradients on WebGPU through the wasm
// engine, and shows what it computed. `document.body.dataset.state` is idle, loading,
// done or error, for people using assistive tools and for the browser tests alike.

import init, { deviceCheck } from '../pkg/clipag.js';
import { installWebGpuShim } from './webgpu-shim.js';

const $ = (id) => document.getElementById(id);

function setState(state, message) {
  document.body.dataset.state = state;
  $('status').textContent = message;
}

/** Why WebGPU is unusable here, or null when an adapter is granted. */
async function webgpuProblem() {
  if (!('gpu' in navigator)) {
    return 'This browser does not offer WebGPU. It is available in Chrome and Edge 113 or later, ' +
      'Safari 26 or later and Firefox 141 or later on Windows; on Linux, Chrome needs the flag ' +
      'chrome://flags/#enable-unsafe-webgpu.';
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) {
    return 'WebGPU is present but no GPU adapter was granted (the GPU may be blocklisted, or ' +
      'hardware acceleration is turned off in the browser settings).';
  }
  return null;
}

function drawGradient(grad) {
  const canvas = $('grad-map');
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(canvas.width, canvas.height);
  const scale = Math.max(...grad.map(Math.abs)) || 1;
  grad.forEach((g, i) => {
    const t = g / scale;
    image.data.set([t > 0 ? 255 : 255 * (1 + t), 255 * (1 - Math.abs(t)), t < 0 ? 255 : 255 * (1 - t), 255], 4 * i);
  });
  ctx.putImageData(image, 0, 0);
}

function show(report) {
  const norm = Math.sqrt(report.grad.reduce((s, g) => s + g * g, 0));
  const { backend, adapter, api, driver } = report.device;
  $('info-backend').textContent = backend === 'gpu' ? `WebGPU (${api})` : 'CPU (burn-flex)';
  $('info-adapter').textContent = [adapter, driver].filter(Boolean).join(' · ') || 'not disclosed by the browser';
  $('info-loss').textContent = report.loss.toPrecision(7);
  $('info-grad').textContent = norm.toPrecision(7);
  $('device-info').hidden = false;
  $('grad-figure').hidden = false;
  drawGradient(report.grad);
  // Kept for automation: the browser tests compare these numbers with a native run.
  window.clipagCheck = report;
}

async function runCheck(backend) {
  setState('loading', backend === 'gpu' ? 'Computing a gradient on WebGPU…' : 'Computing a gradient on the CPU…');
  try {
    show(await deviceCheck(backend));
    setState('done', backend === 'gpu'
      ? 'WebGPU works here: this device computed a forward and backward pass.'
      : 'The CPU computed a forward and backward pass (slow, but it works without WebGPU).');
  } catch (error) {
    setState('error', `The device check failed: ${error.message ?? error}`);
  }
}

async function main() {
  installWebGpuShim();
  setState('loading', 'Loading the engine…');
  try {
    await init();
  } catch (error) {
    setState('error', `The engine (WebAssembly) could not be loaded: ${error.message ?? error}`);
    return;
  }
  $('run-cpu').addEventListener('click', () => {
    $('run-cpu').hidden = true;
    runCheck('cpu');
  });
  const wanted = new URLSearchParams(location.search).get('backend') ?? 'gpu';
  if (wanted === 'gpu') {
    const problem = await webgpuProblem();
    if (problem) {
      setState('error', problem);
      $('run-cpu').hidden = false;
      return;
    }
  }
  await runCheck(wanted);
}

main();
