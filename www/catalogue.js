// The model catalogue: the models a visitor can pick (built in, a folder on this site, a
// folder from disk), the two pickers that list them, the list of what this browser keeps,
// and getting a model into the engine (downloaded, or read from the cache, first).

import { cachedModels, fetchManifest, fetchModel, removeCachedModel } from './models.js';

const $ = (id) => document.getElementById(id);
const PICKERS = ['model', 'compare-model'];

const entries = new Map(); // model id -> { name, base, twin? } or { name, files }
const loaded = new Map(); // model id -> { manifest, device } once the engine holds it
const notKept = new Map(); // model id -> why its download could not be kept

/** Adds a model to the pickers (and selects it as the model to paint with). */
export function addModel(id, entry, select = false) {
  entries.set(id, entry);
  for (const list of PICKERS.map($)) {
    if (![...list.options].some((o) => o.value === id)) list.add(new Option(entry.name, id));
  }
  if (select) $('model').value = id;
}

export const entryOf = (id) => entries.get(id);

/** A built-in model's id, or a folder path on this site, added to the picker. */
export function modelId(value) {
  if (entries.has(value)) return value;
  const id = value.endsWith('/') ? value : `${value}/`;
  addModel(id, { name: value, base: new URL(id, location.href).href });
  return id;
}

/** The engine was replaced: it holds no model any more. */
export function forgetLoaded() {
  loaded.clear();
}

/** The manifest of model `id`, without downloading its weights. */
export async function manifestOf(id) {
  const entry = entries.get(id);
  return entry.files?.manifest ?? fetchManifest(entry.base);
}

/** Lists the models this browser keeps, each with a Remove button. */
export async function refreshCached() {
  const list = $('cached');
  list.replaceChildren();
  for (const model of await cachedModels()) {
    const item = document.createElement('li');
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove ${model.name} from this browser`);
    remove.onclick = async () => {
      await removeCachedModel(model.base);
      for (const [id, entry] of entries) if (entry.base === model.base) loaded.delete(id);
      refreshCached();
    };
    item.append(`${model.name} (${(model.bytes / 1e6).toFixed(1)} MB) `, remove);
    list.append(item);
  }
  for (const [id, why] of notKept) {
    list.append(Object.assign(document.createElement('li'), { textContent: `${entries.get(id).name} could not be kept (${why}): it paints from memory now and downloads again on the next visit.` }));
  }
  if (!list.children.length) list.append(Object.assign(document.createElement('li'), { textContent: 'None yet.' }));
}

function describeProgress({ file, loaded: done, total, bytesPerSecond }) {
  const mb = (n) => (n / 1e6).toFixed(1);
  const percent = total ? ` (${Math.floor((100 * done) / total)}%)` : '';
  $('progress').hidden = false;
  $('progress').max = total || 1;
  $('progress').value = done;
  return `Downloading ${file}: ${mb(done)} of ${mb(total)} MB${percent} at ${mb(bytesPerSecond)} MB/s`;
}

/**
 * Model `id`'s files `{ manifest, weights, tokenizer, fromCache }`: downloaded (or read from
 * the cache), or as they were chosen from disk; `status(message)` hears the progress.
 */
export async function filesOf(id, status) {
  const entry = entries.get(id);
  if (!entry) throw new Error(`unknown model ${id}`);
  status(`Getting ${entry.name}…`);
  const files = entry.files ?? await fetchModel(entry.base, (p) => status(describeProgress(p)));
  if (files.notKept) notKept.set(id, files.notKept);
  else notKept.delete(id);
  $('progress').hidden = true;
  return files;
}

/**
 * Makes sure `engine` holds model `id` on `backend`, downloading (or reading from the cache)
 * first unless its `files` are given (from `filesOf`); `status(message)` hears what is
 * happening. Resolves to `{ manifest, device }`.
 */
export async function ensureLoaded(engine, id, backend, status, files = null) {
  if (loaded.has(id)) return loaded.get(id);
  const entry = entries.get(id);
  files ??= await filesOf(id, status);
  status(`Loading ${entry.name} onto the ${backend === 'gpu' ? 'GPU' : 'CPU'}…`);
  let result;
  try {
    result = await engine.call(
      { type: 'load', name: id, files: { manifest: files.manifest, weights: files.weights, tokenizer: files.tokenizer }, backend },
      [files.weights, files.tokenizer].filter((b) => b.byteLength && !entry.files),
    );
  } catch (error) {
    // A model that verifies but will not load must not fail from the cache on every visit.
    if (files.fromCache && error.kind !== 'device-lost' && error.kind !== 'no-device') await removeCachedModel(entry.base).catch(() => {});
    throw error;
  }
  loaded.set(id, result);
  // A folder given by its path is named by its manifest once loaded.
  const name = result.manifest?.name;
  if (name && name !== entry.name) {
    entry.name = name;
    for (const list of PICKERS.map($)) {
      for (const option of list.options) if (option.value === id) option.text = name;
    }
  }
  refreshCached();
  return result;
}
