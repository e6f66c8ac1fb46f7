// The engine, off the page's main thread: a module worker that loads models and runs
// generations on WebGPU (or the CPU), one step per request, so the page stays responsive and
// decides itself when to step, pause or stop.
//
// Requests (each with a numeric `id`, answered by a message with the same `id`):
//   { type: 'load', name, files: { manifest, weights, tokenizer }, backend } -> { manifest, device }
//   { type: 'start', model, request, startImage?, imagePrompt?: { bytes, weight } }
//                                                   -> { run, size, score, rgba, notes }
//     (notes: what the model cannot read of the prompt and the negative prompt, sentences)
//   { type: 'step', run }                           -> { report, rgba }
//   { type: 'best', run }                           -> { png }
//   { type: 'steer', run, request }                 -> { score } (new prompt and/or negative, from the next step)
//   { type: 'svg', run }                            -> { svg } (a strokes canvas's; else undefined)
//   { type: 'gif', frames, width, height, delay }   -> { gif }
//   { type: 'explain', model, image, captions }     -> { size, readings: [{ caption, cosine, probability, saliency }] }
//   { type: 'stop', run }                           -> {}
//   { type: 'check', backend }                      -> the device check's report
//   { type: 'time', files, backends, views }        -> { seconds: { [backend]: s a step } }
//     (the model loaded on each backend in turn, a step timed after one that compiles)
//   { type: 'defaults', manifest }                  -> the settings a generation takes unsent
//     (the model's recommended ones, else the paper's; nothing is loaded)
// A failure answers { error, kind, path? }: kind is the engine's own (its ErrorKind names:
// 'no-device', 'device-lost', 'out-of-memory', 'internal', 'invalid-input', 'bad-file' with the
// file's path, 'unsupported-model'), 'fatal' for a trap (a Rust panic leaves the module
// unusable: start a new worker) or 'error' for the worker's own.

import init, { Model, defaultSettings, deviceCheck, encodeGif } from '../pkg/clipag.js';
import { deviceLoss, installWebGpuShim } from './webgpu-shim.js';

installWebGpuShim();
const ready = init();
const models = new Map();
const runs = new Map();
let nextRun = 1;

/** How long a failed call waits for a device loss to be reported before it is believed not to be one. */
const LOSS_WAIT_MS = 500;

async function kindOf(error) {
  const kind = typeof error?.kind === 'string' ? error.kind : error instanceof WebAssembly.RuntimeError ? 'fatal' : 'error';
  // A step whose device went away fails as an internal error (a read-back that could not be
  // mapped) before the loss is reported: named for what it is, the page starts a new engine.
  if (kind === 'internal' && await deviceLoss(LOSS_WAIT_MS)) return 'device-lost';
  return kind;
}

const handlers = {
  async load({ name, files, backend }) {
    const model = await Model.load(files.manifest, new Uint8Array(files.weights), new Uint8Array(files.tokenizer), backend);
    models.get(name)?.free(); // a model loaded again replaces (and releases) the old one
    models.set(name, model);
    return { manifest: model.manifest, device: model.device };
  },
  async start({ model, request, startImage, imagePrompt }) {
    const loaded = models.get(model);
    if (!loaded) throw new Error(`no model named ${model} is loaded`);
    const generator = await loaded.generator(
      request, startImage ? new Uint8Array(startImage) : undefined,
      imagePrompt ? new Uint8Array(imagePrompt.bytes) : undefined, imagePrompt?.weight,
    );
    const run = nextRun++;
    runs.set(run, generator);
    const rgba = generator.currentRgba();
    const notes = [
      ...(request.prompt ? loaded.promptNotes(request.prompt) : []),
      ...(request.negative ? loaded.promptNotes(request.negative).map((n) => `in the negative prompt, ${n}`) : []),
    ];
    return { run, size: generator.size, score: generator.currentScore, rgba, notes, transfer: [rgba.buffer] };
  },
  async step({ run }) {
    const generator = runs.get(run);
    if (!generator) throw new Error('this generation was stopped');
    const { report, rgba } = await generator.step();
    return { report, rgba, transfer: [rgba.buffer] };
  },
  async best({ run }) {
    const png = runs.get(run).bestPng();
    return { png, transfer: [png.buffer] };
  },
  async explain({ model, image, captions }) {
    const loaded = models.get(model);
    if (!loaded) throw new Error(`no model named ${model} is loaded`);
    return loaded.explain(new Uint8Array(image), captions);
  },
  async steer({ run, request }) {
    const generator = runs.get(run);
    if (!generator) throw new Error('this generation was stopped');
    return { score: await generator.steer(request) };
  },
  async svg({ run }) {
    return { svg: await runs.get(run).bestSvg() };
  },
  async gif({ frames, width, height, delay }) {
    const gif = encodeGif(new Uint8Array(frames), width, height, delay);
    return { gif, transfer: [gif.buffer] };
  },
  async stop({ run }) {
    runs.get(run)?.free();
    runs.delete(run);
    return {};
  },
  async time({ files, backends, views }) {
    const seconds = {};
    for (const backend of backends) {
      const model = await Model.load(files.manifest, new Uint8Array(files.weights), new Uint8Array(files.tokenizer), backend);
      try {
        seconds[backend] = (await model.bench(views, 1, 1)).seconds_per_step;
      } finally {
        model.free();
      }
    }
    return { seconds };
  },
  async check({ backend }) {
    return deviceCheck(backend);
  },
  async defaults({ manifest }) {
    return { settings: defaultSettings(manifest) };
  },
};

self.onmessage = async ({ data }) => {
  try {
    await ready;
    const { transfer = [], ...result } = await handlers[data.type](data);
    self.postMessage({ id: data.id, ...result }, transfer);
  } catch (error) {
    const kind = await kindOf(error);
    // A lost device is told by the browser's reason, not by the failure it caused.
    const message = (kind === 'device-lost' && await deviceLoss()) || String(error?.message ?? error);
    self.postMessage({ id: data.id, error: message, kind, path: error?.path });
  }
};
