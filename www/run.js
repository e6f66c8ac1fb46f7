// The run loop: one request painted by one model, or by two side by side (compare), a step
// at a time through the engine, with pause and stop. No DOM: what happens is told to the
// caller's callbacks, which draw it.

// A long run keeps at most this many frames (for the animation): when full, every other one
// is dropped, so they stay spread over the whole run.
export const MAX_FRAMES = 120;

const thin = (list) => (list.length >= MAX_FRAMES ? list.filter((_, i) => i % 2 === 0) : list);

export class Painting {
  constructor(engine) {
    this.engine = engine;
    this.runs = []; // { id, run, size, frames, report, ...what the caller adds }
    this.paused = false;
    this.stopped = false;
    /** Whether the step loop has ended (what a Stop waits for). */
    this.settled = false;
    this.resume = null;
  }

  /**
   * Starts a generation of `request` on each model of `ids` (the initial canvas is chosen
   * here); `onStart(run, started)` hears each, `started` being `{ score, rgba, notes }`.
   */
  async start(ids, request, startImage, onStart) {
    for (const id of ids) {
      const started = await this.engine.call({ type: 'start', model: id, request, startImage: startImage?.slice(0) });
      const run = { id, run: started.run, size: started.size, frames: [new Uint8Array(started.rgba)], report: null };
      this.runs.push(run);
      onStart(run, started);
    }
  }

  /**
   * Steps every unfinished run in turn until all are done or the painting is stopped.
   * `onStep(run, report, rgba, stepsPerSecond)` hears each step (the speed is the first run's,
   * counting painting time only); `onPause(paused)` hears a pause begin and end.
   */
  async paint({ onStep, onPause }) {
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
      for (const run of this.runs.filter((r) => !r.report?.done)) {
        const { report, rgba } = await this.engine.call({ type: 'step', run: run.run });
        run.report = report;
        if (report.snapshot) {
          run.frames = thin(run.frames);
          run.frames.push(new Uint8Array(rgba));
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

  /** The first run's frames as an animated GIF. */
  async gif(delay = 200) {
    const { frames: list, size } = this.runs[0];
    const frames = new Uint8Array(list.reduce((n, f) => n + f.length, 0));
    let at = 0;
    for (const f of list) {
      frames.set(f, at);
      at += f.length;
    }
    const { gif } = await this.engine.call({ type: 'gif', frames: frames.buffer, size, delay }, [frames.buffer]);
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
