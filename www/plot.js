// The live plot of each step's score: an SVG line, the best step marked, each steer (a new
// prompt) marked, axes that grow with the run (the box itself never changes size, so nothing
// on the page moves while painting).

const NS = 'http://www.w3.org/2000/svg';
const W = 300;
const H = 120;
const PAD = 6;

export class ScorePlot {
  constructor(svg) {
    this.svg = svg;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    // Fill the box whatever its shape (strokes keep their width: non-scaling-stroke).
    svg.setAttribute('preserveAspectRatio', 'none');
    this.series = [];
    this.marks = []; // { step, label, line }
  }

  /** Marks the step from which a run painted toward a new prompt (`label`). */
  mark(step, label) {
    const line = document.createElementNS(NS, 'line');
    line.setAttribute('stroke', '#888');
    line.setAttribute('stroke-width', '1');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    line.setAttribute('class', 'steer');
    const title = document.createElementNS(NS, 'title');
    title.textContent = `From step ${step}: ${label}`;
    line.append(title);
    this.svg.append(line);
    this.marks.push({ step, label, line });
    this.draw();
  }

  /** Starts a new series (one per model in compare mode). */
  add(label, color) {
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('fill', 'none');
    line.setAttribute('stroke', color);
    line.setAttribute('stroke-width', '2');
    line.setAttribute('vector-effect', 'non-scaling-stroke');
    // The best step (the picture that is kept): a dashed vertical line.
    const best = document.createElementNS(NS, 'line');
    best.setAttribute('stroke', color);
    best.setAttribute('stroke-width', '1');
    best.setAttribute('stroke-dasharray', '3 3');
    best.setAttribute('vector-effect', 'non-scaling-stroke');
    best.setAttribute('visibility', 'hidden');
    this.svg.append(line, best);
    const series = { label, line, best, points: [], bestStep: -1 };
    this.series.push(series);
    return series;
  }

  clear() {
    for (const s of this.series) {
      s.line.remove();
      s.best.remove();
    }
    for (const m of this.marks) m.line.remove();
    this.series = [];
    this.marks = [];
  }

  push(series, step, score, bestStep) {
    if (!Number.isFinite(score)) return; // a lost score must not blank the whole plot
    series.points.push([step, score]);
    series.bestStep = bestStep;
    this.draw();
  }

  draw() {
    const all = this.series.flatMap((s) => s.points);
    if (all.length === 0) return;
    const maxStep = Math.max(1, ...all.map((p) => p[0]));
    const scores = all.map((p) => p[1]);
    let lo = Math.min(...scores);
    let hi = Math.max(...scores);
    if (hi - lo < 1e-3) {
      lo -= 0.01;
      hi += 0.01;
    }
    const x = (step) => PAD + ((W - 2 * PAD) * step) / maxStep;
    const y = (score) => H - PAD - ((H - 2 * PAD) * (score - lo)) / (hi - lo);
    for (const s of this.series) {
      s.line.setAttribute('points', s.points.map(([step, score]) => `${x(step).toFixed(1)},${y(score).toFixed(1)}`).join(' '));
      const best = s.points.find(([step]) => step === s.bestStep);
      if (best) {
        s.best.setAttribute('x1', x(best[0]).toFixed(1));
        s.best.setAttribute('x2', x(best[0]).toFixed(1));
        s.best.setAttribute('y1', String(PAD));
        s.best.setAttribute('y2', String(H - PAD));
        s.best.setAttribute('visibility', 'visible');
      }
    }
    for (const m of this.marks) {
      m.line.setAttribute('x1', x(m.step).toFixed(1));
      m.line.setAttribute('x2', x(m.step).toFixed(1));
      m.line.setAttribute('y1', String(PAD));
      m.line.setAttribute('y2', String(H - PAD));
    }
    this.svg.dataset.points = JSON.stringify(this.series.map((s) => s.points));
    this.svg.dataset.marks = JSON.stringify(this.marks.map(({ step, label }) => [step, label]));
    this.svg.setAttribute('aria-label', this.series.map((s) => {
      const last = s.points.at(-1);
      return `${s.label}: step ${last[0]}, score ${last[1].toFixed(3)}`;
    }).join('; '));
  }
}
