import type { TensorEntry } from "../safetensors/read.js";

/**
 * A low-rank change to one weight (LoRA on a Linear, LoCon on a Conv2d):
 * W' = W + scale · (up · down), with up [out, rank(, 1, 1)] and down [rank, in(, kh, kw)].
 */
export interface LowRankDelta {
  up: TensorEntry;
  down: TensorEntry;
  scale: number;
  /** Where it came from, for messages: e.g. "style.safetensors: lora_unet_..._to_q". */
  origin: string;
}

/**
 * Low-rank deltas keyed by the checkpoint key of the weight they change. The weight builder adds them
 * in the graph, where onnxruntime folds W + scale·up·down into one constant at session creation: the
 * base files stay untouched and sampling pays nothing per step.
 */
export class WeightDeltas {
  private readonly byKey = new Map<string, LowRankDelta[]>();
  private readonly applied = new Set<string>();

  add(weightKey: string, delta: LowRankDelta): void {
    const list = this.byKey.get(weightKey) ?? [];
    list.push(delta);
    this.byKey.set(weightKey, list);
  }

  /** The deltas for a weight; marks them applied. */
  take(weightKey: string): LowRankDelta[] {
    const list = this.byKey.get(weightKey);
    if (!list) return [];
    this.applied.add(weightKey);
    return list;
  }

  get size(): number { return this.byKey.size; }

  keys(): string[] { return [...this.byKey.keys()]; }

  /** Weight keys that no module of the built model asked for: the LoRA targets another architecture. */
  unapplied(): string[] { return this.keys().filter((k) => !this.applied.has(k)); }
}
