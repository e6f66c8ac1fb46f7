// Screenshots of the page before, during and after a run, at desktop and phone widths, for
// docs/ and the README. Runs the built site (dist/) in Debian's headless Chromium with WebGPU.
// Usage: node tools/screenshots.mjs [OUT_DIR]   (default docs/screenshots)

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { serve } from './serve.mjs';

const out = process.argv[2] ?? 'docs/screenshots';
const prompt = 'a large yellow star on a blue background';
const widths = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

mkdirSync(out, { recursive: true });
const server = await serve('dist', 0);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking'],
});
try {
  for (const [name, viewport] of Object.entries(widths)) {
    const page = await browser.newPage({ viewport, deviceScaleFactor: name === 'phone' ? 2 : 1 });
    // Fewer views and steps than the defaults: WebGPU here is SwiftShader, on the CPU.
    await page.goto(`${server.url}?seed=1&steps=30&views=4&patchViews=4`);
    await page.waitForFunction(() => document.body.dataset.state === 'idle', null, { timeout: 120_000 });
    await page.fill('#prompt', prompt);
    await page.screenshot({ path: join(out, `${name}-before.png`), fullPage: true });
    await page.click('#generate');
    await page.waitForFunction(() => parseInt(document.getElementById('stat-step').textContent, 10) >= 15, null, { timeout: 900_000 });
    await page.click('#pause');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'Paused.');
    await page.screenshot({ path: join(out, `${name}-during.png`), fullPage: true });
    await page.click('#pause'); // now labelled Resume
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 900_000 });
    await page.screenshot({ path: join(out, `${name}-after.png`), fullPage: true });
    console.log(`${name}: ${await page.textContent('#status')}`);
    await page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
