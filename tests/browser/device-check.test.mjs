// The foundation's promise: WebGPU in a real browser computes the same gradient as native
// code, and a browser without WebGPU gets an explanation and a working CPU fallback.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeJson, openPage, relativeError, waitForState } from './harness.mjs';

const native = nativeJson(['check', '--backend', 'cpu']);

test('WebGPU in the page computes the gradient native code computes', async (t) => {
  // WebGPU asked for: on SwiftShader the page would otherwise choose the CPU engine.
  const page = await openPage(t, '?check=1&backend=gpu');
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));

  const report = await page.evaluate(() => window.clipagCheck);
  t.diagnostic(`adapter: ${JSON.stringify(report.device)}`);
  assert.equal(report.device.backend, 'gpu');
  assert.match(report.device.api, /webgpu/i);
  assert.ok(Number.isFinite(report.loss));

  const gradError = relativeError(report.grad, native.grad);
  const lossError = Math.abs(report.loss - native.loss) / Math.abs(native.loss);
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
  assert.ok(relativeError(report.grad, native.grad) <= 1e-5);
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
