// Shared by the browser tests: serves dist/, drives Debian's Chromium headless with WebGPU
// (SwiftShader, Vulkan on the CPU), forwards the page's console into the test output, and
// runs the native command line for the numbers a page must match.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { createServer, request } from 'node:http';
import { serve } from '../../tools/serve.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const DIST = process.env.CLIPAG_DIST ?? 'dist';
const CLIPAG_BIN = process.env.CLIPAG_BIN ?? 'target/release/clipag';

// No --disable-gpu: WebGPU must be on. The network flags keep Chromium from calling home.
const ARGS = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Puts a server in front of `server` that asks `intercept(req, res)` first: it answers the
 * request itself (a fault) by returning true; otherwise the request goes through.
 */
async function front(server, intercept) {
  const target = new URL(server.url);
  const proxy = createServer((req, res) => {
    if (intercept(req, res)) return;
    const onward = request({ hostname: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    onward.on('error', () => res.destroy());
    req.pipe(onward);
  });
  await new Promise((listening) => proxy.listen(0, '127.0.0.1', listening));
  return {
    url: `http://127.0.0.1:${proxy.address().port}/`,
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((closed) => proxy.close(closed));
      await server.close();
    },
  };
}

/**
 * Opens `path` of the served site in a fresh browser; everything is closed after test `t`.
 * `before(page)` runs before navigation (to install init scripts, say); `mounts` serves
 * more folders (`{ '/test-models/': dir }`); `dist` serves another build than CLIPAG_DIST;
 * `intercept(req, res)` sees each request first and may answer it itself (see `front`).
 */
export async function openPage(t, path = '', { before, mounts, dist = DIST, intercept } = {}) {
  let server = await serve(dist, 0, mounts);
  if (intercept) server = await front(server, intercept);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  t.after(async () => {
    await browser.close();
    await server.close();
  });
  const page = await browser.newPage();
  page.on('console', (message) => t.diagnostic(`[page ${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => t.diagnostic(`[page error] ${error.message}`));
  if (before) await before(page);
  await page.goto(server.url + path);
  return page;
}

/**
 * Initialises the engine (the wasm module) in the page's own thread, for tests that call its
 * API directly; resolves once `window.engine` holds the module's exports.
 */
export async function loadEngine(page) {
  await page.evaluate(async () => {
    const engine = await import('/pkg/clipag.js');
    const { installWebGpuShim } = await import('/www/webgpu-shim.js');
    installWebGpuShim();
    await engine.default();
    window.engine = engine;
  });
}

/**
 * Loads the model folder served at `base` through the wasm module on WebGPU and takes two
 * forward and backward passes (the first compiles every kernel): the times, the engine's
 * memory and whether the gradient is finite and not zero. For full-size models
 * (tests/browser/vit-b-32.test.mjs, tools/full-size-browser.mjs).
 */
export async function fullSizePass(page, base) {
  await loadEngine(page);
  return page.evaluate(async (base) => {
    const { Model, memoryBytes } = window.engine;
    const t0 = performance.now();
    const bytes = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    const manifest = await (await fetch(base + 'manifest.json')).text();
    const weights = await bytes('weights.safetensors');
    const tokenizer = await bytes('tokenizer.json');
    const t1 = performance.now();
    const model = await Model.load(manifest, weights, tokenizer, 'gpu');
    const t2 = performance.now();
    const size = model.imageSize;
    const pixels = new Float32Array(3 * size * size).map((_, i) => (i % 997) / 997);
    const first = await model.pixelGradient(pixels, size, 'a photo of a cat');
    const t3 = performance.now();
    const second = await model.pixelGradient(pixels, size, 'a photo of a cat');
    const t4 = performance.now();
    return {
      adapter: model.device.adapter, size, weightsMB: weights.length / 1e6, fetchS: (t1 - t0) / 1e3,
      loadS: (t2 - t1) / 1e3, firstStepS: (t3 - t2) / 1e3, stepS: (t4 - t3) / 1e3,
      memoryMB: memoryBytes() / 1e6, cosine: second.cosine, firstCosine: first.cosine,
      finite: first.grad.every(Number.isFinite), nonzero: first.grad.some((g) => g !== 0),
    };
  }, base);
}

/** Waits until `document.body.dataset.state` is one of `states`; returns it. */
export async function waitForState(page, states, timeout = 180_000) {
  await page.waitForFunction((wanted) => wanted.includes(document.body.dataset.state), states, {
    timeout,
  });
  return page.evaluate(() => document.body.dataset.state);
}

/** Runs the native `clipag` with `args`; returns its standard output. */
export function native(args) {
  return execFileSync(CLIPAG_BIN, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
}

/** Runs the native `clipag` with `args` and parses its JSON output. */
export function nativeJson(args) {
  return JSON.parse(native(args));
}

/** The tensors of a safetensors file (f32 and i64, as plain arrays) with their shapes. */
export function readSafetensors(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [start, end] = info.data_offsets;
    const at = 8 + headerLength + start;
    const values = [];
    const size = info.dtype === 'I64' ? 8 : 4;
    for (let i = at; i < 8 + headerLength + end; i += size) {
      values.push(info.dtype === 'I64' ? Number(view.getBigInt64(i, true)) : view.getFloat32(i, true));
    }
    tensors[name] = { shape: info.shape, values };
  }
  return tensors;
}

/** Row `i` of a tensor whose first dimension indexes items. */
export function row(tensor, i) {
  const n = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  return tensor.values.slice(i * n, (i + 1) * n);
}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

/** ||a - b|| / ||b||, over two equally long arrays of numbers. */
export function relativeError(a, b) {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}
