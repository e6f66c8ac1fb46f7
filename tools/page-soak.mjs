// A long run in the page, its memory sampled (issue 35): the built-in model paints STEPS
// steps in headless Chromium, and every EVERY steps this prints the engine's WebAssembly
// memory, the page's JS heap, the GPU buffers the engine holds (created and not destroyed,
// counted by wrapping WebGPU in the engine's worker) and the resident memory of all of
// Chromium's processes; at the end, the growth after the warm-up (the first 10% of the
// steps). What docs/reliability.md reports. Needs a built site (./build.sh).
//
//   node tools/page-soak.mjs [--steps 1000] [--every 100] [--backend cpu|gpu] [--query 'views=2&patchViews=2']

import { chromium } from 'playwright-core';
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { serve } from './serve.mjs';

const { values: options } = parseArgs({
  options: {
    steps: { type: 'string', default: '1000' },
    every: { type: 'string', default: '100' },
    backend: { type: 'string', default: '' },
    query: { type: 'string', default: '' },
  },
});
const steps = Number(options.steps);
const every = Number(options.every);

/**
 * Resident bytes of this process's descendants (the browser and all its processes), in all
 * and by Chromium's process type (`browser`, `renderer`, `gpu-process`, `utility`, ...).
 */
function browserRss() {
  const parent = new Map();
  const rss = new Map();
  const type = new Map();
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
      rss.set(pid, line ? Number(line.split(/\s+/)[1]) * 1024 : 0);
      // Chromium rewrites its processes' titles, so the arguments may be split by spaces.
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/);
      type.set(pid, args.find((a) => a.startsWith('--type='))?.slice(7) ?? 'browser');
    } catch {
      // the process ended while it was read
    }
  }
  const ours = (pid) => {
    for (let p = pid; p && p !== '0'; p = parent.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  const byType = {};
  let total = 0;
  for (const [pid, bytes] of rss) {
    if (pid === String(process.pid) || !ours(pid)) continue;
    total += bytes;
    byType[type.get(pid)] = (byType[type.get(pid)] ?? 0) + bytes;
  }
  return { total, byType };
}

const server = await serve(process.env.CLIPAG_DIST ?? 'dist', 0);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--enable-precise-memory-info', '--js-flags=--expose-gc'],
});
try {
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  const backend = options.backend ? `&backend=${options.backend}` : '';
  const query = options.query ? `&${options.query}` : '';
  await page.goto(`${server.url}?prompt=a+large+red+circle+on+a+blue+background&steps=${steps}${backend}${query}`);
  await page.waitForFunction(() => ['idle', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
  const [worker] = page.workers();
  // Counted as the browser holds them: a buffer leaves the count when it is destroyed, or when
  // it is garbage-collected without being destroyed (wgpu may drop one so); weak references
  // only, so that counting keeps nothing alive. Sampling collects the garbage first.
  await worker.evaluate(() => {
    self.gpuBuffers = { live: 0, bytes: 0 };
    const sizes = new WeakMap();
    const collected = new FinalizationRegistry((size) => {
      self.gpuBuffers.live -= 1;
      self.gpuBuffers.bytes -= size;
    });
    const create = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const buffer = create.call(this, descriptor);
      sizes.set(buffer, descriptor.size);
      self.gpuBuffers.live += 1;
      self.gpuBuffers.bytes += descriptor.size;
      collected.register(buffer, descriptor.size, buffer);
      return buffer;
    };
    const destroy = GPUBuffer.prototype.destroy;
    GPUBuffer.prototype.destroy = function () {
      if (sizes.has(this)) {
        collected.unregister(this);
        self.gpuBuffers.live -= 1;
        self.gpuBuffers.bytes -= sizes.get(this);
        sizes.delete(this);
      }
      return destroy.call(this);
    };
  });
  const sample = async (step) => {
    const engine = await worker.evaluate(async () => {
      const { memoryBytes } = await import('/pkg/clipag.js');
      self.gc();
      await new Promise((settled) => setTimeout(settled, 100)); // finalizers run after collection
      return { wasm: memoryBytes(), buffers: self.gpuBuffers.live, bufferBytes: self.gpuBuffers.bytes };
    });
    const heap = await page.evaluate(() => performance.memory.usedJSHeapSize);
    const { total, byType } = browserRss();
    return { step, ...engine, heap, rss: total, byType };
  };
  const started = Date.now();
  await page.getByRole('button', { name: 'Generate' }).click();
  const samples = [];
  const mb = (n) => (n / 1e6).toFixed(1).padStart(8);
  console.log(' step  wasm MB  page heap MB  GPU buffers  (MB)  browser RSS MB  seconds  RSS MB by process');
  for (let next = every; next <= steps; next += every) {
    await page.waitForFunction(
      (n) => parseInt(document.getElementById('stat-step').textContent, 10) >= n || document.body.dataset.state === 'error',
      next, { timeout: 0, polling: 250 },
    );
    if (await page.evaluate(() => document.body.dataset.state === 'error')) throw new Error(await page.textContent('#status'));
    const s = await sample(next);
    samples.push(s);
    console.log(`${String(s.step).padStart(5)} ${mb(s.wasm)}      ${mb(s.heap)}  ${String(s.buffers).padStart(6)} ${mb(s.bufferBytes)}  ${mb(s.rss)}  ${((Date.now() - started) / 1000).toFixed(0).padStart(7)}  ` +
      Object.entries(s.byType).map(([k, v]) => `${k} ${mb(v).trim()}`).join(', '));
  }
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 0 });
  console.log(`device: ${await page.textContent('#device-info')}`);
  const after = samples.filter((s) => s.step > steps / 10);
  const growth = (key) => {
    const values = after.map((s) => s[key]);
    return `${mb(values.at(-1) - values[0]).trim()} MB (min ${mb(Math.min(...values)).trim()}, max ${mb(Math.max(...values)).trim()})`;
  };
  console.log(`after warm-up (step ${after[0].step} to ${after.at(-1).step}): wasm ${growth('wasm')}, page heap ${growth('heap')}, ` +
    `GPU buffers ${growth('bufferBytes')}, browser RSS ${growth('rss')}`);
} finally {
  await browser.close();
  await server.close();
}
