// The page: it wires the rooms together and draws. The engine runs in a worker (engine.js
// talks to it), the form and the address are form.js, the models catalogue.js, a run's
// steps run.js; this file keeps the page's state in `document.body.dataset.state` (idle,
// loading, running, done, error) and shows every step.

import { adapterUnclear, createEngine, softwareAdapter, webgpuProblem } from './engine.js';
import { addModel, ensureLoaded, entryOf, filesOf, forgetLoaded, manifestOf, modelId, refreshCached } from './catalogue.js';
import { applyParams, applySwitchParams, chosenModels, request, shareUrl, showDefaults, steersOf } from './form.js';
import { readModelFiles, builtInModels } from './models.js';
import { MAX_FRAMES, Painting } from './run.js';
import { ScorePlot } from './plot.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const plot = new ScorePlot($('plot'));

let backend = 'gpu';
/** Why the page chose the engine it paints with, when it chose for the visitor. */
let backendChoice = null;
/** Whether the first Generate times a step on each engine first (the adapter is unclear). */
let timeEngines = false;
/** The views of the step timed on each engine (the built-in model's own number). */
const TIMED_VIEWS = 16;
let engine;
let current; // the Painting in progress

function setState(state, message) {
  document.body.dataset.state = state;
  if (message !== undefined) $('status').textContent = message;
}

/** Shows a message without leaving the state a run keeps (controls usable while painting). */
function note(state, message) {
  if (current) $('status').textContent = message;
  else setState(state, message);
}

/**
 * A fresh engine (after a lost device or a crash the old one is unusable): models load
 * again on the next Generate, and the page need not be reloaded.
 */
function restartEngine() {
  engine?.terminate();
  engine = createEngine();
  forgetLoaded();
}

/**
 * Loads model `id` on each engine in turn, times a step on each and paints on the faster
 * from now on, saying which and why under "Your device". Resolves to the model's files (the
 * worker timed copies), so that loading it need not fetch them again.
 */
async function chooseByTiming(id) {
  timeEngines = false;
  const files = await filesOf(id, (message) => setState('loading', message));
  setState('loading', 'Timing a step on WebGPU and on the CPU, to paint on the faster…');
  const { seconds } = await engine.call({ type: 'time', files, backends: ['gpu', 'cpu'], views: TIMED_VIEWS });
  backend = seconds.gpu <= seconds.cpu ? 'gpu' : 'cpu';
  const figure = (s) => `${s.toFixed(3)} s`;
  backendChoice = `This browser does not say what its WebGPU adapter is, so a step of ${TIMED_VIEWS} views was timed on ` +
    `each engine: ${figure(seconds.gpu)} on WebGPU, ${figure(seconds.cpu)} on the CPU; the page paints on ` +
    `${backend === 'gpu' ? 'WebGPU' : 'the CPU (burn-flex)'}. Add ?backend=gpu or ?backend=cpu to the address to choose.`;
  $('device-info').textContent = backendChoice;
  return files;
}

async function load(id, files = null) {
  const result = await ensureLoaded(engine, id, backend, (message) => setState('loading', message), files);
  const { adapter, api } = result.device;
  $('device-info').textContent = backendChoice ?? (backend === 'gpu'
    ? `WebGPU (${api})${adapter ? ` on ${adapter}` : ''}.`
    : 'The CPU (burn-flex): slow, but it needs no GPU.');
  return result;
}

/** The fields' defaults for model `id`, kept as they were when its manifest cannot be read
 * (loading it will say why). */
async function showDefaultsOf(id) {
  try {
    const { settings } = await engine.call({ type: 'defaults', manifest: await manifestOf(id) });
    showDefaults(settings);
  } catch (error) {
    console.warn(`the defaults of ${entryOf(id)?.name ?? id} could not be read: ${error.message}`);
  }
}

// ---------------------------------------------------------------- painting

function draw(canvas, size, rgba) {
  if (canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), size, size), 0, 0);
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
  const imagePrompt = $('image-prompt').files[0];
  if (!req.prompt && !imagePrompt) {
    setState('error', 'Type a prompt first (or choose an image prompt): what should the picture show?');
    $('prompt').focus();
    return;
  }
  const ids = chosenModels();
  const painting = current = new Painting(engine);
  history.replaceState(null, '', shareUrl(backend));
  $('generate').disabled = true;
  $('stop').disabled = false;
  plot.clear();
  $('snapshots').replaceChildren();
  setDownloadsEnabled(false);
  $('download-svg').hidden = true;
  $('prompt-notes').replaceChildren();
  $('prompt-notes').hidden = true;
  $('run-b').hidden = ids.length < 2;
  document.body.dataset.compare = String(ids.length > 1);
  try {
    const timed = timeEngines ? await chooseByTiming(ids[0]) : null;
    for (const id of ids) await load(id, id === ids[0] ? timed : null);
    const file = $('start-image').files[0];
    const startImage = file ? await file.arrayBuffer() : undefined;
    const image = imagePrompt ? { bytes: await imagePrompt.arrayBuffer(), weight: Number($('image-weight').value || 1) } : undefined;
    setState('loading', 'Choosing a starting canvas…');
    const canvases = [$('canvas'), $('canvas-compare')];
    const colors = ['#3d5afe', '#ff7043'];
    await painting.start(ids, req, { startImage, imagePrompt: image }, (run, started) => {
      const k = painting.runs.length - 1;
      Object.assign(run, {
        label: entryOf(run.id).name, canvas: canvases[k], caption: $(k ? 'caption-b' : 'caption-a'),
        series: plot.add(entryOf(run.id).name, colors[k]),
      });
      showPromptNotes(run.label, started.notes);
      draw(run.canvas, run.size, started.rgba);
      run.caption.textContent = `${run.label}: start, score ${started.score.toFixed(3)}`;
      plot.push(run.series, 0, started.score, 0);
    });
    if (painting.stopped) throw Object.assign(new Error('Stopped before the first step.'), { kind: 'stopped' });
    $('pause').disabled = false;
    setState('running', 'Painting…');
    const steers = [...scheduledSteers];
    scheduledSteers = [];
    await painting.paint({
      onPause: (paused) => setState('running', paused ? 'Paused.' : 'Painting…'),
      onSteer: (step, stage) => {
        plot.mark(step, stage.prompt);
        for (const run of painting.runs) if (run.stageScore !== undefined) plot.push(run.series, step, run.stageScore, run.report?.best_step ?? 0);
        setState('running', `From step ${step}: painting “${stage.prompt}”${stage.negative ? `, away from “${stage.negative}”` : ''}.`);
        history.replaceState(null, '', shareUrl(backend, painting.stages));
      },
      onStep: (run, report, rgba, rate) => {
        // A shared run's steers, replayed at their steps (the fields show them as they come).
        if (run === painting.runs[0] && steers[0]?.step === report.step) {
          const next = steers.shift();
          $('prompt').value = next.prompt;
          $('negative').value = next.negative;
          painting.steer(next).catch(() => {});
        }
        draw(run.canvas, run.size, rgba);
        plot.push(run.series, report.step, report.score, report.best_step);
        run.caption.textContent = `${run.label}: step ${report.step}, score ${report.score.toFixed(3)}`;
        if (report.snapshot) addSnapshot(run, report.step);
        if (run === painting.runs[0]) {
          const figure = (v) => (Number.isFinite(v) ? v.toFixed(4) : '–');
          $('stat-step').textContent = `${report.step} / ${report.steps}`;
          $('stat-rate').textContent = rate.toFixed(2);
          $('stat-score').textContent = figure(report.score);
          $('stat-best').textContent = `step ${report.best_step} (${figure(report.best_score)})`;
        }
      },
    });
    await finish(painting.stopped ? 'Stopped. The best picture so far is ready to download.' : 'Done.');
  } catch (error) {
    if (error.kind === 'stopped') {
      await finish(null);
      setState('idle', 'Stopped before painting began.');
      return;
    }
    const ended = error.kind === 'ended';
    setState(ended ? 'idle' : 'error', ended ? 'Stopped. The engine was busy, so it was ended; the picture on the page is kept.' : explain(error));
    const lost = ['device-lost', 'fatal', 'ended'].includes(error.kind);
    if (lost) {
      // The engine and its runs are gone; the page still shows the last picture: offer that.
      if (painting.abandon()) {
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
    if (backend === 'gpu' && error.kind === 'no-device') {
      $('use-cpu').hidden = false; // the GPU would not start: the CPU may still paint
    }
  }
}

/**
 * Offers the picture (the lowest-loss canvas) and the animation, frees the runs and gives the
 * controls back, whatever fails on the way (a failure here must never leave Generate dead).
 */
async function finish(message) {
  const painting = current;
  try {
    if (painting?.runs.length) {
      offer('download-png', new Blob([await painting.bestPng()], { type: 'image/png' }));
      setDownloadsEnabled(true);
      offer('download-gif', new Blob([await painting.gif()], { type: 'image/gif' }));
      const svg = await painting.bestSvg();
      if (svg) {
        offer('download-svg', new Blob([svg], { type: 'image/svg+xml' }));
        $('download-svg').hidden = false;
        $('download-svg').setAttribute('aria-disabled', 'false');
      }
    }
  } catch (error) {
    console.warn('the downloads could not be prepared:', error.message);
    $('download-gif').setAttribute('aria-disabled', 'true');
  } finally {
    await painting?.release();
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
  const paused = current.togglePause();
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  document.body.dataset.paused = String(paused);
}

/** How long Stop waits for the step (or start) in flight before ending the engine. */
const STOP_GRACE_MS = 10_000;

/**
 * Stops after the step in flight. An engine still in one call after `STOP_GRACE_MS` (a
 * step on a slow adapter, or a start that does not end) is ended and a fresh one started,
 * so Stop always stops; the picture on the page is kept and offered.
 */
function stop() {
  const painting = current;
  if (!painting) return;
  painting.stop();
  setTimeout(() => {
    if (current === painting && !painting.settled) restartEngine();
  }, STOP_GRACE_MS);
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
    $('device-info').textContent = [backendChoice, 'This device computed a forward and backward pass.'].filter(Boolean).join(' ');
    window.clipagCheck = report; // for automation: the browser tests compare it with native code
    return true;
  } catch (error) {
    $('device-info').textContent = `The device check failed: ${error.message}`;
    return false;
  }
}

// ---------------------------------------------------------------- steering

/** Steers shared in the address, replayed by the next run (then forgotten). */
let scheduledSteers = [];
/** How long typing must pause before a run is steered to the new words. */
const STEER_AFTER_MS = 700;
let steerTimer = null;

/** While a run paints, a changed prompt or negative prompt steers it from the next step. */
function steerSoon() {
  clearTimeout(steerTimer);
  steerTimer = setTimeout(() => {
    const painting = current;
    const prompt = $('prompt').value.trim();
    if (!painting || painting.stopped || !painting.runs.length || !prompt) return;
    const last = painting.stages.at(-1);
    const negative = $('negative').value.trim();
    if (last && last.prompt === prompt && last.negative === negative) return;
    painting.steer({ prompt, negative }).catch((error) => {
      if (error.kind !== 'replaced') setState('running', `The new prompt could not be used: ${explain(error)} The run goes on as before.`);
    });
  }, STEER_AFTER_MS);
}

// ---------------------------------------------------------------- explain

/** The picture to explain: the chosen file, else the painting on the page, as PNG bytes. */
async function pictureToExplain() {
  const file = $('explain-image').files[0];
  if (file) return file.arrayBuffer();
  const blob = await new Promise((resolve) => $('canvas').toBlob(resolve, 'image/png'));
  if (!blob) throw new Error('There is no painting on the page yet: choose a picture to explain.');
  return blob.arrayBuffer();
}

/** Scores the captions (or the model's words) for the picture and draws each one's map. */
async function explainPicture() {
  const status = (text) => ($('explain-status').textContent = text);
  if (current) {
    status('A painting is running: explain when it is done (or stopped).');
    return;
  }
  $('explain-run').disabled = true;
  try {
    const image = await pictureToExplain();
    const id = $('model').value;
    await load(id);
    setState('idle', 'Ready.');
    status('Reading the picture…');
    const captions = $('explain-captions').value.split('\n').map((c) => c.trim()).filter(Boolean);
    const { size, readings } = await engine.call({ type: 'explain', model: id, image, captions }, [image]);
    $('explain-readings').replaceChildren(...readings.map((reading) => {
      const item = document.createElement('li');
      const map = Object.assign(document.createElement('canvas'), { width: size, height: size });
      const rgba = new Uint8ClampedArray(4 * size * size);
      reading.saliency.forEach((v, i) => rgba.set([255 * v, 255 * v, 255 * v, 255], 4 * i));
      map.getContext('2d').putImageData(new ImageData(rgba, size, size), 0, 0);
      map.setAttribute('aria-label', `Where "${reading.caption}" is read`);
      const text = Object.assign(document.createElement('span'), {
        textContent: `${reading.caption}: ${(100 * reading.probability).toFixed(1)}\u00a0% (cosine\u00a0${reading.cosine.toFixed(3)})`,
      });
      item.append(map, text);
      return item;
    }));
    status(`${entryOf(id).name} reads ${readings.length} caption${readings.length === 1 ? '' : 's'}, most probable first.`);
  } catch (error) {
    status(explain(error));
  } finally {
    $('explain-run').disabled = false;
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
  $('explain-run').onclick = explainPicture;
  $('prompt').addEventListener('input', steerSoon);
  $('negative').addEventListener('input', steerSoon);
  for (const id of ['download-png', 'download-gif', 'download-svg']) {
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
    // A new build's worker takes over at once (sw.js); this page keeps the engine and
    // scripts it started with, so a run goes on, and the visitor is told a reload brings
    // the new version. The first worker taking over a first visit is no news.
    let controlled = Boolean(navigator.serviceWorker.controller);
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      if (controlled) $('update').hidden = false;
      controlled = true;
    });
  }

  // `?backend=cpu` or `gpu` is the visitor's choice; without one the page chooses.
  const asked = params.get('backend');
  backend = asked === 'cpu' ? 'cpu' : 'gpu';
  if (backend === 'gpu') {
    const problem = await webgpuProblem();
    const software = problem || asked === 'gpu' ? null : await softwareAdapter();
    timeEngines = !problem && !asked && !software && await adapterUnclear();
    if (software) {
      backend = 'cpu';
      backendChoice = `WebGPU here is ${software}, a software renderer on the CPU, slower than the ` +
        'CPU engine, so the page paints on the CPU (burn-flex). Add ?backend=gpu to the address to use WebGPU anyway.';
      $('device-info').textContent = backendChoice;
    }
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
    const twin = entryOf($('model').value)?.twin;
    if (entryOf(twin)) $('compare-model').value = twin;
  };
  compareTwin();
  applyParams(params, modelId);
  scheduledSteers = steersOf(params);
  await showDefaultsOf($('model').value);
  applySwitchParams(params);
  $('model').addEventListener('change', () => {
    compareTwin();
    showDefaultsOf($('model').value);
  });
  refreshCached();
  if (params.has('check')) await runCheck();
  $('generate').disabled = false;
  setState('idle', backend === 'gpu' ? 'Ready. Type a prompt and press Generate.' : 'Ready, on the CPU. Type a prompt and press Generate.');
  if (params.get('autostart') === '1') generate();
}

main().catch((error) => setState('error', `The page could not start: ${error.message}`));
