// Screenshots of the page's plug-and-play features, for docs/: a strokes painting, a run
// steered to a new prompt, an image prompt, and the explain panel. Runs the built site
// (dist/) in Debian's headless Chromium, the built-in model on the CPU engine (faster than
// SwiftShader's WebGPU here). Usage: node tools/plug-screenshots.mjs PICTURE.png "ITS CAPTION"
// [OUT_DIR] (default docs/screenshots); the picture is the image prompt and the one explained
// (`clipag shapes render` draws such pictures with their captions).

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from './serve.mjs';

const [picture, caption, out = 'docs/screenshots'] = process.argv.slice(2);
if (!picture || !caption) throw new Error('usage: node tools/plug-screenshots.mjs PICTURE.png "ITS CAPTION" [OUT_DIR]');
mkdirSync(out, { recursive: true });
const server = await serve('dist', 0);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking'],
});
const done = (page) => page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 900_000 });
const open = async (query) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${server.url}${query}`);
  await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout: 120_000 });
  return page;
};
const shoot = async (page, name) => {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  console.log(`${name}: ${await page.textContent('#status')}`);
  await page.close();
};
try {
  // Strokes, with the Advanced panel open on the choice.
  let page = await open('?prompt=a+large+orange+star+at+the+top+right+on+a+purple+background&param=strokes&strokes=128&seed=1&backend=cpu');
  await page.click('#advanced summary');
  await page.click('#generate');
  await done(page);
  await shoot(page, 'strokes');

  // Steered at step 20 of 40.
  page = await open('?prompt=a+red+circle+on+a+white+background&steps=40&seed=1&backend=cpu');
  await page.click('#generate');
  await page.waitForFunction(() => parseInt(document.getElementById('stat-step').textContent, 10) >= 20, null, { timeout: 900_000 });
  await page.fill('#prompt', 'a blue square on a yellow background');
  await done(page);
  await shoot(page, 'steering');

  // An image prompt alone.
  page = await open('?seed=2&backend=cpu');
  await page.setInputFiles('#image-prompt', picture);
  await page.click('#generate');
  await done(page);
  await shoot(page, 'image-prompt');

  // The explain panel on the same picture, its caption among others of the world.
  page = await open('?backend=cpu');
  await page.click('#explain summary');
  await page.setInputFiles('#explain-image', picture);
  await page.fill('#explain-captions', [caption, 'a small purple square at the top left on a white background', 'a yellow star at the top left on a purple background', 'a green triangle at the top on a blue background'].join('\n'));
  await page.click('#explain-run');
  await page.waitForFunction(() => document.querySelectorAll('#explain-readings li').length === 4, null, { timeout: 120_000 });
  await page.locator('#explain').scrollIntoViewIfNeeded();
  await shoot(page, 'explain');
} finally {
  await browser.close();
  await server.close();
}
