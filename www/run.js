// The run loop: one request painted by one model, or by two side by side (compare), a step
// at a time through the engine, with pause and stop. No DOM: what happens is told to the
// caller's callbacks, which draw it.

// A long run keeps at most this many frames (for the animation): when full, every other one
// is dropped, so they stay spread over the whole run.
export const MAX_FRAMES = 120;

const thin = (list) => (list.length >= MAX_FRAMES ? list.filter((_, i) => i % 2 === 0) : list);

/** A steered run's animation: frames this many times their size, over a bar of this many pixels. */
const CAPTIONED = 4;
const CAPTION_BAR = 24;

/** A frame (`side` x `side` RGBA) enlarged, with `prompt` written under it: RGBA bytes. */
function captioned(rgba, side, prompt) {
  const [width, height] = [CAPTIONED * side, CAPTIONED * side + CAPTION_BAR];
  const source = new OffscreenCanvas(side, side);
  source.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), side, side), 0, 0);
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, width, height);
  context.imageSmoothingEnabled = false;
  context.drawImage(source, 0, 0, width, width);
  context.fillStyle = '#111';
  context.font = '13px sans-serif';
  context.textBaseline = 'middle';
  let text = prompt;
  while (text.length > 1 && context.measureText(text).width > width - 8) text = `${text.slice(0, -2)}…`;
  context.fillText(text, 4, width + CAPTION_BAR / 2);
  return new Uint8Array(context.getImageData(0, 0, width, height).data.buffer);
}

export class Painting {
  constructor(engine) {
    this.engine = engine;
    this.runs = []; // { id, run, size, frames, report, ...what the caller adds }
    this.paused = false;
    this.stopped = false;
    /** Whether the step loop has ended (what a Stop waits for). */
    this.settled = false;
    this.resume = null;
    /** The prompts in order: `{ step, prompt, negative }`, the first at step 0, then each steer. */
    this.stages = [];
    this.pendingSteer = null;
  }

  /**
   * Steers every run to `{ prompt, negative }` before the next step (a step running now
   * finishes first); resolves once it is applied.
   */
  steer(stage) {
    return new Promise((resolve, reject) => {
      this.pendingSteer?.reject(Object.assign(new Error('replaced by a later change'), { kind: 'replaced' }));
      this.pendingSteer = { stage, resolve, reject };
    });
  }

  /** Applies a pending steer to every unfinished run; `onSteer(step, stage)` hears it. */
  async applySteer(onSteer) {
    const pending = this.pendingSteer;
    if (!pending) return;
    this.pendingSteer = null;
    try {
      const request = { prompt: pending.stage.prompt, negative: pending.stage.negative ? [pending.stage.negative] : [] };
      for (const run of this.runs.filter((r) => !r.report?.done)) {
        run.stageScore = (await this.engine.call({ type: 'steer', run: run.run, request })).score;
      }
      const step = this.runs[0].report?.step ?? 0;
      const stage = { step, prompt: pending.stage.prompt, negative: pending.stage.negative ?? '' };
      this.stages.push(stage);
      onSteer?.(step, stage);
      pending.resolve(stage);
    } catch (error) {
      pending.reject(error);
    }
  }

  /**
   * Starts a generation of `request` on each model of `ids` (the initial canvas is chosen
   * here), with the pictures given as files (`{ startImage?, imagePrompt?: { bytes, weight } }`);
   * `onStart(run, started)` hears each, `started` being `{ score, rgba, notes }`.
   */
  async start(ids, request, { startImage, imagePrompt } = {}, onStart) {
    this.stages = [{ step: 0, prompt: request.prompt ?? '', negative: request.negative ?? '' }];
    for (const id of ids) {
      const image = imagePrompt && { bytes: imagePrompt.bytes.slice(0), weight: imagePrompt.weight };
      const started = await this.engine.call({ type: 'start', model: id, request, startImage: startImage?.slice(0), imagePrompt: image });
      const run = { id, run: started.run, size: started.size, frames: [new Uint8Array(started.rgba)], framePrompts: [request.prompt ?? ''], report: null };
      this.runs.push(run);
      onStart(run, started);
    }
  }

  /**
   * Steps every unfinished run in turn until all are done or the painting is stopped.
   * `onStep(run, report, rgba, stepsPerSecond)` hears each step (the speed is the first run's,
   * counting painting time only); `onPause(paused)` hears a pause begin and end; `onSteer(step,
   * stage)` hears a steer applied (between steps).
   */
  async paint({ onStep, onPause, onSteer }) {
    let startedAt = performance.now();
    let steps = 0;
    while (this.runs.some((r) => !r.report?.done) && !this.stopped) {
      if (this.paused) {
        onPause(true);
        const pausedAt = performance.now();
        await new Promise((resolve) => (this.resume = resolve));
        startedAt += performance.now() - pausedAt;
        if (this.stopped) break;
        onPause(false);
      }
      await this.applySteer(onSteer);
      for (const run of this.runs.filter((r) => !r.report?.done)) {
        const { report, rgba } = await this.engine.call({ type: 'step', run: run.run });
        run.report = report;
        if (report.snapshot) {
          run.framePrompts = thin(run.framePrompts);
          run.frames = thin(run.frames);
          run.frames.push(new Uint8Array(rgba));
          run.framePrompts.push(this.stages.at(-1).prompt);
        }
        if (run === this.runs[0]) steps += 1;
        onStep(run, report, rgba, steps / ((performance.now() - startedAt) / 1000));
      }
    }
    this.settled = true;
  }

  /** Pauses, or resumes a paused painting; returns whether it is paused now. */
  togglePause() {
    this.paused = !this.paused;
    if (!this.paused && this.resume) {
      this.resume();
      this.resume = null;
    }
    return this.paused;
  }

  stop() {
    this.stopped = true;
    if (this.resume) this.resume();
  }

  /** The first run's picture (its lowest-loss canvas) as PNG bytes. */
  async bestPng() {
    const { png } = await this.engine.call({ type: 'best', run: this.runs[0].run });
    return png;
  }

  /** The first run's picture as an SVG document, when it is painted in strokes (else undefined). */
  async bestSvg() {
    const { svg } = await this.engine.call({ type: 'svg', run: this.runs[0].run });
    return svg;
  }

  /**
   * The first run's frames as an animated GIF. A steered run's frames are shown larger, each
   * with the prompt it was painted toward written under it, so the animation tells the
   * prompts in order.
   */
  async gif(delay = 200) {
    const { frames: raw, framePrompts, size: side } = this.runs[0];
    const steered = this.stages.length > 1;
    const list = steered ? raw.map((f, i) => captioned(f, side, framePrompts[i])) : raw;
    const [width, height] = steered ? [CAPTIONED * side, CAPTIONED * side + CAPTION_BAR] : [side, side];
    const frames = new Uint8Array(list.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of list) {
      frames.set(f, at);
      at += f.length;
    }
    const { gif } = await this.engine.call({ type: 'gif', frames: frames.buffer, width, height, delay }, [frames.buffer]);
    return gif;
  }

  /** Lets the runs go without the engine (it was lost with them); says whether there were any. */
  abandon() {
    const had = this.runs.length > 0;
    this.runs = [];
    return had;
  }

  /** Frees the runs in the engine (an engine that is gone frees them by going). */
  async release() {
    const runs = this.runs;
    this.runs = [];
    for (const run of runs) await this.engine.call({ type: 'stop', run: run.run }).catch(() => {});
  }
}
