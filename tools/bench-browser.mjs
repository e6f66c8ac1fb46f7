// The browser side of the benchmark: the same generation step as `clipag bench`, timed by the
// same code (bench::measure) inside the page on WebGPU; and the time from page load to the
// first painted step with the built-in model already cached. Prints one JSON line per figure.
// Needs a built site (./build.sh). Chromium's WebGPU here is whatever it finds: SwiftShader
// (on the CPU) on a machine without a GPU.
//
// Usage: node tools/bench-browser.mjs [--arch shapes|shapes-rn|vit-b-32|rn50] [--views 8,64]
//                                     [--warmup 3] [--steps 10] [--backend gpu|cpu] [--startup]
// `shapes` is the built-in robust Shapes ViT (models/shapes-robust), `shapes-rn` the
// convolutional robust twin (models/shapes-rn-robust), as `clipag bench` names them; `vit-b-32`
// and `rn50` are open_clip's architectures with random weights (no such checkpoint can be
// fetched here): the work of a step depends on the shapes, not the values.

import { chromium } from 'playwright-core';
import { parseArgs } from 'node:util';
import { serve } from './serve.mjs';

const { values: options } = parseArgs({
  options: {
    arch: { type: 'string', default: 'shapes' },
    views: { type: 'string', default: '8,64' },
    warmup: { type: 'string', default: '3' },
    steps: { type: 'string', default: '10' },
    backend: { type: 'string', default: 'gpu' },
    startup: { type: 'boolean', default: false },
  },
});

const server = await serve(process.env.CLIPAG_DIST ?? 'dist', 0);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage();
  page.on('pageerror', (error) => console.error(`[page error] ${error.message}`));
  await page.goto(server.url);
  const lines = await page.evaluate(async ({ arch, views, warmup, steps, backend }) => {
    const engine = await import('/pkg/clipag.js');
    const { installWebGpuShim } = await import('/www/webgpu-shim.js');
    installWebGpuShim();
    await engine.default();
    const base = arch === 'shapes-rn' ? '/models/shapes-rn-robust/' : '/models/shapes-robust/';
    const get = async (name) => new Uint8Array(await (await fetch(base + name)).arrayBuffer());
    const manifest = await (await fetch(`${base}manifest.json`)).text();
    // The prompt's tokens come from the built-in model's small vocabulary (the text is
    // embedded once, outside the timed steps).
    const text = { context_length: 77, vocab_size: 49408, width: 512, layers: 12, heads: 8, mlp_width: 2048 };
    const random = {
      'vit-b-32': { embed_dim: 512, vision: { image_size: 224, patch_size: 32, width: 768, layers: 12, heads: 12, mlp_width: 3072 }, text, quick_gelu: false },
      rn50: { embed_dim: 1024, vision: { image_size: 224, layers: [3, 4, 6, 3], width: 64, heads: 32 }, text, quick_gelu: false },
    };
    const model = random[arch]
      ? await engine.Model.random(JSON.stringify(random[arch]), await get('tokenizer.json'), backend)
      : await engine.Model.load(manifest, await get('weights.safetensors'), await get('tokenizer.json'), backend);
    const out = [];
    for (const count of views) {
      const figures = await model.bench(count, warmup, steps);
      out.push({ arch, where: 'browser', backend, adapter: model.device.adapter, ...figures });
    }
    return out;
  }, {
    arch: options.arch,
    views: options.views.split(',').map(Number),
    warmup: Number(options.warmup),
    steps: Number(options.steps),
    backend: options.backend,
  });
  for (const line of lines) console.log(JSON.stringify(line));

  if (options.startup) {
    // First visit fills the caches (app shell and the built-in model); the second is timed
    // from navigation to the first step painted on the canvas. Few views and start
    // candidates: with a software adapter the defaults take minutes a step.
    const visit = async () => {
      const started = Date.now();
      await page.goto(`${server.url}?prompt=a+red+star&steps=3&views=4&patchViews=4&candidates=2&autostart=1`);
      await page.waitForFunction(() => parseInt(document.getElementById('stat-step').textContent, 10) >= 1, null, { timeout: 600_000 });
      const seconds = (Date.now() - started) / 1000;
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: 600_000 });
      return seconds;
    };
    const first = await visit();
    const cached = await visit();
    console.log(JSON.stringify({ what: 'page load to first painted step', first_visit_seconds: first, cached_visit_seconds: cached }));
  }
} finally {
  await browser.close();
  await server.close();
}
