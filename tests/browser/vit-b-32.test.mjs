// A full-size ViT-B/32 (random weights in the CLIPAG layout, written by the native command
// line, converted at q8) loads in the page and runs forward and backward on WebGPU. Prints
// the load time, the engine's memory and one step's time (recorded in docs/performance.md).
// Slow on SwiftShader (minutes): the first pass compiles and autotunes every kernel on a CPU.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEngine, native, openPage } from './harness.mjs';

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
  await loadEngine(page);
  const result = await page.evaluate(async () => {
    const { Model, memoryBytes } = window.engine;
    const base = '/test-models/vit-b-32/';
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
    const finite = (a) => a.every(Number.isFinite);
    return {
      size, weightsMB: weights.length / 1e6, fetchS: (t1 - t0) / 1e3, loadS: (t2 - t1) / 1e3,
      firstStepS: (t3 - t2) / 1e3, stepS: (t4 - t3) / 1e3, memoryMB: memoryBytes() / 1e6,
      cosine: second.cosine, firstCosine: first.cosine, finite: finite(first.grad),
      nonzero: first.grad.some((g) => g !== 0),
    };
  });
  t.diagnostic(`ViT-B/32 q8 in the page: ${JSON.stringify(result)}`);
  assert.equal(result.size, 224);
  assert.ok(Number.isFinite(result.cosine) && result.finite && result.nonzero);
  // The first pass runs on kernels chosen before autotuning finished, the second on the tuned
  // ones: the same numbers up to rounding.
  assert.ok(Math.abs(result.cosine - result.firstCosine) <= 1e-4, `${result.firstCosine} then ${result.cosine}`);
});
