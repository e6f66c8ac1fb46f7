// Faults in the middle of work, in headless Chromium (issue 35): the GPU device lost mid-run,
// a download that breaks off, storage that refuses the model, a new build's service worker
// arriving during a run, and Stop against an engine busy in a long call. Each ends with the
// page usable, without a reload, and the picture kept where there was one.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, openPage, waitForState } from './harness.mjs';

const TINY = 'tests/fixtures/tiny-clip';
const models = mkdtempSync(join(tmpdir(), 'clipag-browser-faults-'));
after(() => rmSync(models, { recursive: true, force: true }));
const mounts = { '/test-models/': models };
const WEIGHTS = join(models, 'tiny', 'weights.safetensors');

before(() => {
  native(['convert', join(TINY, 'checkpoint.pt'), '--out', join(models, 'tiny'), '--quant', 'q8', '--name', 'tiny']);
});

const quick = 'views=4&patchViews=4&candidates=2';
const stepAtLeast = (page, n) =>
  page.waitForFunction((n) => parseInt(document.getElementById('stat-step').textContent, 10) >= n, n, { timeout: 300_000 });

/** The sha256 of the tiny model's weights as this browser's cache holds them, or null. */
const cachedWeights = (page) => page.evaluate(async () => {
  const hit = await (await caches.open('clipag-models-v1')).match(new URL('/test-models/tiny/weights.safetensors', location.href).href);
  if (!hit) return null;
  return [...new Uint8Array(await crypto.subtle.digest('SHA-256', await hit.arrayBuffer()))].map((b) => b.toString(16).padStart(2, '0')).join('');
});

const manifestSha = () => JSON.parse(readFileSync(join(models, 'tiny', 'manifest.json'), 'utf8')).files['weights.safetensors'].sha256;

/**
 * Answers the tiny model's weights with the first half of the file and then drops the
 * connection, `times` times; records each request's Range header.
 */
function breakingWeights(times) {
  const seen = [];
  const intercept = (req, res) => {
    if (!req.url.endsWith('/test-models/tiny/weights.safetensors')) return false;
    seen.push(req.headers.range ?? null);
    if (seen.length > times) return false;
    const bytes = readFileSync(WEIGHTS);
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length });
    res.write(bytes.subarray(0, bytes.length >> 1), () => setTimeout(() => res.destroy(), 50));
    return true;
  };
  return { seen, intercept };
}

test('the GPU device lost mid-run: a clear message, the picture kept, and Generate paints again without a reload', async (t) => {
  const page = await openPage(t, `?prompt=a+red+circle&steps=10&${quick}&model=/test-models/tiny/&backend=gpu`, { mounts });
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  // The engine's worker keeps the device it asks for, so the test can take it away.
  const [worker] = page.workers();
  await worker.evaluate(() => {
    self.devices = [];
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await request.apply(this, args);
      self.devices.push(device);
      return device;
    };
  });
  await page.evaluate(() => (window.notReloaded = true));
  await page.getByRole('button', { name: 'Generate' }).click();
  await stepAtLeast(page, 3);
  await worker.evaluate(() => self.devices.forEach((device) => device.destroy()));
  assert.equal(await waitForState(page, ['done', 'error']), 'error');
  assert.match(await page.textContent('#status'), /^The GPU device was lost \(.+\)\. The best picture so far is kept; press Generate to start again\.$/);
  // The picture on the page is offered, and it is a picture (not a blank canvas).
  assert.equal(await page.getAttribute('#download-png', 'aria-disabled'), 'false');
  const spread = await page.evaluate(() => {
    const canvas = document.getElementById('canvas');
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    return Math.max(...pixels.filter((_, i) => i % 4 === 0)) - Math.min(...pixels.filter((_, i) => i % 4 === 0));
  });
  assert.ok(spread > 10, `the canvas kept its picture (red spread ${spread})`);
  // A new engine, a new device: the same page paints to the end.
  await page.getByRole('button', { name: 'Generate' }).click();
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  assert.equal(await page.textContent('#stat-step'), '10 / 10');
  assert.ok(await page.evaluate(() => window.notReloaded), 'the page was not reloaded');
});

test('a download that breaks off is taken up where it stopped, and the model is kept whole', async (t) => {
  const { seen, intercept } = breakingWeights(1);
  const page = await openPage(t, `?prompt=a+blue+square&steps=2&${quick}&model=/test-models/tiny/&autostart=1`, { mounts, intercept });
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  const half = readFileSync(WEIGHTS).length >> 1;
  assert.equal(seen[0], null);
  // The second request asks for the rest (or, where the first chunk was lost in flight, for
  // whatever had arrived): never for the whole file again.
  const resumed = /^bytes=(\d+)-$/.exec(seen[1] ?? '');
  assert.ok(resumed && Number(resumed[1]) > 0 && Number(resumed[1]) <= half, `requests: ${JSON.stringify(seen)}`);
  assert.equal(await cachedWeights(page), manifestSha());
});

test('a download that keeps breaking off ends with a clear message, nothing is cached, and Generate tries again', async (t) => {
  const { seen, intercept } = breakingWeights(4);
  const page = await openPage(t, `?prompt=a+blue+square&steps=2&${quick}&model=/test-models/tiny/&autostart=1`, { mounts, intercept });
  assert.equal(await waitForState(page, ['done', 'error']), 'error');
  assert.match(await page.textContent('#status'),
    /^weights\.safetensors stopped arriving after [\d.]+ MB of [\d.]+ MB \(.+; tried 4 times\), and nothing was kept\. Check the connection and press Generate to try again\.$/);
  assert.equal(seen.length, 4);
  const kept = await page.evaluate(async () => (await (await caches.open('clipag-models-v1')).keys()).map((r) => r.url));
  assert.ok(!kept.some((url) => url.includes('/test-models/tiny/')), `cached: ${kept}`);
  // The connection is back (the fifth request goes through).
  await page.getByRole('button', { name: 'Generate' }).click();
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  assert.equal(await cachedWeights(page), manifestSha());
});

test('storage that refuses the model (quota): the run paints from memory and the page says it was not kept', async (t) => {
  const page = await openPage(t, `?prompt=a+blue+square&steps=2&${quick}&model=/test-models/tiny/&autostart=1`, {
    mounts,
    before: (p) => p.addInitScript(() => {
      const put = Cache.prototype.put;
      Cache.prototype.put = function (request, response) {
        const url = typeof request === 'string' ? request : request.url;
        if (url.includes('/test-models/')) return Promise.reject(new DOMException('the quota is exceeded', 'QuotaExceededError'));
        return put.call(this, request, response);
      };
    }),
  });
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  assert.match(await page.textContent('#cached'), /tiny could not be kept \(the browser refused the space \(its storage for this site is full\)\): it paints from memory now/);
  const kept = await page.evaluate(async () => (await (await caches.open('clipag-models-v1')).keys()).map((r) => r.url));
  assert.ok(!kept.some((url) => url.includes('/test-models/')), `nothing partial is cached: ${kept}`);
});

test("a new build's service worker arriving during a run: the run finishes, and the page says a new version is ready", async (t) => {
  const site = mkdtempSync(join(tmpdir(), 'clipag-browser-site-'));
  t.after(() => rmSync(site, { recursive: true, force: true }));
  cpSync(process.env.CLIPAG_DIST ?? 'dist', site, { recursive: true });
  const page = await openPage(t, `?prompt=a+red+circle&steps=40&${quick}&model=/test-models/tiny/`, { mounts, dist: site });
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((claimed) => navigator.serviceWorker.addEventListener('controllerchange', claimed, { once: true }));
    }
    window.notReloaded = true;
  });
  await page.getByRole('button', { name: 'Generate' }).click();
  await stepAtLeast(page, 3);
  // A new build: its service worker has another version, so another shell cache.
  const worker = join(site, 'sw.js');
  writeFileSync(worker, readFileSync(worker, 'utf8').replace(/^const VERSION = '[^']*';/m, "const VERSION = 'a-newer-build';"));
  await page.evaluate(async () => {
    const changed = new Promise((done) => navigator.serviceWorker.addEventListener('controllerchange', done, { once: true }));
    await (await navigator.serviceWorker.getRegistration()).update();
    await changed;
  });
  const during = parseInt(await page.textContent('#stat-step'), 10);
  assert.ok(during < 40, `the new worker took over during the run (at step ${during})`);
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  assert.equal(await page.textContent('#stat-step'), '40 / 40');
  assert.ok(await page.evaluate(() => window.notReloaded), 'the page was not reloaded');
  assert.match(await page.textContent('#update'), /A new version of this site has arrived/);
  assert.equal(await page.isVisible('#update'), true);
  const shells = await page.evaluate(async () => (await caches.keys()).filter((k) => k.startsWith('clipag-shell-')));
  assert.deepEqual(shells, ['clipag-shell-a-newer-build']);
});

test('Stop ends an engine busy in a long call, and a fresh one is ready', async (t) => {
  // The built-in model with its own views on SwiftShader: a start or a step takes minutes.
  const page = await openPage(t, '?prompt=a+large+yellow+star&backend=gpu&autostart=1');
  await page.waitForFunction(() => /Choosing a starting canvas|Painting/.test(document.getElementById('status').textContent), null, { timeout: 300_000 });
  const [busy] = page.workers();
  const ended = new Promise((closed) => busy.once('close', closed));
  const fresh = page.waitForEvent('worker', { timeout: 60_000 });
  const pressed = Date.now();
  await page.getByRole('button', { name: 'Stop' }).click();
  assert.equal(await waitForState(page, ['idle', 'done', 'error'], 60_000), 'idle');
  const waited = (Date.now() - pressed) / 1000;
  assert.match(await page.textContent('#status'), /^Stopped\. The engine was busy, so it was ended; the picture on the page is kept\.$/);
  assert.ok(waited < 30, `Stop took ${waited} s`);
  assert.equal(await page.isEnabled('#generate'), true);
  await ended; // the busy engine's worker is gone,
  assert.notEqual(await fresh, busy); // and a fresh one took its place
  assert.deepEqual(page.workers(), [await fresh]);
});
