import type { Optimizer, OptimizerState } from "./optimizer.js";

/**
 * torch.optim.AdamW (single-tensor CPU path, the default for CPU tensors), reproduced in float32
 * operation by operation: decoupled weight decay first, then Adam with torch's bias correction.
 */
export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export interface OptimizedParameter {
  key: string;
  /** Updated in place by `step`. */
  value: Float32Array;
}

const f = Math.fround;

export class AdamW implements Optimizer {
  /** The learning rate of the next step (an LR schedule sets it before each step). */
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken so far (torch's `state["step"]`). */
  private t = 0;
  private readonly moments = new Map<string, { m: Float32Array; v: Float32Array }>();

  constructor(readonly params: OptimizedParameter[], opts: AdamWOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 1e-2;
    for (const p of params) this.moments.set(p.key, { m: new Float32Array(p.value.length), v: new Float32Array(p.value.length) });
  }

  get steps(): number { return this.t; }

  /** The step count and both moments of every parameter, as views (write them out before the next step). */
  state(): OptimizerState {
    const buffers: Record<string, Float32Array> = {};
    for (const [k, { m, v }] of this.moments) { buffers[`exp_avg.${k}`] = m; buffers[`exp_avg_sq.${k}`] = v; }
    return { kind: "adamw", steps: this.t, buffers };
  }

  loadState(s: OptimizerState): void {
    if (s.kind !== "adamw") throw new Error(`AdamW: cannot load the state of a ${s.kind} optimizer`);
    for (const [k, mv] of this.moments) {
      const m = s.buffers[`exp_avg.${k}`], v = s.buffers[`exp_avg_sq.${k}`];
      if (!m || !v || m.length !== mv.m.length || v.length !== mv.v.length) throw new Error(`AdamW: the saved state has no moments of "${k}" (another model or LoRA?)`);
      mv.m.set(m);
      mv.v.set(v);
    }
    this.t = s.steps;
  }

  /** One update from the gradients by parameter key; a parameter without a gradient is skipped (as torch skips grad None). */
  step(grads: Record<string, Float32Array>): void {
    this.t++;
    const [b1, b2] = this.betas;
    // Python-double scalars, rounded to float32 where the float32 kernels take them.
    const decay = f(1 - this.lr * this.weightDecay);
    const oneMinusB1 = f(1 - b1);
    const oneMinusB2 = f(1 - b2);
    const b2f = f(b2);
    const stepSize = f(-(this.lr / (1 - b1 ** this.t)));
    const bc2Sqrt = f((1 - b2 ** this.t) ** 0.5);
    const eps = f(this.eps);
    for (const p of this.params) {
      const g = grads[p.key];
      if (!g) continue;
      if (g.length !== p.value.length) throw new Error(`AdamW: gradient of "${p.key}" has ${g.length} values, the parameter ${p.value.length}`);
      const { m, v } = this.moments.get(p.key)!;
      const w = p.value;
      for (let i = 0; i < w.length; i++) {
        w[i] = f(w[i] * decay);
        // exp_avg.lerp_(grad, 1 - beta1): weight < 0.5, so self + weight·(end - self).
        m[i] = f(m[i] + f(oneMinusB1 * f(g[i] - m[i])));
        // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value = 1 - beta2)
        v[i] = f(f(v[i] * b2f) + f(f(oneMinusB2 * g[i]) * g[i]));
        // denom = sqrt(v) / sqrt(bias_correction2) + eps; param.addcdiv_(m, denom, value = -step_size)
        const denom = f(f(f(Math.sqrt(v[i])) / bc2Sqrt) + eps);
        w[i] = f(w[i] + f(f(stepSize * m[i]) / denom));
      }
    }
  }
}
