// The optimisation loop in the page, on WebGPU, follows the same trajectory as native code
// on wgpu (lavapipe): same seed and settings, scores within 1e-3 step by step, on a canvas of
// pixels and on one of strokes (whose SVG the page gives too).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEngine, native, openPage } from './harness.mjs';

const TINY = 'tests/fixtures/tiny-clip';
const models = mkdtempSync(join(tmpdir(), 'clipag-browser-generate-'));
after(() => rmSync(models, { recursive: true, force: true }));
const request = { prompt: 'a photo of a cat', steps: 4, views: 4, patchViews: 4, candidates: 2, seed: 5 };
const strokes = { ...request, param: 'strokes', strokes: 24 };

before(() => {
  native(['convert', join(TINY, 'checkpoint.pt'), '--out', join(models, 'tiny'), '--quant', 'f32']);
});

function nativeTrajectory(request, extra = []) {
  const out = native([
    'generate', '--model', join(models, 'tiny'), '--backend', 'gpu', '--prompt', request.prompt,
    '--steps', `${request.steps}`, '--views', `${request.views}`, '--patch-views', `${request.patchViews}`,
    '--candidates', `${request.candidates}`, '--seed', `${request.seed}`, '--trace', '--out', join(models, 'native.png'), ...extra,
  ]);
  return out.trim().split('\n').map((line) => JSON.parse(line)).filter((r) => 'score' in r && 'step' in r);
}

async function loadModel(page) {
  return page.evaluate(async () => {
    const { Model } = window.engine;
    const base = '/test-models/tiny/';
    const bytes = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    window.model = await Model.load(await (await fetch(base + 'manifest.json')).text(), await bytes('weights.safetensors'), await bytes('tokenizer.json'), 'gpu');
  });
}

/** The page's trajectory for `request` (and its best picture's SVG, for strokes). */
async function pageTrajectory(t, request) {
  const page = await openPage(t, '', { mounts: { '/test-models/': models } });
  await loadEngine(page);
  await loadModel(page);
  return page.evaluate(async (request) => {
    const generator = await window.model.generator(request);
    const trajectory = [{ step: 0, score: generator.currentScore }];
    for (let i = 0; i < request.steps; i++) {
      const { report, rgba } = await generator.step();
      if (rgba.length !== 4 * generator.size * generator.size) throw new Error(`rgba of ${rgba.length} bytes`);
      trajectory.push(report);
    }
    return { trajectory, svg: await generator.bestSvg() };
  }, request);
}

function sameTrajectory(t, expected, browser) {
  t.diagnostic(`native ${expected.map((r) => r.score.toFixed(5)).join(' ')}`);
  t.diagnostic(`page   ${browser.map((r) => r.score.toFixed(5)).join(' ')}`);
  assert.equal(browser.length, expected.length);
  browser.forEach((r, i) => {
    assert.ok(Number.isFinite(r.score));
    assert.ok(Math.abs(r.score - expected[i].score) <= 1e-3, `step ${i}: page ${r.score}, native ${expected[i].score}`);
  });
}

test('the page and native code paint the same trajectory', async (t) => {
  const expected = nativeTrajectory(request);
  const { trajectory, svg } = await pageTrajectory(t, request);
  sameTrajectory(t, expected, trajectory);
  assert.equal(svg, undefined, 'a pixel canvas has no SVG');
});

test('the page and native code paint the same trajectory in strokes, and the same SVG', async (t) => {
  const svgPath = join(models, 'native.svg');
  const expected = nativeTrajectory(strokes, ['--param', 'strokes', '--strokes', `${strokes.strokes}`, '--svg', svgPath]);
  const { trajectory, svg } = await pageTrajectory(t, strokes);
  sameTrajectory(t, expected, trajectory);
  // The same strokes: every number of the two documents (written to a thousandth) within a
  // twentieth of a pixel (or of an opacity), the same elements in the same order.
  const numbers = (text) => text.match(/-?\d+\.\d+/g).map(Number);
  const nativeSvg = readFileSync(svgPath, 'utf8');
  assert.equal((svg.match(/<path /g) ?? []).length, strokes.strokes);
  assert.equal(svg.replace(/-?\d+\.\d+/g, 'N').replace(/#[0-9a-f]{6}/g, 'C'), nativeSvg.replace(/-?\d+\.\d+/g, 'N').replace(/#[0-9a-f]{6}/g, 'C'));
  const [ours, theirs] = [numbers(svg), numbers(nativeSvg)];
  const worst = Math.max(...ours.map((v, i) => Math.abs(v - theirs[i])));
  t.diagnostic(`largest difference between the SVGs' numbers: ${worst}`);
  assert.ok(worst <= 0.05, `the page's SVG differs from the native one by ${worst}`);
});

test('invalid settings are refused before any work', async (t) => {
  const page = await openPage(t, '', { mounts: { '/test-models/': models } });
  await loadEngine(page);
  await loadModel(page);
  const messages = await page.evaluate(async () => {
    const out = [];
    for (const bad of [{ prompt: 'a cat', steps: 0 }, { prompt: 'a cat', lr: -1 }, { prompt: 'a cat', size: 100000 }, { prompt: '  ' }]) {
      try {
        await window.model.generator(bad);
        out.push('accepted');
      } catch (error) {
        out.push(String(error.message ?? error));
      }
    }
    try {
      await window.model.generator({ prompt: 'a cat' }, new Uint8Array([1, 2, 3]));
      out.push('accepted');
    } catch (error) {
      out.push(String(error.message ?? error));
    }
    return out;
  });
  assert.match(messages[0], /steps/);
  assert.match(messages[1], /learning rate/);
  assert.match(messages[2], /canvas/);
  assert.match(messages[3], /empty/);
  assert.match(messages[4], /image could not be read/);
});
