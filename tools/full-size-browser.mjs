// A full-size open_clip architecture with random weights in the CLIPAG layout, written and
// converted at q8 by the native command line, loaded in the page and run forward and
// backward on WebGPU: the load time, the engine's memory and two steps' times, as one JSON
// line (docs/performance.md). tests/browser/vit-b-32.test.mjs does this for ViT-B/32 in
// every test run; RN50 takes minutes on SwiftShader, so it is this command, run by hand.
// Needs a built site (./build.sh) and the native binary.
//
// Usage: node tools/full-size-browser.mjs [--arch rn50|vit-b-32] [--quant q8]

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serve } from './serve.mjs';
import { fullSizePass } from '../tests/browser/harness.mjs';

const { values: options } = parseArgs({
  options: { arch: { type: 'string', default: 'rn50' }, quant: { type: 'string', default: 'q8' } },
});
const bin = process.env.CLIPAG_BIN ?? `${process.env.HOME}/.cache/clipag-web/target-native/release/clipag`;
const models = mkdtempSync(join(tmpdir(), 'clipag-full-size-'));
const server = await serve(process.env.CLIPAG_DIST ?? 'dist', 0, { '/test-models/': models });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking'],
});
try {
  const checkpoint = join(models, 'random.pt');
  execFileSync(bin, ['random-checkpoint', '--arch', options.arch, '--seed', '3', '--out', checkpoint]);
  execFileSync(bin, ['convert', checkpoint, '--out', join(models, 'model'), '--quant', options.quant, '--name', `random ${options.arch}`]);
  rmSync(checkpoint);
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  await page.goto(server.url);
  const result = await fullSizePass(page, '/test-models/model/');
  console.log(JSON.stringify({ arch: options.arch, quant: options.quant, where: 'browser', ...result }));
  if (!(result.finite && result.nonzero && Number.isFinite(result.cosine))) process.exitCode = 1;
} finally {
  await browser.close();
  await server.close();
  rmSync(models, { recursive: true, force: true });
}
