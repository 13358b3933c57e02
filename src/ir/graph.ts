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
  // Mutable only here: passes change a built graph through the methods below (see ir/passes/).
  private nodeList: Node<any>[] = [];
  private readonly leafMap = new Map<Tensor, Leaf>();
  private readonly inputList: Tensor[] = [];
  private readonly outputList: { name: string; tensor: Tensor }[] = [];
  /**
   * Module outputs where gradient checkpointing may cut the forward pass (a transformer block's
   * output: small to keep, costly to recompute past). See ir/passes/recompute.ts.
   */
  readonly segmentEnds: Tensor[] = [];
  private nextId = 0;

  /** Every node in creation order, which is topological (passes keep it so). */
  get nodes(): readonly Node<any>[] { return this.nodeList; }
  get leaves(): ReadonlyMap<Tensor, Leaf> { return this.leafMap; }
  get inputs(): readonly Tensor[] { return this.inputList; }
  get outputs(): readonly { readonly name: string; readonly tensor: Tensor }[] { return this.outputList; }

  private newTensor(shape: readonly number[], dtype: DType): Tensor {
    for (const d of shape) if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid dimension ${d} in shape [${shape}]`);
    return new Tensor(this, this.nextId++, [...shape], dtype);
  }

  input(name: string, shape: readonly number[], dtype: DType = "float32"): Tensor {
    const t = this.newTensor(shape, dtype);
    this.leafMap.set(t, { kind: "input", name });
    this.inputList.push(t);
    return t;
  }

  /** A checkpoint tensor read in place; computed in float32 whatever its stored dtype. */
  weight(key: string, entry: TensorEntry): Tensor {
    const t = this.newTensor(entry.shape, "float32");
    this.leafMap.set(t, { kind: "weight", key, entry });
    return t;
  }

  constant(data: Float32Array | BigInt64Array, shape: readonly number[]): Tensor {
    if (numel(shape) !== data.length) throw new ShapeError(`constant of ${data.length} values cannot have shape [${shape}]`);
    const t = this.newTensor(shape, data instanceof Float32Array ? "float32" : "int64");
    this.leafMap.set(t, { kind: "constant", data });
    return t;
  }

  apply<A>(op: OpDef<A>, inputs: Tensor[], attrs: A): Tensor[] {
    for (const x of inputs) if (x.graph !== this) throw new Error(`${op.type}: input ${x} belongs to another graph`);
    const metas = op.infer(inputs, attrs);
    const outputs = metas.map((m) => this.newTensor(m.shape, m.dtype));
    const node: Node<A> = { op, inputs, attrs, outputs };
    for (const o of outputs) o.producer = node;
    this.nodeList.push(node);
    return outputs;
  }

  /** Marks `t` as a place where checkpointing may cut (see segmentEnds). */
  markSegmentEnd(t: Tensor): Tensor {
    this.segmentEnds.push(t);
    return t;
  }

  output(name: string, tensor: Tensor): void {
    if (this.outputList.some((o) => o.name === name)) throw new Error(`duplicate graph output "${name}"`);
    this.outputList.push({ name, tensor });
  }

  /**
   * Runs `build` and takes the nodes it added back off the node list, for a pass to place them
   * elsewhere (`insertAfter`, `reorder`). Their tensors stay valid.
   */
  detached<T>(build: () => T): { value: T; nodes: Node<any>[] } {
    const first = this.nodeList.length;
    const value = build();
    return { value, nodes: this.nodeList.splice(first) };
  }

  /** Puts `nodes` (detached) right after `anchor`: where they read its outputs, the order stays topological. */
  insertAfter(anchor: Node<any>, nodes: readonly Node<any>[]): void {
    const at = this.nodeList.indexOf(anchor);
    if (at < 0) throw new Error(`insertAfter: ${anchor.op.type} is not a node of this graph`);
    this.nodeList.splice(at + 1, 0, ...nodes);
  }

  /** Every node input and graph output that reads `from` reads `to` instead (detached nodes are left alone). */
  replaceUses(from: Tensor, to: Tensor): void {
    for (const n of this.nodeList) n.inputs.forEach((t, i) => { if (t === from) n.inputs[i] = to; });
    for (const o of this.outputList) if (o.tensor === from) o.tensor = to;
  }

  /** Replaces the node order with `nodes` (a pass interleaving new nodes); it must stay topological. */
  reorder(nodes: readonly Node<any>[]): void {
    this.nodeList = [...nodes];
  }

  /**
   * Makes leaf `t` a graph input named `name`, keeping the tensor (so the code that used it needs no
   * change): a weight turned trainable, or an input renamed.
   */
  makeInput(t: Tensor, name: string): void {
    const leaf = this.leafMap.get(t);
    if (!leaf) throw new Error(`makeInput: ${t} is not a leaf of this graph`);
    if (leaf.kind !== "input") this.inputList.push(t);
    this.leafMap.set(t, { kind: "input", name });
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
