import type { TensorEntry } from "../safetensors/read.js";
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import * as F from "../ir/functional.js";
import type { WeightDeltas } from "./weight-deltas.js";

export class WeightError extends Error {}

/** Where checkpoint tensors come from: a file set, or (for listing what a model expects) nothing at all. */
export interface WeightSource {
  readonly description: string;
  lookup(key: string, expectedShape: readonly number[]): TensorEntry | undefined;
  keys(): Iterable<string>;
}

/** A low-rank delta added in the graph: `merged` = `base` + scale · up · down (up [out, rank], down [rank, in]). */
export interface MergedDelta {
  key: string;
  base: Tensor;
  merged: Tensor;
  up: Tensor;
  down: Tensor;
  scale: number;
}

/** Shared state of one model build: the graph, the source and every key the modules asked for. */
class WeightRegistry {
  readonly requested = new Map<string, number[]>();
  readonly tensors = new Map<string, Tensor>();
  readonly merged: MergedDelta[] = [];
  constructor(readonly graph: Graph, readonly source: WeightSource, readonly deltas?: WeightDeltas) {}
}

/**
 * Hands out weights by checkpoint key. Modules descend with `pp("down_blocks").pp(0)`, so the
 * names they ask for are the diffusers/transformers state-dict keys by construction.
 */
export class WeightBuilder {
  private constructor(private readonly reg: WeightRegistry, readonly prefix: string) {}

  /** `deltas` (LoRA / LoCon) are added to the weights they name as they are handed out. */
  static root(graph: Graph, source: WeightSource, deltas?: WeightDeltas): WeightBuilder {
    return new WeightBuilder(new WeightRegistry(graph, source, deltas), "");
  }

  get graph(): Graph { return this.reg.graph; }

  pp(name: string | number): WeightBuilder {
    return new WeightBuilder(this.reg, `${this.prefix}${name}.`);
  }

  get(name: string, shape: readonly number[]): Tensor {
    const key = this.prefix + name;
    const known = this.reg.tensors.get(key);
    if (known) return known;
    const { source } = this.reg;
    const entry = source.lookup(key, shape);
    if (!entry) throw new WeightError(`${source.description}: missing tensor "${key}" (expected shape [${shape}])`);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new WeightError(`${source.description}: tensor "${key}" has shape [${entry.shape}], the config expects [${shape}]`);
    }
    this.reg.requested.set(key, [...shape]);
    let t = this.reg.graph.weight(key, entry);
    for (const d of this.reg.deltas?.take(key) ?? []) t = this.applyDelta(key, t, d);
    this.reg.tensors.set(key, t);
    return t;
  }

  private applyDelta(key: string, w: Tensor, d: import("./weight-deltas.js").LowRankDelta): Tensor {
    const [out, ...rest] = w.shape;
    const inner = rest.reduce((a, b) => a * b, 1);
    const rank = d.down.shape[0];
    const upOk = d.up.shape[0] === out && d.up.shape[1] === rank && d.up.shape.slice(2).every((x) => x === 1);
    const downOk = d.down.shape.slice(1).reduce((a, b) => a * b, 1) === inner && (d.down.shape.length === 2 || d.down.shape.length === w.rank);
    if (!upOk || !downOk) {
      throw new WeightError(`${d.origin}: low-rank pair up [${d.up.shape}] · down [${d.down.shape}] does not fit "${key}" [${w.shape}] (a LoRA for another model?)`);
    }
    const g = this.reg.graph;
    const up = F.reshape(g.weight(`${d.origin}.up`, d.up), [out, rank]);
    const down = F.reshape(g.weight(`${d.origin}.down`, d.down), [rank, inner]);
    const merged = F.add(w, F.mul(F.reshape(F.matmul(up, down), [...w.shape]), d.scale));
    this.reg.merged.push({ key, base: w, merged, up, down, scale: d.scale });
    return merged;
  }

  /** The deltas added so far, in the order they were added (a stack on one weight: each on the one before). */
  mergedDeltas(): readonly MergedDelta[] { return this.reg.merged; }

  /** Every key asked for so far with its shape: what a checkpoint for this config must contain. */
  requested(): Map<string, number[]> { return this.reg.requested; }

  /** Keys present in the source that no module used (buffers such as position_ids are ignored by callers). */
  unused(): string[] {
    return [...this.reg.source.keys()].filter((k) => !this.reg.requested.has(k));
  }
}

/** Leftover checkpoint tensors mean the config describes another model: say so, naming a few. */
export function rejectLeftovers(unused: string[], where: string): void {
  if (unused.length === 0) return;
  throw new WeightError(`${where}: ${unused.length} tensor(s) in the checkpoint are not used by a model with this config.json (e.g. ${unused.slice(0, 5).map((k) => `"${k}"`).join(", ")}); is the config for another model?`);
}

/** A source that invents a float32 entry for every key: builds a model without weights to list its parameters. */
export function shapeOnlySource(description = "shape-only"): WeightSource {
  return {
    description,
    lookup: (key, shape) => ({ name: key, dtype: "F32", shape: [...shape], file: "", offset: 0, byteLength: 4 * shape.reduce((a, b) => a * b, 1) }),
    keys: () => [],
  };
}
