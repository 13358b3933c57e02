import type { TensorEntry } from "../safetensors/read.js";
import type { Node, OpDef } from "./op.js";
import { type DType, Tensor, ShapeError, numel } from "./tensor.js";

export type Leaf =
  | { kind: "input"; name: string }
  | { kind: "weight"; key: string; entry: TensorEntry }
  | { kind: "constant"; data: Float32Array | BigInt64Array };

/**
 * A computation graph with static shapes. Models add nodes through the functional API
 * (`ir/functional.ts`); `onnx/lower.ts` turns it into an ONNX model.
 */
export class Graph {
  readonly nodes: Node<any>[] = [];
  readonly leaves = new Map<Tensor, Leaf>();
  readonly inputs: Tensor[] = [];
  readonly outputs: { name: string; tensor: Tensor }[] = [];
  /**
   * Module outputs where gradient checkpointing may cut the forward pass (a transformer block's
   * output: small to keep, costly to recompute past). See training/graph/recompute.ts.
   */
  readonly segmentEnds: Tensor[] = [];
  private nextId = 0;

  private newTensor(shape: readonly number[], dtype: DType): Tensor {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid dimension ${d} in shape [${shape}]`);
    return new Tensor(this, this.nextId++, [...shape], dtype);
  }

  input(name: string, shape: readonly number[], dtype: DType = "float32"): Tensor {
    const t = this.newTensor(shape, dtype);
    this.leaves.set(t, { kind: "input", name });
    this.inputs.push(t);
    return t;
  }

  /** A checkpoint tensor read in place; computed in float32 whatever its stored dtype. */
  weight(key: string, entry: TensorEntry): Tensor {
    const t = this.newTensor(entry.shape, "float32");
    this.leaves.set(t, { kind: "weight", key, entry });
    return t;
  }

  constant(data: Float32Array | BigInt64Array, shape: readonly number[]): Tensor {
    if (numel(shape) !== data.length) throw new ShapeError(`constant of ${data.length} values cannot have shape [${shape}]`);
    const t = this.newTensor(shape, data instanceof Float32Array ? "float32" : "int64");
    this.leaves.set(t, { kind: "constant", data });
    return t;
  }

  apply<A>(op: OpDef<A>, inputs: Tensor[], attrs: A): Tensor[] {
    for (const x of inputs) if (x.graph !== this) throw new Error(`${op.type}: input ${x} belongs to another graph`);
    const metas = op.infer(inputs, attrs);
    const outputs = metas.map((m) => this.newTensor(m.shape, m.dtype));
    const node: Node<A> = { op, inputs, attrs, outputs };
    for (const o of outputs) o.producer = node;
    this.nodes.push(node);
    return outputs;
  }

  /** Marks `t` as a place where checkpointing may cut (see segmentEnds). */
  markSegmentEnd(t: Tensor): Tensor {
    this.segmentEnds.push(t);
    return t;
  }

  output(name: string, tensor: Tensor): void {
    if (this.outputs.some((o) => o.name === name)) throw new Error(`duplicate graph output "${name}"`);
    this.outputs.push({ name, tensor });
  }

  /** Nodes that some output depends on, in topological (creation) order. */
  liveNodes(): Node<any>[] {
    const live = new Set<Node<any>>();
    const stack = this.outputs.map((o) => o.tensor);
    while (stack.length) {
      const t = stack.pop()!;
      const n = t.producer;
      if (n && !live.has(n)) { live.add(n); stack.push(...n.inputs); }
    }
    return this.nodes.filter((n) => live.has(n));
  }

  flops(): number {
    return this.liveNodes().reduce((s, n) => s + n.op.flops(n), 0);
  }

  weights(): { key: string; entry: TensorEntry; tensor: Tensor }[] {
    const out: { key: string; entry: TensorEntry; tensor: Tensor }[] = [];
    for (const [tensor, leaf] of this.leaves) if (leaf.kind === "weight") out.push({ key: leaf.key, entry: leaf.entry, tensor });
    return out;
  }
}
