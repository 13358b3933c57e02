/**
 * Gradient checkpointing as a graph transform (activation recomputation), for memory: SSD-1B LoRA at
 * 1024 keeps every forward activation of the UNet alive until the backward pass reaches it.
 *
 * The forward nodes are split into segments (boundaries: the UNet blocks' and the transformer blocks' outputs).
 * Kept: graph leaves, the boundaries, and every tensor used across segments (the skip connections).
 * Every other forward tensor that a backward node reads is instead recomputed from kept tensors by
 * clones of its forward nodes, placed right before that backward node. Two details make onnxruntime
 * free the originals and run the clones late:
 *  - the clones' kept inputs are "gated": k + 0·d, with d one element of a cotangent the backward node
 *    reads, so the clones cannot run before the backward pass reaches them (and CSE cannot merge them
 *    back into the originals, whose inputs differ);
 *  - the originals then have no backward reader, so their buffers are released after the forward pass.
 * The gradients are the same values (the same ops on the same inputs, plus exact zeros).
 */
import type { Graph } from "../../ir/graph.js";
import type { Node } from "../../ir/op.js";
import type { Tensor } from "../../ir/tensor.js";
import * as F from "../../ir/functional.js";

export interface RecomputeStats {
  /** Forward tensors the backward pass now recomputes instead of keeping. */
  recomputed: number;
  /** Nodes cloned for that. */
  clonedNodes: number;
  kept: number;
}

/**
 * `forwardEnd`: graph.nodes.length before the gradients were added (nodes from there are the backward
 * pass). `boundaries`: the segment outputs, in forward order.
 */
export function recomputeActivations(graph: Graph, forwardEnd: number, boundaries: Tensor[]): RecomputeStats {
  const forward = graph.nodes.slice(0, forwardEnd);
  const backward = graph.nodes.slice(forwardEnd);
  const index = new Map<Node<any>, number>(forward.map((n, i) => [n, i]));
  const cuts = boundaries.map((b) => index.get(b.producer!) ?? -1).filter((i) => i >= 0).sort((a, b) => a - b);
  const segment = (i: number) => { let s = 0; while (s < cuts.length && cuts[s] < i) s++; return s; };
  const segOf = new Map<Node<any>, number>(forward.map((n, i) => [n, segment(i)]));
  const inForward = (t: Tensor) => t.producer !== undefined && index.has(t.producer);

  const keep = new Set<Tensor>(boundaries);
  for (const n of forward) for (const x of n.inputs) if (inForward(x) && segOf.get(x.producer!) !== segOf.get(n)) keep.add(x);
  for (const o of graph.outputs) keep.add(o.tensor);

  const memo = new Map<Tensor, Tensor>();
  const recomputedSet = new Set<Tensor>();
  let cloned = 0;
  const result: Node<any>[] = [...forward];
  for (const node of backward) {
    const needs = node.inputs.some((x) => inForward(x) && !keep.has(x) && !memo.has(x));
    if (needs) {
      const dep = node.inputs.find((x) => !inForward(x) && x.producer !== undefined && x.dtype === "float32");
      let zero: Tensor | undefined;
      const gates = new Map<Tensor, Tensor>();
      const gated = (k: Tensor): Tensor => {
        if (!dep || k.dtype !== "float32" || !inForward(k)) return k;
        zero ??= F.mul(F.reshape(F.slice(F.reshape(dep, [-1]), 0, 0, 1), []), 0);
        let g = gates.get(k);
        if (!g) { g = F.add(k, zero); gates.set(k, g); }
        return g;
      };
      const clone = (t: Tensor): Tensor => {
        const known = memo.get(t);
        if (known) return known;
        const n = t.producer!;
        const ins = n.inputs.map((x) => (inForward(x) && !keep.has(x) ? clone(x) : gated(x)));
        const outs = graph.apply(n.op, ins, n.attrs);
        cloned++;
        n.outputs.forEach((o, k) => { memo.set(o, outs[k]); recomputedSet.add(o); });
        return memo.get(t)!;
      };
      const { nodes } = graph.detached(() => node.inputs.forEach((x, i) => { if (inForward(x) && !keep.has(x)) node.inputs[i] = clone(x); }));
      result.push(...nodes);
    } else {
      node.inputs.forEach((x, i) => { node.inputs[i] = memo.get(x) ?? x; });
    }
    result.push(node);
  }
  graph.reorder(result);
  return { recomputed: recomputedSet.size, clonedNodes: cloned, kept: keep.size };
}
