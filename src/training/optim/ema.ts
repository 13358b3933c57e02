/**
 * diffusers' EMAModel (training_utils.py): shadow = shadow - (1 - decay) · (shadow - param) after each
 * optimizer step, with decay = min(max_decay, (1 + s) / (10 + s)) (or the warmup form 1 - (1 + s/γ)^-p),
 * s = optimization_step - update_after_step - 1, and decay 0 (a copy) while s <= 0.
 */
import type { OptimizedParameter } from "./adamw.js";

export interface EmaOptions {
  decay?: number;
  minDecay?: number;
  updateAfterStep?: number;
  useEmaWarmup?: boolean;
  invGamma?: number;
  power?: number;
}

const f = Math.fround;

export class EMA {
  readonly shadow = new Map<string, Float32Array>();
  optimizationStep = 0;
  private readonly o: Required<EmaOptions>;

  constructor(readonly params: OptimizedParameter[], opts: EmaOptions = {}) {
    this.o = { decay: 0.9999, minDecay: 0, updateAfterStep: 0, useEmaWarmup: false, invGamma: 1, power: 2 / 3, ...opts };
    for (const p of params) this.shadow.set(p.key, p.value.slice());
  }

  decayAt(optimizationStep: number): number {
    const o = this.o;
    const s = Math.max(0, optimizationStep - o.updateAfterStep - 1);
    if (s <= 0) return 0;
    const d = o.useEmaWarmup ? 1 - (1 + s / o.invGamma) ** -o.power : (1 + s) / (10 + s);
    return Math.max(Math.min(d, o.decay), o.minDecay);
  }

  step(): void {
    this.optimizationStep++;
    const oneMinus = f(1 - this.decayAt(this.optimizationStep));
    for (const p of this.params) {
      const s = this.shadow.get(p.key)!;
      for (let i = 0; i < s.length; i++) s[i] = f(s[i] - f(oneMinus * f(s[i] - p.value[i])));
    }
  }
}
