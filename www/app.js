// The page: what a visitor types, sees and downloads. The engine runs in a worker
// (worker.js); this file keeps the page's state in `document.body.dataset.state` (idle,
// loading, running, done, error), drives the steps, and draws every one.

import { builtInModels, cachedModels, fetchManifest, fetchModel, readModelFiles, removeCachedModel } from './models.js';
import { ScorePlot } from './plot.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const plot = new ScorePlot($('plot'));

let backend = 'gpu';
let engine;
const catalogue = new Map(); // model id -> { name, base } or { name, files }
const loaded = new Map(); // model id -> { manifest, device } once the worker holds it
let current; // the generation in progress: { runs, paused, stopped, resume }

function setState(state, message) {
  document.body.dataset.state = state;
  if (message !== undefined) $('status').textContent = message;
}

/** One request to the worker, answered by the message with its id. */
function createEngine() {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const pending = new Map();
  let next = 1;
  worker.onmessage = ({ data }) => {
    const { resolve, reject } = pending.get(data.id);
    pending.delete(data.id);
    if (data.error) reject(Object.assign(new Error(data.error), { kind: data.kind }));
    else resolve(data);
  };
  worker.onerror = (event) => {
    const error = Object.assign(new Error(`the engine stopped: ${event.message}`), { kind: 'fatal' });
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
  };
  return {
    call(message, transfer = []) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, ...message }, transfer);
      });
    },
    terminate: () => worker.terminate(),
  };
}

/**
 * A fresh engine (after a lost device or a crash the old one is unusable): models load
 * again on the next Generate, and the page need not be reloaded.
 */
function restartEngine() {
  engine?.terminate();
  engine = createEngine();
  loaded.clear();
}

/** Shows a message without leaving the state a run keeps (controls usable while painting). */
function note(state, message) {
  if (current) $('status').textContent = message;
  else setState(state, message);
}

/** Why WebGPU is unusable here, or null when an adapter is granted. */
async function webgpuProblem() {
  if (!('gpu' in navigator)) {
    return 'This browser does not offer WebGPU. It is available in Chrome and Edge 113 or later, ' +
      'Safari 26 or later and Firefox 141 or later on Windows; on Linux, Chrome needs the flag ' +
      'chrome://flags/#enable-unsafe-webgpu.';
  }
  let adapter;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (error) {
    return `WebGPU is present but asking it for a GPU failed (${error.message}).`;
  }
  if (!adapter) {
    return 'WebGPU is present but no GPU adapter was granted (the GPU may be blocklisted, or ' +
      'hardware acceleration is turned off in the browser settings).';
  }
  return null;
}

// ---------------------------------------------------------------- models

function addModel(id, entry, select = false) {
  catalogue.set(id, entry);
  for (const list of [$('model'), $('compare-model')]) {
    if (![...list.options].some((o) => o.value === id)) list.add(new Option(entry.name, id));
  }
  if (select) $('model').value = id;
}

async function refreshCached() {
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
      for (const [id, entry] of catalogue) if (entry.base === model.base) loaded.delete(id);
      refreshCached();
    };
    item.append(`${model.name} (${(model.bytes / 1e6).toFixed(1)} MB) `, remove);
    list.append(item);
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

/** Makes sure the worker holds model `id`, downloading (or reading from the cache) first. */
async function ensureLoaded(id) {
  if (loaded.has(id)) return loaded.get(id);
  const entry = catalogue.get(id);
  if (!entry) throw new Error(`unknown model ${id}`);
  setState('loading', `Getting ${entry.name}…`);
  const files = entry.files ?? await fetchModel(entry.base, (p) => setState('loading', describeProgress(p)));
  $('progress').hidden = true;
  setState('loading', `Loading ${entry.name} onto the ${backend === 'gpu' ? 'GPU' : 'CPU'}…`);
  const result = await engine.call(
    { type: 'load', name: id, files: { manifest: files.manifest, weights: files.weights, tokenizer: files.tokenizer }, backend },
    [files.weights, files.tokenizer].filter((b) => b.byteLength && !entry.files),
  );
  loaded.set(id, result);
  // A folder given by its path is named by its manifest once loaded.
  const name = result.manifest?.name;
  if (name && name !== entry.name) {
    entry.name = name;
    for (const list of [$('model'), $('compare-model')]) {
      for (const option of list.options) if (option.value === id) option.text = name;
    }
  }
  const { adapter, api } = result.device;
  $('device-info').textContent = backend === 'gpu'
    ? `WebGPU (${api})${adapter ? ` on ${adapter}` : ''}.`
    : 'The CPU (burn-flex): slow, but it needs no GPU.';
  refreshCached();
  return result;
}

// ---------------------------------------------------------------- settings and URL

const NUMBERS = { steps: 'steps', views: 'views', 'patch-views': 'patchViews', lr: 'lr', seed: 'seed', size: 'size', candidates: 'candidates', 'init-noise': 'initNoise', smoothness: 'smoothness' };

function request() {
  const out = { prompt: $('prompt').value.trim() };
  const negative = $('negative').value.trim();
  if (negative) out.negative = negative;
  for (const [id, key] of Object.entries(NUMBERS)) {
    const value = $(id).value.trim();
    if (value !== '') out[key] = Number(value);
  }
  // Sent only when it differs from the model's default.
  const jitter = $('colour-jitter');
  if (jitter.checked !== (jitter.dataset.default === 'true')) out.colourJitter = jitter.checked;
  return out;
}

/** The fields' defaults for model `id` (its recommended settings, else the paper's), shown
 * greyed in the empty fields; colour jitter is set to the model's. Kept as they were when
 * the model's manifest cannot be read: loading it will say why. */
async function showDefaults(id) {
  const entry = catalogue.get(id);
  try {
    const manifest = entry.files?.manifest ?? await fetchManifest(entry.base);
    const { settings } = await engine.call({ type: 'defaults', manifest });
    for (const [field, key] of Object.entries(NUMBERS)) {
      // The engine's numbers are f32: shown as the decimals they were written as.
      if (settings[key] !== undefined) $(field).placeholder = String(Number(settings[key].toPrecision(6)));
    }
    $('colour-jitter').dataset.default = String(settings.colourJitter);
    $('colour-jitter').checked = settings.colourJitter;
  } catch (error) {
    console.warn(`the defaults of ${entry?.name ?? id} could not be read: ${error.message}`);
  }
}

/** The form, from the URL (`?prompt=...&seed=...&steps=...&model=...&compare=...`). */
function applyParams() {
  if (params.has('prompt')) $('prompt').value = params.get('prompt');
  if (params.has('negative')) $('negative').value = params.get('negative');
  for (const id of Object.keys(NUMBERS)) {
    const key = NUMBERS[id];
    const value = params.get(key) ?? params.get(id);
    if (value !== null) $(id).value = value;
  }
  if (params.has('model')) $('model').value = modelId(params.get('model'));
  if (params.has('compare')) {
    $('compare').checked = true;
    if (params.get('compare') && params.get('compare') !== '1') $('compare-model').value = modelId(params.get('compare'));
  }
}

/** A built-in model's id, or a folder path on this site, added to the picker. */
function modelId(value) {
  if (catalogue.has(value)) return value;
  const id = value.endsWith('/') ? value : `${value}/`;
  addModel(id, { name: value, base: new URL(id, location.href).href });
  return id;
}

/** The URL that reproduces this run. */
function shareUrl() {
  const url = new URL(location.href);
  url.search = '';
  const r = request();
  for (const [key, value] of Object.entries(r)) url.searchParams.set(key, String(value));
  // A folder from disk cannot be shared: the address then names no model (the default).
  const shareable = (id) => !id.startsWith('disk:');
  if (shareable($('model').value)) url.searchParams.set('model', $('model').value);
  if ($('compare').checked) url.searchParams.set('compare', shareable($('compare-model').value) ? $('compare-model').value : '1');
  if (backend === 'cpu') url.searchParams.set('backend', 'cpu');
  return url;
}

// ---------------------------------------------------------------- painting

function draw(canvas, size, rgba) {
  if (canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
}

// A long run keeps at most this many frames (for the animation) and snapshots: when full,
// every other one is dropped, so they stay spread over the whole run.
const MAX_FRAMES = 120;

function thin(list) {
  return list.length >= MAX_FRAMES ? list.filter((_, i) => i % 2 === 0) : list;
}

function addSnapshot(run, step) {
  const strip = $('snapshots');
  if (strip.children.length >= MAX_FRAMES) [...strip.children].forEach((c, i) => i % 2 && c.remove());
  const thumb = document.createElement('canvas');
  thumb.width = run.size;
  thumb.height = run.size;
  thumb.getContext('2d').drawImage(run.canvas, 0, 0);
  thumb.setAttribute('aria-label', `${run.label}, step ${step}`);
  thumb.title = `${run.label}, step ${step}`;
  strip.append(thumb);
}

function setDownloadsEnabled(enabled) {
  for (const id of ['download-png', 'download-gif']) $(id).setAttribute('aria-disabled', String(!enabled));
}

/** Points a download link at `blob`, releasing what it pointed at before. */
function offer(id, blob) {
  const link = $(id);
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
}

/** What a model cannot read of the prompt (unknown words, a tail past its context), under the prompt. */
function showPromptNotes(label, notes) {
  for (const note of notes) {
    $('prompt-notes').append(Object.assign(document.createElement('p'), { textContent: `${label}: ${note}.` }));
  }
  $('prompt-notes').hidden = !$('prompt-notes').children.length;
}

function explain(error) {
  const message = error.message ?? String(error);
  if (error.kind === 'device-lost') {
    return `The GPU device was lost (${message}). The best picture so far is kept; press Generate to start again.`;
  }
  if (error.kind === 'out-of-memory') {
    return `The GPU ran out of memory (${message}). Try fewer views or a smaller canvas under Advanced.`;
  }
  if (error.kind === 'fatal') {
    return `The engine stopped (${message}). The picture so far is kept; press Generate to start again.`;
  }
  return message;
}

async function generate() {
  if (current) return;
  const req = request();
  if (!req.prompt) {
    setState('error', 'Type a prompt first: what should the picture show?');
    $('prompt').focus();
    return;
  }
  const ids = [$('model').value, ...($('compare').checked ? [$('compare-model').value] : [])];
  current = { runs: [], paused: false, stopped: false, resume: null };
  history.replaceState(null, '', shareUrl());
  $('generate').disabled = true;
  $('stop').disabled = false;
  plot.clear();
  $('snapshots').replaceChildren();
  setDownloadsEnabled(false);
  $('prompt-notes').replaceChildren();
  $('prompt-notes').hidden = true;
  $('run-b').hidden = ids.length < 2;
  document.body.dataset.compare = String(ids.length > 1);
  try {
    for (const id of ids) await ensureLoaded(id);
    const file = $('start-image').files[0];
    const startImage = file ? await file.arrayBuffer() : undefined;
    setState('loading', 'Choosing a starting canvas…');
    const canvases = [$('canvas'), $('canvas-compare')];
    const colors = ['#3d5afe', '#ff7043'];
    for (const [k, id] of ids.entries()) {
      const started = await engine.call({ type: 'start', model: id, request: req, startImage: startImage?.slice(0) });
      const run = {
        id, label: catalogue.get(id).name, run: started.run, size: started.size, canvas: canvases[k],
        caption: $(k ? 'caption-b' : 'caption-a'), series: plot.add(catalogue.get(id).name, colors[k]),
        frames: [new Uint8Array(started.rgba)], report: null,
      };
      showPromptNotes(run.label, started.notes);
      draw(run.canvas, run.size, started.rgba);
      run.caption.textContent = `${run.label}: start, score ${started.score.toFixed(3)}`;
      plot.push(run.series, 0, started.score, 0);
      current.runs.push(run);
    }
    if (current.stopped) throw Object.assign(new Error('Stopped before the first step.'), { kind: 'stopped' });
    $('pause').disabled = false;
    setState('running', 'Painting…');
    let startedAt = performance.now();
    let steps = 0;
    while (current.runs.some((r) => !r.report?.done) && !current.stopped) {
      if (current.paused) {
        setState('running', 'Paused.');
        const pausedAt = performance.now();
        await new Promise((resolve) => (current.resume = resolve));
        startedAt += performance.now() - pausedAt; // speed counts painting time only
        if (current.stopped) break;
        setState('running', 'Painting…');
      }
      for (const run of current.runs.filter((r) => !r.report?.done)) {
        const { report, rgba } = await engine.call({ type: 'step', run: run.run });
        run.report = report;
        draw(run.canvas, run.size, rgba);
        plot.push(run.series, report.step, report.score, report.best_step);
        run.caption.textContent = `${run.label}: step ${report.step}, score ${report.score.toFixed(3)}`;
        if (report.snapshot) {
          addSnapshot(run, report.step);
          run.frames = thin(run.frames);
          run.frames.push(new Uint8Array(rgba));
        }
        if (run === current.runs[0]) steps += 1;
        const figure = (v) => (Number.isFinite(v) ? v.toFixed(4) : '–');
        $('stat-step').textContent = `${report.step} / ${report.steps}`;
        $('stat-rate').textContent = (steps / ((performance.now() - startedAt) / 1000)).toFixed(2);
        $('stat-score').textContent = figure(report.score);
        $('stat-best').textContent = `step ${report.best_step} (${figure(report.best_score)})`;
      }
    }
    await finish(current.stopped ? 'Stopped. The best picture so far is ready to download.' : 'Done.');
  } catch (error) {
    if (error.kind === 'stopped') {
      await finish(null);
      setState('idle', 'Stopped before painting began.');
      return;
    }
    setState('error', explain(error));
    const lost = ['device-lost', 'fatal'].includes(error.kind);
    if (lost) {
      // The engine and its runs are gone; the page still shows the last picture: offer that.
      const runs = current?.runs ?? [];
      current.runs = [];
      if (runs.length) {
        $('canvas').toBlob((blob) => {
          if (!blob) return;
          offer('download-png', blob);
          $('download-gif').setAttribute('aria-disabled', 'true');
          $('download-png').setAttribute('aria-disabled', 'false');
        });
      }
      restartEngine();
    }
    await finish(null);
    if (backend === 'gpu' && !lost && /WebGPU|adapter|compute device/i.test(error.message ?? '')) {
      $('use-cpu').hidden = false; // the GPU would not start: the CPU may still paint
    }
  }
}

/**
 * Offers the picture (the lowest-loss canvas) and the animation, frees the runs and gives the
 * controls back, whatever fails on the way (a failure here must never leave Generate dead).
 */
async function finish(message) {
  const runs = current?.runs ?? [];
  const first = runs[0];
  try {
    if (first) {
      const { png } = await engine.call({ type: 'best', run: first.run });
      offer('download-png', new Blob([png], { type: 'image/png' }));
      setDownloadsEnabled(true);
      const frames = new Uint8Array(first.frames.reduce((n, f) => n + f.length, 0));
      let at = 0;
      for (const f of first.frames) {
        frames.set(f, at);
        at += f.length;
      }
      const { gif } = await engine.call({ type: 'gif', frames: frames.buffer, size: first.size, delay: 200 }, [frames.buffer]);
      offer('download-gif', new Blob([gif], { type: 'image/gif' }));
    }
  } catch (error) {
    console.warn('the downloads could not be prepared:', error.message);
    $('download-gif').setAttribute('aria-disabled', 'true');
  } finally {
    for (const run of runs) await engine.call({ type: 'stop', run: run.run }).catch(() => {});
    current = null;
    $('generate').disabled = false;
    $('pause').disabled = true;
    $('pause').textContent = 'Pause';
    $('stop').disabled = true;
    document.body.dataset.paused = 'false';
  }
  if (message) setState('done', message);
}

function togglePause() {
  if (!current) return;
  current.paused = !current.paused;
  $('pause').textContent = current.paused ? 'Resume' : 'Pause';
  document.body.dataset.paused = String(current.paused);
  if (!current.paused && current.resume) {
    current.resume();
    current.resume = null;
  }
}

function stop() {
  if (!current) return;
  current.stopped = true;
  if (current.resume) current.resume();
}

// ---------------------------------------------------------------- device check

async function runCheck() {
  $('check-result').hidden = true;
  $('device-info').textContent = 'Computing a gradient…';
  try {
    const report = await engine.call({ type: 'check', backend });
    const norm = Math.sqrt(report.grad.reduce((s, g) => s + g * g, 0));
    $('info-backend').textContent = report.device.backend === 'gpu' ? `WebGPU (${report.device.api})` : 'CPU (burn-flex)';
    $('info-adapter').textContent = [report.device.adapter, report.device.driver].filter(Boolean).join(' · ') || 'not disclosed by the browser';
    $('info-loss').textContent = report.loss.toPrecision(7);
    $('info-grad').textContent = norm.toPrecision(7);
    $('check-result').hidden = false;
    $('device-info').textContent = 'This device computed a forward and backward pass.';
    window.clipagCheck = report; // for automation: the browser tests compare it with native code
    return true;
  } catch (error) {
    $('device-info').textContent = `The device check failed: ${error.message}`;
    return false;
  }
}

// ---------------------------------------------------------------- start

async function main() {
  setState('loading', 'Starting the engine…');
  $('generate').disabled = true; // until the engine and the model list are ready
  $('controls').addEventListener('submit', (event) => {
    event.preventDefault();
    generate();
  });
  $('pause').onclick = togglePause;
  $('stop').onclick = stop;
  $('run-check').onclick = runCheck;
  for (const id of ['download-png', 'download-gif']) {
    $(id).addEventListener('click', (event) => {
      if ($(id).getAttribute('aria-disabled') === 'true') event.preventDefault();
    });
  }
  $('load-url').onclick = () => {
    const path = $('model-url').value.trim();
    if (!path) return;
    $('model').value = modelId(path);
    note('idle', `Added ${path}; it downloads when you press Generate.`);
  };
  $('model-files').onchange = async () => {
    try {
      const files = await readModelFiles($('model-files').files);
      const name = JSON.parse(files.manifest).name;
      addModel(`disk:${name}`, { name: `${name} (from disk)`, files }, true);
      note('idle', `${name} is ready.`);
    } catch (error) {
      note('error', `That folder is not a usable model: ${error.message}`);
    }
  };

  if ('serviceWorker' in navigator && location.protocol !== 'file:') {
    navigator.serviceWorker.register(new URL('../sw.js', import.meta.url), { scope: new URL('../', import.meta.url).pathname })
      .catch((error) => console.warn('offline support is unavailable:', error.message));
  }

  backend = params.get('backend') === 'cpu' ? 'cpu' : 'gpu';
  if (backend === 'gpu') {
    const problem = await webgpuProblem();
    if (problem) {
      setState('error', `${problem} The CPU can paint the small built-in models instead, slowly.`);
      $('use-cpu').hidden = false;
      await new Promise((resolve) => ($('use-cpu').onclick = resolve));
      $('use-cpu').hidden = true;
      backend = 'cpu';
    }
  }
  $('use-cpu').onclick = () => {
    $('use-cpu').hidden = true;
    backend = 'cpu';
    restartEngine();
    setState('idle', 'Ready, on the CPU. Press Generate.');
  };
  engine = createEngine();
  try {
    for (const model of await builtInModels()) {
      addModel(model.id, { name: model.name, twin: model.twin, base: new URL(model.path, new URL('../', import.meta.url)).href });
    }
  } catch (error) {
    setState('error', error.message);
    return;
  }
  // Compare paints the chosen model beside its twin (robust beside plain) where it has one.
  const compareTwin = () => {
    const twin = catalogue.get($('model').value)?.twin;
    if (catalogue.has(twin)) $('compare-model').value = twin;
  };
  compareTwin();
  applyParams();
  await showDefaults($('model').value);
  // A colour jitter in the address is the visitor's choice, over the model's default.
  if (params.has('colourJitter')) $('colour-jitter').checked = params.get('colourJitter') !== 'false';
  $('model').addEventListener('change', () => {
    compareTwin();
    showDefaults($('model').value);
  });
  refreshCached();
  if (params.has('check')) await runCheck();
  $('generate').disabled = false;
  setState('idle', backend === 'gpu' ? 'Ready. Type a prompt and press Generate.' : 'Ready, on the CPU. Type a prompt and press Generate.');
  if (params.get('autostart') === '1') generate();
}

main().catch((error) => setState('error', `The page could not start: ${error.message}`));
