import type { TensorEntry } from "../safetensors/read.js";
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";

export class WeightError extends Error {}

/** Where checkpoint tensors come from: a file set, or (for listing what a model expects) nothing at all. */
export interface WeightSource {
  readonly description: string;
  lookup(key: string, expectedShape: readonly number[]): TensorEntry | undefined;
  keys(): Iterable<string>;
}

/** Shared state of one model build: the graph, the source and every key the modules asked for. */
class WeightRegistry {
  readonly requested = new Map<string, number[]>();
  readonly tensors = new Map<string, Tensor>();
  constructor(readonly graph: Graph, readonly source: WeightSource) {}
}

/**
 * Hands out weights by checkpoint key. Modules descend with `pp("down_blocks").pp(0)`, so the
 * names they ask for are the diffusers/transformers state-dict keys by construction.
 */
export class WeightBuilder {
  private constructor(private readonly reg: WeightRegistry, readonly prefix: string) {}

  static root(graph: Graph, source: WeightSource): WeightBuilder {
    return new WeightBuilder(new WeightRegistry(graph, source), "");
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
    const t = this.reg.graph.weight(key, entry);
    this.reg.tensors.set(key, t);
    return t;
  }

  /** Every key asked for so far with its shape: what a checkpoint for this config must contain. */
  requested(): Map<string, number[]> { return this.reg.requested; }

  /** Keys present in the source that no module used (buffers such as position_ids are ignored by callers). */
  unused(): string[] {
    return [...this.reg.source.keys()].filter((k) => !this.reg.requested.has(k));
  }
}

/** A source that invents a float32 entry for every key: builds a model without weights to list its parameters. */
export function shapeOnlySource(description = "shape-only"): WeightSource {
  return {
    description,
    lookup: (key, shape) => ({ name: key, dtype: "F32", shape: [...shape], file: "", offset: 0, byteLength: 4 * shape.reduce((a, b) => a * b, 1) }),
    keys: () => [],
  };
}
