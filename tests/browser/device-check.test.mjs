// The foundation's promise: WebGPU in a real browser computes the same gradient as native
// code, and a browser without WebGPU gets an explanation and a working CPU fallback.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, nativeJson, openPage, relativeError, waitForState } from './harness.mjs';

const nativeCheck = nativeJson(['check', '--backend', 'cpu']);

test('WebGPU in the page computes the gradient native code computes', async (t) => {
  // WebGPU asked for: on SwiftShader the page would otherwise choose the CPU engine.
  const page = await openPage(t, '?check=1&backend=gpu');
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));

  const report = await page.evaluate(() => window.clipagCheck);
  t.diagnostic(`adapter: ${JSON.stringify(report.device)}`);
  assert.equal(report.device.backend, 'gpu');
  assert.match(report.device.api, /webgpu/i);
  assert.ok(Number.isFinite(report.loss));

  const gradError = relativeError(report.grad, nativeCheck.grad);
  const lossError = Math.abs(report.loss - nativeCheck.loss) / Math.abs(nativeCheck.loss);
  t.diagnostic(`relative error vs native: gradient ${gradError.toExponential(2)}, loss ${lossError.toExponential(2)}`);
  assert.ok(gradError <= 1e-4, `gradient relative error ${gradError}`);
  assert.ok(lossError <= 1e-4, `loss relative error ${lossError}`);
  assert.match(await page.textContent('#info-backend'), /WebGPU/);
});

test('without WebGPU the page says why and the CPU fallback works', async (t) => {
  const page = await openPage(t, '?check=1', {
    // A browser without WebGPU has no navigator.gpu at all.
    before: (page) => page.addInitScript(() => delete Navigator.prototype.gpu),
  });
  assert.equal(await waitForState(page, ['idle', 'error']), 'error');
  assert.match(await page.textContent('#status'), /does not offer WebGPU/);

  await page.getByRole('button', { name: 'Use the CPU instead' }).click();
  assert.equal(await waitForState(page, ['idle']), 'idle', await page.textContent('#status'));
  const report = await page.evaluate(() => window.clipagCheck);
  assert.equal(report.device.backend, 'cpu');
  assert.ok(relativeError(report.grad, nativeCheck.grad) <= 1e-5);
});

test('on a software adapter the page paints on the CPU engine, and says why', async (t) => {
  // Issue 35: this machine's WebGPU is SwiftShader, about 190 s a step with the default views,
  // where the CPU engine is far faster. Without `?backend=`, the page chooses the CPU.
  const page = await openPage(t, '?check=1');
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  assert.match(await page.textContent('#status'), /on the CPU/);
  const said = await page.textContent('#device-info');
  t.diagnostic(said);
  assert.match(said, /swiftshader/i);
  assert.match(said, /a software renderer on the CPU, slower than the CPU engine/);
  const report = await page.evaluate(() => window.clipagCheck);
  assert.equal(report.device.backend, 'cpu');
});

test('an adapter that does not say what it is: a step is timed on each engine, and the page paints on the faster', async (t) => {
  // A browser may withhold every name of its adapter; here the page is told none (the
  // engine's worker still runs on SwiftShader), so it cannot know and times both. A tiny
  // model keeps SwiftShader's step short.
  const models = mkdtempSync(join(tmpdir(), 'clipag-browser-timing-'));
  after(() => rmSync(models, { recursive: true, force: true }));
  native(['convert', 'tests/fixtures/tiny-clip/checkpoint.pt', '--out', join(models, 'tiny'), '--quant', 'q8', '--name', 'tiny']);
  const page = await openPage(t, '?prompt=a+red+circle&steps=2&views=2&patchViews=2&candidates=1&model=/test-models/tiny/&autostart=1', {
    mounts: { '/test-models/': models },
    before: (p) => p.addInitScript(() => {
      Object.defineProperty(GPUAdapter.prototype, 'info', { configurable: true, get: () => ({ vendor: '', architecture: '', device: '', description: '' }) });
    }),
  });
  assert.equal(await waitForState(page, ['done', 'error'], 600_000), 'done', await page.textContent('#status'));
  const said = await page.textContent('#device-info');
  t.diagnostic(said);
  const timed = /a step of 16 views was timed on each engine: ([\d.]+) s on WebGPU, ([\d.]+) s on the CPU; the page paints on (WebGPU|the CPU)/.exec(said);
  assert.ok(timed, said);
  const [gpu, cpu] = [Number(timed[1]), Number(timed[2])];
  assert.equal(timed[3], gpu <= cpu ? 'WebGPU' : 'the CPU');
});
