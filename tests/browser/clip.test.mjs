// The CLIP in the page, on WebGPU, computes what open_clip computes: model folders converted
// by the native command line from tests/fixtures/tiny-clip (a ViT) and tiny-rn (the
// ModifiedResNet) are served beside the app, loaded through the wasm module, and compared
// with open_clip's reference numbers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cosine, loadEngine, native, openPage, readSafetensors, relativeError, row } from './harness.mjs';

const TINY = 'tests/fixtures/tiny-clip';
const TINY_RN = 'tests/fixtures/tiny-rn';
const references = {
  [TINY]: readSafetensors(readFileSync(join(TINY, 'reference.safetensors'))),
  [TINY_RN]: readSafetensors(readFileSync(join(TINY_RN, 'reference.safetensors'))),
};
const reference = references[TINY];
const prompts = JSON.parse(readFileSync(join(TINY, 'reference.json'), 'utf8')).prompts;
const models = mkdtempSync(join(tmpdir(), 'clipag-browser-models-'));
after(() => rmSync(models, { recursive: true, force: true }));

before(() => {
  for (const quant of ['f32', 'q8']) {
    native(['convert', join(TINY, 'checkpoint.pt'), '--out', join(models, `tiny-${quant}`), '--quant', quant]);
  }
  // The ResNet from both layouts: open_clip's safetensors with its config, and the CLIPAG-style
  // checkpoint, whose architecture is read off the tensor names.
  native(['convert', join(TINY_RN, 'open_clip_model.safetensors'), '--out', join(models, 'tiny-rn-f32'), '--quant', 'f32']);
  for (const quant of ['f32', 'q8']) {
    native(['convert', join(TINY_RN, 'checkpoint.pt'), '--out', join(models, `tiny-rn-pt-${quant}`), '--quant', quant]);
  }
});

/** Loads `folder` in the page on WebGPU; returns embeddings and gradients for the fixture. */
async function computeInPage(t, folder, fixture = TINY) {
  const page = await openPage(t, '', { mounts: { '/test-models/': models } });
  await loadEngine(page);
  const images = [0, 1, 2].map((i) => row(references[fixture].images, i));
  return page.evaluate(async ({ folder, prompts, images }) => {
    const { Model } = window.engine;
    const base = `/test-models/${folder}/`;
    const bytes = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    const manifest = await (await fetch(base + 'manifest.json')).text();
    const model = await Model.load(manifest, await bytes('weights.safetensors'), await bytes('tokenizer.json'), 'gpu');
    const size = model.imageSize;
    const text = [];
    for (const prompt of prompts) text.push(Array.from(await model.embedText(prompt)));
    const image = [];
    const grads = [];
    for (let i = 0; i < images.length; i++) {
      image.push(Array.from(await model.embedImage(new Float32Array(images[i]), size)));
      const { grad } = await model.pixelGradient(new Float32Array(images[i]), size, prompts[i]);
      grads.push(Array.from(grad));
    }
    return { device: model.device, tokens: prompts.map((p) => Array.from(model.tokenize(p))), text, image, grads };
  }, { folder, prompts, images });
}

function worst(result, fixture = TINY) {
  const ref = references[fixture];
  const text = Math.min(...result.text.map((e, i) => cosine(e, row(ref.text_embeddings, i))));
  const image = Math.min(...result.image.map((e, i) => cosine(e, row(ref.image_embeddings, i))));
  const gradCos = Math.min(...result.grads.map((g, i) => cosine(g, row(ref.pixel_grad, i))));
  const gradRel = Math.max(...result.grads.map((g, i) => relativeError(g, row(ref.pixel_grad, i))));
  return { text, image, gradCos, gradRel };
}

test('f32 model on WebGPU matches open_clip', async (t) => {
  const result = await computeInPage(t, 'tiny-f32');
  assert.match(result.device.api, /webgpu/i);
  result.tokens.forEach((ids, i) => {
    const want = row(reference.token_ids, i).filter((id) => id !== 0);
    assert.deepEqual(ids, want, `tokens of ${JSON.stringify(prompts[i])}`);
  });
  const f = worst(result);
  t.diagnostic(`f32 on WebGPU: ${JSON.stringify(f)}`);
  assert.ok(f.text >= 0.99999, `text cosine ${f.text}`);
  assert.ok(f.image >= 0.99999, `image cosine ${f.image}`);
  assert.ok(f.gradCos >= 0.9999, `gradient cosine ${f.gradCos}`);
  assert.ok(f.gradRel <= 1e-3, `gradient relative error ${f.gradRel}`);
});

for (const folder of ['tiny-rn-f32', 'tiny-rn-pt-f32']) {
  test(`f32 ModifiedResNet (${folder}) on WebGPU matches open_clip`, async (t) => {
    const f = worst(await computeInPage(t, folder, TINY_RN), TINY_RN);
    t.diagnostic(`ResNet ${folder} on WebGPU: ${JSON.stringify(f)}`);
    assert.ok(f.text >= 0.99999, `text cosine ${f.text}`);
    assert.ok(f.image >= 0.99999, `image cosine ${f.image}`);
    assert.ok(f.gradCos >= 0.9999, `gradient cosine ${f.gradCos}`);
    assert.ok(f.gradRel <= 1e-3, `gradient relative error ${f.gradRel}`);
  });
}

test('q8 ModifiedResNet on WebGPU stays close to open_clip', async (t) => {
  const f = worst(await computeInPage(t, 'tiny-rn-pt-q8', TINY_RN), TINY_RN);
  t.diagnostic(`ResNet q8 on WebGPU: ${JSON.stringify(f)}`);
  assert.ok(f.text >= 0.995 && f.image >= 0.995, `embedding cosines ${f.text} ${f.image}`);
  assert.ok(f.gradCos >= 0.98, `gradient cosine ${f.gradCos}`);
});

test('q8 model on WebGPU stays close to open_clip', async (t) => {
  const f = worst(await computeInPage(t, 'tiny-q8'));
  t.diagnostic(`q8 on WebGPU: ${JSON.stringify(f)}`);
  assert.ok(f.text >= 0.995 && f.image >= 0.995, `embedding cosines ${f.text} ${f.image}`);
  assert.ok(f.gradCos >= 0.98, `gradient cosine ${f.gradCos}`);
});

test('a corrupt model folder is refused with a message, its kind and its file', async (t) => {
  const page = await openPage(t, '', { mounts: { '/test-models/': models } });
  await loadEngine(page);
  const { message, kind, path } = await page.evaluate(async () => {
    const { Model } = window.engine;
    const base = '/test-models/tiny-q8/';
    const bytes = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    const weights = await bytes('weights.safetensors');
    weights[weights.length >> 1] ^= 0x40;
    try {
      await Model.load(await (await fetch(base + 'manifest.json')).text(), weights, await bytes('tokenizer.json'), 'gpu');
      return { message: 'loaded' };
    } catch (error) {
      return { message: String(error.message ?? error), kind: error.kind, path: error.path };
    }
  });
  assert.match(message, /sha256.*corrupt/);
  // What the page acts on comes as fields, not read out of the message.
  assert.deepEqual({ kind, path }, { kind: 'bad-file', path: 'weights.safetensors' });
});
