// Where models come from (the built-in list, a folder URL on this site, a folder from disk),
// how their files arrive (streamed, with progress), are checked (size and sha256 against the
// manifest, before anything is kept) and are kept (the Cache API, so a second visit starts
// at once and works offline).

const CACHE = 'clipag-models-v1';
const FILES = ['weights.safetensors', 'tokenizer.json'];

/** The built-in models: `[{ id, name, path, description }]` from models/index.json. */
export async function builtInModels() {
  const response = await fetch(new URL('../models/index.json', import.meta.url));
  if (!response.ok) throw new Error(`the list of built-in models could not be read (${response.status})`);
  return response.json();
}

async function sha256(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Checks a file's bytes against the manifest, as the engine will, so bad bytes are never cached. */
async function verify(manifest, name, buffer) {
  const entry = manifest.files?.[name];
  if (!entry) throw new Error(`manifest.json lists no ${name}`);
  if (buffer.byteLength !== entry.bytes) {
    throw new Error(`${name} is ${buffer.byteLength} bytes but the manifest says ${entry.bytes}: the download is incomplete or the file was replaced`);
  }
  const hash = await sha256(buffer);
  if (hash !== entry.sha256) throw new Error(`${name} does not match its sha256 in the manifest: the file is corrupt`);
}

/** How many times a download that breaks off is taken up again before the page gives up. */
const RESUMES = 3;

const megabytes = (n) => `${(n / 1e6).toFixed(1)} MB`;

/**
 * Downloads `url` (file `file` of a model, `total` bytes by its manifest), reporting
 * `{ file, loaded, total, bytesPerSecond }` as it streams. A connection that breaks off is
 * taken up where it stopped (a Range request; a server that ignores it sends the whole file,
 * which starts the count again), up to RESUMES times. No more than `total` bytes are held: a
 * server sending more is stopped there.
 */
async function download(url, file, total, onProgress) {
  const started = performance.now();
  let chunks = [];
  let loaded = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(url, { cache: 'no-store', headers: loaded ? { Range: `bytes=${loaded}-` } : {} });
      if (!response.ok) throw Object.assign(new Error(`${file} could not be downloaded (${response.status})`), { final: true });
      if (loaded && !(response.status === 206 && response.headers.get('Content-Range')?.startsWith(`bytes ${loaded}-`))) {
        chunks = [];
        loaded = 0;
      }
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.byteLength;
        if (loaded > total) {
          await reader.cancel().catch(() => {});
          throw Object.assign(new Error(`${file} is larger than the ${total} bytes its manifest says: the file was replaced`), { final: true });
        }
        const seconds = (performance.now() - started) / 1000;
        onProgress({ file, loaded, total, bytesPerSecond: seconds > 0 ? loaded / seconds : 0 });
      }
      if (loaded === total) break;
      throw new Error(`the server ended it after ${megabytes(loaded)} of ${megabytes(total)}`);
    } catch (error) {
      if (error.final) throw error;
      if (attempt === RESUMES) {
        const what = loaded ? `stopped arriving after ${megabytes(loaded)} of ${megabytes(total)}` : 'could not be downloaded';
        throw new Error(`${file} ${what} (${error.message}; tried ${RESUMES + 1} times), and nothing was kept. ` +
          'Check the connection and press Generate to try again.');
      }
      console.warn(`${file} broke off after ${loaded} bytes (${error.message}); taking it up again`);
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes.buffer;
}

/** The models' cache, or null where the browser has none (an insecure origin) or refuses it. */
async function openCache() {
  if (!globalThis.caches) return null;
  return caches.open(CACHE).catch(() => null);
}

/**
 * Models come from this site only (the page's Content-Security-Policy allows no other), so a
 * folder elsewhere (a shared address naming one) is refused here with a reason, before any
 * request is made.
 */
function checkOrigin(base) {
  const origin = new URL(base).origin;
  if (origin !== location.origin) {
    throw new Error(`models load from this site only, not from ${origin}: download the model folder and choose it under "A model folder from your disk"`);
  }
}

/** A folder's manifest.json as text, from the cache when the folder is kept there. */
export async function fetchManifest(base) {
  checkOrigin(base);
  const url = new URL('manifest.json', base).href;
  const cached = await (await openCache())?.match(url);
  if (cached) return cached.text();
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) throw new Error(`no model at ${base}: manifest.json answered ${response.status}`);
  return response.text();
}

/** The site's manifest for `base`: `{ text }`, or `{ text: null, why }` when it does not come. */
async function currentManifest(base) {
  try {
    const response = await fetch(new URL('manifest.json', base).href, { cache: 'no-store' });
    return response.ok ? { text: await response.text() } : { text: null, why: `manifest.json answered ${response.status}` };
  } catch (error) {
    return { text: null, why: `manifest.json could not be fetched (${error.message})` }; // offline: what is cached stands
  }
}

/**
 * Fetches a model folder at `base` (a URL ending in '/'): from the cache when it is there
 * whole, else from the network, verified, then cached. Resolves to
 * `{ manifest (text), weights, tokenizer (ArrayBuffers), fromCache, notKept }`, `notKept`
 * saying why a download could not be cached (it is used from memory all the same).
 */
export async function fetchModel(base, onProgress = () => {}) {
  checkOrigin(base);
  const cache = await openCache();
  const url = (name) => new URL(name, base).href;
  const cached = cache ? await Promise.all(['manifest.json', ...FILES].map((name) => cache.match(url(name)))) : [];
  // Asked first, so a model the site has replaced is not read from the cache.
  const { text: online, why } = await currentManifest(base);
  if (cache && cached.every(Boolean)) {
    const [manifest, weights, tokenizer] = await Promise.all([
      cached[0].text(),
      cached[1].arrayBuffer(),
      cached[2].arrayBuffer(),
    ]);
    const fresh = online === null || online === manifest;
    // A cached file is checked as a download is: a corrupt entry is dropped and fetched again.
    const check = async () => {
      const parsed = JSON.parse(manifest);
      await verify(parsed, FILES[0], weights);
      await verify(parsed, FILES[1], tokenizer);
    };
    const sound = fresh && await check()
      .then(() => true, (error) => (console.warn(`${base}: the cached copy is dropped: ${error.message}`), false));
    if (sound) return { manifest, weights, tokenizer, fromCache: true };
    await removeCachedModel(base).catch(() => {});
  }
  if (online === null) throw new Error(`no model at ${base}: ${why}`);
  const manifestText = online;
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch {
    throw new Error(`${url('manifest.json')} is not JSON`);
  }
  const buffers = {};
  for (const name of FILES) {
    const declared = manifest.files?.[name]?.bytes;
    if (!Number.isSafeInteger(declared) || declared < 0) throw new Error(`manifest.json gives ${name} no size`);
    buffers[name] = await download(url(name), name, declared, onProgress);
    await verify(manifest, name, buffers[name]);
  }
  // Everything arrived whole: keep it, the manifest last (a model is listed as cached only
  // when all three files are). Failing to keep it (storage full) costs the next visit a
  // download, not this one its model.
  let notKept = cache ? null : 'this browser offers the page no storage';
  if (cache) {
    try {
      for (const name of FILES) await cache.put(url(name), new Response(buffers[name]));
      await cache.put(url('manifest.json'), new Response(manifestText, { headers: { 'Content-Type': 'application/json' } }));
    } catch (error) {
      notKept = error.name === 'QuotaExceededError' ? 'the browser refused the space (its storage for this site is full)' : error.message;
      console.warn(`${base} could not be kept for offline use: ${error.message}`);
      await removeCachedModel(base).catch(() => {});
    }
  }
  return { manifest: manifestText, weights: buffers[FILES[0]], tokenizer: buffers[FILES[1]], fromCache: false, notKept };
}

/** A model folder picked from disk (its three files), verified like a download. */
export async function readModelFiles(fileList) {
  const byName = new Map([...fileList].map((file) => [file.name, file]));
  for (const name of ['manifest.json', ...FILES]) {
    if (!byName.has(name)) throw new Error(`the chosen folder has no ${name}`);
  }
  const manifestText = await byName.get('manifest.json').text();
  const manifest = JSON.parse(manifestText);
  const buffers = {};
  for (const name of FILES) {
    buffers[name] = await byName.get(name).arrayBuffer();
    await verify(manifest, name, buffers[name]);
  }
  return { manifest: manifestText, weights: buffers[FILES[0]], tokenizer: buffers[FILES[1]], fromCache: false };
}

/** The cached models: `[{ base, name, bytes }]`. */
export async function cachedModels() {
  const cache = await openCache();
  if (!cache) return [];
  const keys = await cache.keys();
  const urls = new Set(keys.map((r) => r.url));
  const out = [];
  for (const request of keys.filter((r) => r.url.endsWith('/manifest.json'))) {
    const base = request.url.slice(0, -'manifest.json'.length);
    if (!FILES.every((name) => urls.has(base + name))) continue;
    const manifest = await (await cache.match(request)).json();
    const bytes = Object.values(manifest.files ?? {}).reduce((sum, f) => sum + (f.bytes ?? 0), 0);
    out.push({ base, name: manifest.name, bytes });
  }
  return out;
}

export async function removeCachedModel(base) {
  const cache = await openCache();
  if (!cache) return;
  await Promise.all(['manifest.json', ...FILES].map((name) => cache.delete(new URL(name, base).href)));
}
