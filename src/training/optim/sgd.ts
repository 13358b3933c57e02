/**
 * torch.optim.SGD (single-tensor path) in float32: weight decay added to the gradient, momentum buffer
 * initialised to the first gradient (torch's `clone()` on the first step), dampening, Nesterov.
 */
import type { OptimizedParameter } from "./adamw.js";
import type { Optimizer, OptimizerState } from "./optimizer.js";

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

const f = Math.fround;

export class SGD implements Optimizer {
  lr: number;
  readonly momentum: number;
  readonly dampening: number;
  readonly weightDecay: number;
  readonly nesterov: boolean;
  private t = 0;
  private readonly buffers = new Map<string, Float32Array>();

  constructor(readonly params: OptimizedParameter[], opts: SGDOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.weightDecay = opts.weightDecay ?? 0;
    this.nesterov = opts.nesterov ?? false;
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new Error("SGD: Nesterov momentum requires a momentum and zero dampening");
  }

  get steps(): number { return this.t; }

  step(grads: Record<string, Float32Array>): void {
    this.t++;
    const wd = f(this.weightDecay), mu = f(this.momentum), damp = f(1 - this.dampening), lr = f(this.lr);
    for (const p of this.params) {
      const g = grads[p.key];
      if (!g) continue;
      if (g.length !== p.value.length) throw new Error(`SGD: gradient of "${p.key}" has ${g.length} values, the parameter ${p.value.length}`);
      const w = p.value;
      let buf = this.buffers.get(p.key);
      const first = !buf && mu !== 0;
      if (first) { buf = new Float32Array(w.length); this.buffers.set(p.key, buf); }
      for (let i = 0; i < w.length; i++) {
        let d = wd !== 0 ? f(g[i] + f(wd * w[i])) : g[i];
        if (buf) {
          buf[i] = first ? d : f(f(mu * buf[i]) + f(damp * d));
          d = this.nesterov ? f(d + f(mu * buf[i])) : buf[i];
        }
        w[i] = f(w[i] - f(lr * d));
      }
    }
  }

  state(): OptimizerState {
    const buffers: Record<string, Float32Array> = {};
    for (const [k, b] of this.buffers) buffers[`momentum_buffer.${k}`] = b.slice();
    return { kind: "sgd", steps: this.t, buffers };
  }

  loadState(s: OptimizerState): void {
    if (s.kind !== "sgd") throw new Error(`SGD: cannot load the state of a ${s.kind} optimizer`);
    this.buffers.clear();
    for (const p of this.params) {
      const b = s.buffers[`momentum_buffer.${p.key}`];
      if (b) this.buffers.set(p.key, b.slice());
    }
    this.t = s.steps;
  }
}
