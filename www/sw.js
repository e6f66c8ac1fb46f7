// The service worker: keeps the app shell (page, scripts, styles, engine, model list) so
// that a site served once works with the network off. Models are kept by the page itself
// (models.js, in the 'clipag-models-v1' cache), which this worker serves from too.
// build.sh stamps VERSION with a hash of the shell, so a new build replaces the old cache.

const VERSION = 'development';
const SHELL = `clipag-shell-${VERSION}`;
const MODELS = 'clipag-models-v1';
const FILES = [
  './',
  'index.html',
  'www/app.js',
  'www/catalogue.js',
  'www/engine.js',
  'www/form.js',
  'www/models.js',
  'www/run.js',
  'www/plot.js',
  'www/worker.js',
  'www/webgpu-shim.js',
  'www/style.css',
  'www/icon.svg',
  'pkg/clipag.js',
  'pkg/clipag_bg.wasm',
  'models/index.json',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('clipag-shell-') && k !== SHELL).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The network first (so a new build shows at once), the caches when it fails.
self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET' || new URL(event.request.url).origin !== self.location.origin) return;
  event.respondWith(
    fetch(event.request).catch(async () => {
      const url = new URL(event.request.url);
      url.search = '';
      const hit = (await caches.open(SHELL).then((c) => c.match(url.href)))
        ?? (await caches.open(MODELS).then((c) => c.match(url.href)));
      if (hit) return hit;
      if (event.request.mode === 'navigate') {
        const page = await caches.open(SHELL).then((c) => c.match(new URL('index.html', self.registration.scope).href));
        if (page) return page;
      }
      return Response.error();
    }),
  );
});
