/**
 * Gradient accumulation as accelerate does it: each micro-batch's loss is divided by the number of
 * micro-steps before backward, so the summed gradient is the mean over micro-batches. Gradients are
 * added here as g / n in float32, the order torch's `.grad +=` sees them.
 */
const f = Math.fround;

export class GradientAccumulator {
  private sums = new Map<string, Float32Array>();
  private count = 0;

  constructor(readonly microSteps: number) {
    if (!Number.isInteger(microSteps) || microSteps < 1) throw new Error(`gradient accumulation steps must be a whole number >= 1, got ${microSteps}`);
  }

  /** Adds one micro-batch's gradients; returns true when the optimizer should step (the last micro-step). */
  add(grads: Record<string, Float32Array>): boolean {
    const n = this.microSteps;
    for (const [k, g] of Object.entries(grads)) {
      // one micro-step: the gradient itself (no copy: a full UNet's gradients are GiBs)
      if (n === 1) { this.sums.set(k, g); continue; }
      let s = this.sums.get(k);
      if (!s) { s = new Float32Array(g.length); this.sums.set(k, s); }
      for (let i = 0; i < g.length; i++) s[i] = f(s[i] + f(g[i] / n));
    }
    this.count++;
    return this.count === n;
  }

  /** The accumulated gradients; resets for the next optimizer step. */
  take(): Record<string, Float32Array> {
    const out = Object.fromEntries(this.sums);
    this.sums = new Map();
    this.count = 0;
    return out;
  }
}
