// The web app as a visitor uses it, in headless Chromium with WebGPU: a shareable URL that
// paints on its own, pause and resume, a PNG that decodes, a second visit with the network
// off, a corrupt model refused and never cached, and compare mode.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, openPage, waitForState } from './harness.mjs';

const TINY = 'tests/fixtures/tiny-clip';
const models = mkdtempSync(join(tmpdir(), 'clipag-browser-app-'));
after(() => rmSync(models, { recursive: true, force: true }));
const mounts = { '/test-models/': models };

before(() => {
  for (const quant of ['f32', 'q8']) {
    native(['convert', join(TINY, 'checkpoint.pt'), '--out', join(models, `tiny-${quant}`), '--quant', quant, '--name', `tiny ${quant}`]);
  }
  cpSync(join(models, 'tiny-q8'), join(models, 'corrupt'), { recursive: true });
  const weights = join(models, 'corrupt', 'weights.safetensors');
  const bytes = readFileSync(weights);
  bytes[bytes.length >> 1] ^= 0x40;
  writeFileSync(weights, bytes);
});

/** Records every state the page enters, and a hash of the canvas after every step. */
function recorder(page) {
  return page.addInitScript(() => {
    window.states = [];
    window.frames = [];
    const watch = () => {
      new MutationObserver(() => {
        const state = document.body.dataset.state;
        if (window.states.at(-1) !== state) window.states.push(state);
      }).observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
      new MutationObserver(() => {
        const canvas = document.getElementById('canvas');
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let hash = 0;
        for (let i = 0; i < pixels.length; i += 7) hash = (hash * 31 + pixels[i]) | 0;
        window.frames.push(hash);
      }).observe(document.getElementById('stat-step'), { childList: true, characterData: true, subtree: true });
    };
    document.addEventListener('DOMContentLoaded', watch);
  });
}

const quick = 'views=4&patchViews=4&candidates=2';

// The built-in model (the robust Shapes twin), as a visitor gets it: no model in the URL.
test('a shareable URL with autostart paints, step by step, to a PNG that decodes', async (t) => {
  // Few views: SwiftShader runs WebGPU on the CPU, several seconds a step even for this model.
  const page = await openPage(t, `?prompt=a+large+yellow+star+on+a+blue+background&seed=3&steps=12&views=2&patchViews=2&candidates=2&autostart=1`, {
    mounts,
    before: recorder,
  });
  assert.equal(await waitForState(page, ['done', 'error'], 900_000), 'done', await page.textContent('#status'));
  const states = await page.evaluate(() => window.states);
  const order = ['loading', 'running', 'done'].map((s) => states.indexOf(s));
  assert.ok(order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])), `states ${states}`);
  const frames = await page.evaluate(() => window.frames);
  assert.ok(new Set(frames).size >= 10, `${new Set(frames).size} distinct canvases over ${frames.length} steps`);
  assert.equal(await page.isHidden('#prompt-notes'), true, 'every word of the prompt is one the model knows');
  const points = JSON.parse(await page.getAttribute('#plot', 'data-points'))[0];
  t.diagnostic(`scores ${points.map((p) => p[1].toFixed(4)).join(' ')}`);
  assert.equal(points.length, 13);
  assert.ok(points.at(-1)[1] > points[0][1] + 0.05, 'the plotted score rises');
  assert.equal(await page.getAttribute('#canvas', 'id'), 'canvas');
  // Download as a visitor does (a click), then decode the file in the page.
  const download = async (id) => {
    const [file] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
    return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
  };
  const png = await download('download-png');
  assert.equal(png.name, 'clipag.png');
  const decoded = await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const image = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    return { width: image.width, height: image.height };
  }, png.bytes.toString('base64'));
  assert.deepEqual(decoded, { width: 64, height: 64 });
  const gif = await download('download-gif');
  assert.equal(gif.bytes.subarray(0, 6).toString('latin1'), 'GIF89a');
  assert.match(page.url(), /prompt=a\+large\+yellow\+star/);
});

test("the empty fields show the chosen model's own defaults, and follow the model picker", async (t) => {
  const page = await openPage(t, '?model=/test-models/tiny-q8/', { mounts });
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  const shown = () => page.evaluate(() => ({
    steps: document.getElementById('steps').placeholder,
    views: document.getElementById('views').placeholder,
    patchViews: document.getElementById('patch-views').placeholder,
    lr: document.getElementById('lr').placeholder,
    jitter: document.getElementById('colour-jitter').checked,
    compare: document.getElementById('compare-model').value,
  }));
  // A converted model without a recommendation: the paper's recipe.
  assert.deepEqual(await shown(), { steps: '100', views: '32', patchViews: '32', lr: '0.0175', jitter: true, compare: 'shapes-plain' });
  // The built-in convolutional twin recommends the recipe measured best for it (its manifest).
  await page.selectOption('#model', 'shapes-rn-robust');
  await page.waitForFunction(() => document.getElementById('steps').placeholder === '60');
  assert.deepEqual(await shown(), { steps: '60', views: '16', patchViews: '0', lr: '0.05', jitter: false, compare: 'shapes-rn-plain' });
  await page.selectOption('#model', 'shapes-robust');
  await page.waitForFunction(() => document.getElementById('steps').placeholder === '40');
  assert.deepEqual(await shown(), { steps: '40', views: '8', patchViews: '8', lr: '0.05', jitter: false, compare: 'shapes-plain' });
});

test("an address's prompt is held to the field's length, as a typed one is", async (t) => {
  // Issue 35: a `?prompt=` link bypassed the 2,000 characters, and with autostart pinned the
  // engine cleaning it.
  const page = await openPage(t, `?prompt=${'a'.repeat(5000)}&negative=${'b'.repeat(3000)}`, { mounts });
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  assert.equal((await page.inputValue('#prompt')).length, 2000);
  assert.equal((await page.inputValue('#negative')).length, 2000);
});

test('the page names the words the built-in model does not know, and the ones it does', async (t) => {
  const page = await openPage(t, `?prompt=a+red+cat+on+the+moon&negative=a+blue+dog&steps=1&views=1&patchViews=0&candidates=1&autostart=1`, { mounts });
  assert.equal(await waitForState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  const notes = await page.$$eval('#prompt-notes p', (items) => items.map((i) => i.textContent));
  assert.equal(notes.length, 2, notes.join('\n'));
  assert.match(notes[0], /^Shapes.*does not know the words 'cat', 'moon' and reads each as an unknown word; the words it knows are: a, and, at, background, /);
  assert.match(notes[1], /in the negative prompt, the model does not know the word 'dog'/);
});

test('pause holds the step, resume continues, stop ends with a picture', async (t) => {
  // Colour jitter off and a smoothness, from the URL: the engine takes the settings (it
  // refuses fields it does not know), and the shared URL keeps them.
  const page = await openPage(t, `?prompt=a+red+circle&steps=200&${quick}&colourJitter=false&smoothness=0.3&model=/test-models/tiny-f32/&autostart=1`, { mounts });
  await page.waitForFunction(() => parseInt(document.getElementById('stat-step').textContent, 10) >= 3, null, { timeout: 180_000 });
  assert.equal(await page.isChecked('#colour-jitter'), false);
  assert.match(page.url(), /colourJitter=false/);
  assert.equal(await page.inputValue('#smoothness'), '0.3');
  assert.match(page.url(), /smoothness=0\.3/);
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Paused.', null, { timeout: 60_000 });
  const held = await page.textContent('#stat-step');
  await page.waitForTimeout(2000);
  assert.equal(await page.textContent('#stat-step'), held, 'no step while paused');
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction((h) => document.getElementById('stat-step').textContent !== h, held, { timeout: 60_000 });
  await page.getByRole('button', { name: 'Stop' }).click();
  assert.equal(await waitForState(page, ['done', 'error']), 'done');
  assert.match(await page.textContent('#status'), /Stopped/);
  assert.equal(await page.getAttribute('#download-png', 'aria-disabled'), 'false');
});

test('with the network off, a second visit paints again from the caches', async (t) => {
  const url = `?prompt=a+blue+square&steps=3&${quick}&model=/test-models/tiny-q8/&autostart=1`;
  const page = await openPage(t, url, { mounts });
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.context().setOffline(true);
  await page.reload();
  // The address now holds the run's settings without autostart: the visitor presses Generate.
  assert.match(page.url(), /model=%2Ftest-models%2Ftiny-q8%2F/);
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  await page.getByRole('button', { name: 'Generate' }).click();
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  assert.match(await page.textContent('#cached'), /tiny q8/);
});

test('a corrupt entry already in the cache is found by its sha256, dropped and fetched again', async (t) => {
  // Issue 35: the cache was trusted as it was; a damaged entry failed on every visit.
  const url = `?prompt=a+blue+square&steps=1&${quick}&model=/test-models/tiny-q8/&autostart=1`;
  const page = await openPage(t, url, { mounts });
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  const weights = new URL('/test-models/tiny-q8/weights.safetensors', page.url()).href;
  const sizes = await page.evaluate(async (weights) => {
    const cache = await caches.open('clipag-models-v1');
    const good = new Uint8Array(await (await cache.match(weights)).arrayBuffer());
    const bad = good.slice();
    bad[bad.length >> 1] ^= 0x40;
    await cache.put(weights, new Response(bad));
    return good.length;
  }, weights);
  await page.reload();
  assert.equal(await waitForState(page, ['idle', 'error']), 'idle', await page.textContent('#status'));
  await page.getByRole('button', { name: 'Generate' }).click();
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  // The entry now in the cache is the site's file again.
  const served = await page.evaluate(async (weights) => (await (await fetch(weights, { cache: 'no-store' })).arrayBuffer()).byteLength, weights);
  const same = await page.evaluate(async (weights) => {
    const digest = async (buffer) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', buffer))].join(',');
    const cached = await (await (await caches.open('clipag-models-v1')).match(weights)).arrayBuffer();
    const site = await (await fetch(weights, { cache: 'no-store' })).arrayBuffer();
    return (await digest(cached)) === (await digest(site));
  }, weights);
  assert.equal(served, sizes);
  assert.ok(same, 'the cached weights are the site\'s again');
});

test('a corrupt model folder gives a clear error and nothing is cached', async (t) => {
  const page = await openPage(t, `?prompt=a+cat&steps=3&${quick}&model=/test-models/corrupt/&autostart=1`, { mounts });
  assert.equal(await waitForState(page, ['done', 'error']), 'error');
  assert.match(await page.textContent('#status'), /weights\.safetensors does not match its sha256.*corrupt/);
  const cached = await page.evaluate(async () => (await (await caches.open('clipag-models-v1')).keys()).map((r) => r.url));
  assert.ok(!cached.some((u) => u.includes('/corrupt/')), `cached: ${cached}`);
});

test('compare mode paints the same prompt and seed through two models side by side', async (t) => {
  const page = await openPage(t, `?prompt=a+cat&seed=2&steps=4&${quick}&model=/test-models/tiny-f32/&compare=/test-models/tiny-q8/&autostart=1`, { mounts });
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  assert.equal(await page.isVisible('#canvas-compare'), true);
  const series = JSON.parse(await page.getAttribute('#plot', 'data-points'));
  assert.equal(series.length, 2);
  assert.equal(series[0].length, 5);
  assert.equal(series[1].length, 5);
  assert.match(await page.textContent('#caption-b'), /tiny q8: step 4/);
});

test('the page asks nothing of another origin, runs under a strict policy, and refuses a model elsewhere', async (t) => {
  // Issue 35: every request a run makes is to the page's own origin; the policy allows wasm to
  // compile and no other eval; a shared address naming a model on another site is refused
  // with a reason before any request leaves (the policy would have stopped it obscurely).
  const requests = [];
  const page = await openPage(t, `?prompt=a+red+circle&steps=2&${quick}&model=/test-models/tiny-q8/&autostart=1`, {
    mounts,
    before: (p) => p.on('request', (request) => requests.push(request.url())),
  });
  assert.equal(await waitForState(page, ['done', 'error']), 'done', await page.textContent('#status'));
  const origin = new URL(page.url()).origin;
  const foreign = requests.filter((url) => !url.startsWith(origin) && !url.startsWith('blob:') && !url.startsWith('data:'));
  assert.deepEqual(foreign, [], 'requests outside the origin');
  const policy = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
  assert.match(policy, /script-src 'self' 'wasm-unsafe-eval'/);
  assert.doesNotMatch(policy.replaceAll("'wasm-unsafe-eval'", ''), /unsafe-eval|unsafe-inline/);

  const elsewhere = 'http://127.0.0.2:9/models/x/';
  await page.goto(`${origin}/?prompt=a+red+circle&steps=1&model=${encodeURIComponent(elsewhere)}&autostart=1`);
  assert.equal(await waitForState(page, ['done', 'error']), 'error');
  assert.match(await page.textContent('#status'), /models load from this site only, not from http:\/\/127\.0\.0\.2:9/);
  assert.ok(!requests.some((url) => url.startsWith('http://127.0.0.2')), 'no request left for the other origin');
});
