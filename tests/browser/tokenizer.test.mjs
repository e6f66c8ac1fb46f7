// The tokenizer in the page (the wasm build: the tokenizers crate and the text cleaning
// compiled for the browser) gives open_clip's own ids: a sample of issue 37's hard strings
// (tests/data/tokenizer-cases-open-clip.json.gz, made by tools/tokenizer_cases.py), every
// family in it, through a model folder converted by the native command line.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadEngine, native, openPage } from './harness.mjs';

const models = mkdtempSync(join(tmpdir(), 'clipag-browser-tokenizer-'));
after(() => rmSync(models, { recursive: true, force: true }));
const { cases } = JSON.parse(gunzipSync(readFileSync('tests/data/tokenizer-cases-open-clip.json.gz')).toString('utf8'));
const mojibake = new Set(JSON.parse(readFileSync('tests/data/tokenizer-open-clip-mojibake-cases.json', 'utf8')).cases.map((c) => c.text));
// Every 10th case: about 2,000, spread over the families (the file keeps them in blocks).
const sample = cases.filter((c, i) => i % 10 === 0 && !mojibake.has(c.text));

before(() => {
  native(['convert', join('tests/fixtures/tiny-clip', 'checkpoint.pt'), '--out', join(models, 'tiny'), '--quant', 'q8']);
});

test('the page tokenizes a sample of the hard strings as open_clip does', async (t) => {
  const page = await openPage(t, '', { mounts: { '/test-models/': models } });
  await loadEngine(page);
  const got = await page.evaluate(async (texts) => {
    const { Model } = window.engine;
    const base = '/test-models/tiny/';
    const bytes = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    const model = await Model.load(await (await fetch(base + 'manifest.json')).text(), await bytes('weights.safetensors'), await bytes('tokenizer.json'), 'cpu');
    return texts.map((text) => Array.from(model.tokenize(text)));
  }, sample.map((c) => c.text));
  const differ = sample.filter((c, i) => JSON.stringify(got[i]) !== JSON.stringify(c.ids));
  t.diagnostic(`${sample.length - differ.length} of ${sample.length} sampled strings give open_clip's ids in the page`);
  assert.ok(sample.length >= 2000);
  assert.deepEqual(differ.slice(0, 10).map((c) => c.text), [], `${differ.length} differ`);
});
