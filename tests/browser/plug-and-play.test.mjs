// Plug and play in the page, as a visitor uses it, with the built-in model on the CPU engine
// (the page's choice on this machine; WebGPU's numerics are generate.test.mjs's): a strokes
// painting and its SVG, which the browser's own SVG renderer draws as the PNG shows it; a run
// steered mid-way to a new prompt, its share URL and its captioned animation; an image
// prompt; and the explain panel.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native, openPage, waitForState } from './harness.mjs';

const world = mkdtempSync(join(tmpdir(), 'clipag-browser-plug-'));
after(() => rmSync(world, { recursive: true, force: true }));
let captions = [];

before(() => {
  native(['shapes', 'render', '--count', '6', '--seed', '3', '--out', world]);
  captions = readFileSync(join(world, 'captions.txt'), 'utf8').trim().split('\n').map((line) => line.split('\t'));
});

async function download(page, id) {
  const [file] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
  return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
}

test('a strokes painting downloads as an SVG that the browser draws as the PNG shows it', async (t) => {
  const page = await openPage(t, '?prompt=a+red+star+on+a+white+background&param=strokes&strokes=24&steps=4&views=2&patchViews=2&candidates=2&backend=cpu&autostart=1');
  assert.equal(await waitForState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  assert.equal(await page.inputValue('#param'), 'strokes');
  assert.equal(await page.isVisible('#download-svg'), true, 'the SVG is offered');
  const svg = await download(page, 'download-svg');
  const png = await download(page, 'download-png');
  assert.equal(svg.name, 'clipag.svg');
  assert.equal((svg.bytes.toString().match(/<path /g) ?? []).length, 24);
  // Both drawn by the browser at 64 x 64: the SVG by its own renderer (Skia).
  const difference = await page.evaluate(async ([svgText, pngBase64]) => {
    const pixels = async (blob) => {
      const image = await createImageBitmap(blob);
      const canvas = new OffscreenCanvas(64, 64);
      canvas.getContext('2d').drawImage(image, 0, 0, 64, 64);
      return canvas.getContext('2d').getImageData(0, 0, 64, 64).data;
    };
    const fromSvg = await new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = async () => {
        const canvas = new OffscreenCanvas(64, 64);
        canvas.getContext('2d').drawImage(img, 0, 0, 64, 64);
        resolve(canvas.getContext('2d').getImageData(0, 0, 64, 64).data);
      };
      img.onerror = () => reject(new Error('the SVG did not load'));
      img.src = URL.createObjectURL(new Blob([svgText], { type: 'image/svg+xml' }));
    });
    const fromPng = await pixels(new Blob([Uint8Array.from(atob(pngBase64), (c) => c.charCodeAt(0))], { type: 'image/png' }));
    let sum = 0;
    let count = 0;
    for (let i = 0; i < fromPng.length; i += 4) {
      for (let c = 0; c < 3; c++) sum += Math.abs(fromPng[i + c] - fromSvg[i + c]) / 255;
      count += 3;
    }
    return sum / count;
  }, [svg.bytes.toString(), png.bytes.toString('base64')]);
  t.diagnostic(`mean absolute difference between the PNG and the SVG drawn by Chromium: ${difference.toFixed(4)}`);
  assert.ok(difference < 0.02, `the SVG differs from the PNG by ${difference}`);
});

test('a run steered to a new prompt paints toward it, and its URL and animation keep the prompts in order', async (t) => {
  const first = 'a red circle on a white background';
  const second = 'a blue square on a yellow background';
  const page = await openPage(t, `?prompt=${encodeURIComponent(first)}&steps=24&seed=1&backend=cpu&autostart=1`);
  await page.waitForFunction(() => parseInt(document.getElementById('stat-step').textContent, 10) >= 8, null, { timeout: 300_000 });
  await page.fill('#prompt', second);
  assert.equal(await waitForState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  const [[step, label]] = JSON.parse(await page.getAttribute('#plot', 'data-marks'));
  assert.equal(label, second);
  const points = JSON.parse(await page.getAttribute('#plot', 'data-points'))[0];
  const atChange = points.filter(([s]) => s === step).at(-1)[1];
  const last = points.at(-1)[1];
  t.diagnostic(`steered at step ${step}: the new prompt's score ${atChange.toFixed(4)} then, ${last.toFixed(4)} at the end`);
  assert.ok(step >= 8 && step < 24, `steered at step ${step}`);
  assert.ok(last > atChange + 0.1, `the new prompt's score went from ${atChange} to ${last}`);
  // The address records both prompts in order; the animation is captioned with them.
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('prompt'), first);
  assert.deepEqual(JSON.parse(url.searchParams.get('steer')), [step, second, '']);
  const gif = (await download(page, 'download-gif')).bytes;
  assert.equal(gif.toString('latin1', 0, 6), 'GIF89a');
  assert.deepEqual([gif.readUInt16LE(6), gif.readUInt16LE(8)], [256, 280], 'frames enlarged over a caption bar');

  // The shared address replays the steer at its step.
  const again = await openPage(t, `${url.search}&autostart=1`);
  assert.equal(await waitForState(again, ['done', 'error'], 300_000), 'done', await again.textContent('#status'));
  assert.deepEqual(JSON.parse(await again.getAttribute('#plot', 'data-marks')), [[step, second]]);
  assert.equal(await again.inputValue('#prompt'), second);
});

test('an image prompt alone paints toward the picture', async (t) => {
  const page = await openPage(t, '?steps=15&seed=2&backend=cpu');
  await waitForState(page, ['idle']);
  await page.setInputFiles('#image-prompt', join(world, captions[3][0]));
  await page.click('#generate');
  assert.equal(await waitForState(page, ['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  const points = JSON.parse(await page.getAttribute('#plot', 'data-points'))[0];
  t.diagnostic(`cosine with the picture: ${points[0][1].toFixed(4)} at the start, ${points.at(-1)[1].toFixed(4)} at the end`);
  assert.ok(points.at(-1)[1] > points[0][1] + 0.2, 'the canvas moves toward the picture\'s embedding');
});

test('the explain panel ranks a render\'s own caption first and draws each caption\'s gradient map', async (t) => {
  const page = await openPage(t, '?backend=cpu');
  await waitForState(page, ['idle']);
  const [file, own] = captions[3];
  await page.click('#explain summary');
  await page.setInputFiles('#explain-image', join(world, file));
  await page.fill('#explain-captions', captions.map(([, caption]) => caption).join('\n'));
  await page.click('#explain-run');
  await page.waitForFunction((n) => document.querySelectorAll('#explain-readings li').length === n, captions.length, { timeout: 120_000 });
  const readings = await page.$$eval('#explain-readings li', (items) => items.map((li) => {
    const canvas = li.querySelector('canvas');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0;
    for (let i = 0; i < data.length; i += 4) lit += data[i] > 32 ? 1 : 0;
    return { text: li.textContent, lit };
  }));
  t.diagnostic(readings.map((r) => r.text).join(' | '));
  assert.ok(readings[0].text.startsWith(`${own}:`), readings[0].text);
  assert.ok(readings.every((r) => r.lit > 0), 'every map shows where the gradient falls');
  // Without captions, the model's own words.
  await page.fill('#explain-captions', '');
  await page.click('#explain-run');
  await page.waitForFunction(() => document.querySelectorAll('#explain-readings li').length === 33, null, { timeout: 120_000 });
});
