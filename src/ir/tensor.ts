import type { Graph } from "./graph.js";
import type { Node } from "./op.js";

export type DType = "float32" | "float16" | "int64" | "bool";

/** A symbolic tensor in the graph: static shape and dtype, produced by a node or a graph leaf. */
export class Tensor {
  /** Set for outputs of a node; leaves (inputs, weights, constants) have none. */
  producer?: Node<any>;
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {}

  get rank(): number { return this.shape.length; }
  get numel(): number { return numel(this.shape); }
  toString(): string { return `t${this.id}[${this.shape.join(",")}]:${this.dtype}`; }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class ShapeError extends Error {}

/** NumPy broadcasting of two shapes; throws naming both shapes when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[], what: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`${what}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

export function normalizeAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new ShapeError(`${what}: axis ${axis} out of range for rank ${rank}`);
  return a;
}
