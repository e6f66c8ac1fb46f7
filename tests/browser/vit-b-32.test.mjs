// A full-size ViT-B/32 (random weights in the CLIPAG layout, written by the native command
// line, converted at q8) loads in the page and runs forward and backward on WebGPU. Prints
// the load time, the engine's memory and one step's time (recorded in docs/performance.md).
// Slow on SwiftShader (minutes): the first pass compiles and autotunes every kernel on a CPU.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullSizePass, native, openPage } from './harness.mjs';

const models = mkdtempSync(join(tmpdir(), 'clipag-browser-vit-'));
after(() => rmSync(models, { recursive: true, force: true }));

before(() => {
  const checkpoint = join(models, 'CLIPAG_ViTB32_random.pt');
  native(['random-checkpoint', '--arch', 'vit-b-32', '--seed', '3', '--out', checkpoint]);
  native(['convert', checkpoint, '--out', join(models, 'vit-b-32'), '--quant', 'q8', '--name', 'random ViT-B/32']);
  rmSync(checkpoint);
});

test('ViT-B/32 at q8 loads and computes a pixel gradient on WebGPU', async (t) => {
  const page = await openPage(t, '', { mounts: { '/test-models/': models } });
  const result = await fullSizePass(page, '/test-models/vit-b-32/');
  t.diagnostic(`ViT-B/32 q8 in the page: ${JSON.stringify(result)}`);
  assert.equal(result.size, 224);
  assert.ok(Number.isFinite(result.cosine) && result.finite && result.nonzero);
  // The first pass runs on kernels chosen before autotuning finished, the second on the tuned
  // ones: the same numbers up to rounding.
  assert.ok(Math.abs(result.cosine - result.firstCosine) <= 1e-4, `${result.firstCosine} then ${result.cosine}`);
});
