import type { Graph } from "../graph.js";
import type { Node } from "../op.js";
import type { Tensor } from "../tensor.js";
import * as F from "../functional.js";

export class GradientError extends Error {}

const isFloat = (t: Tensor) => t.dtype === "float32" || t.dtype === "float16";

/**
 * Reverse-mode differentiation: appends to the graph the ops computing d(loss)/d(w) for every w in
 * `wrt`, and returns those tensors (zeros for a w the loss does not depend on). Only nodes on a path
 * from some w to the loss are differentiated; cotangents of tensors used several times are summed.
 * The loss must be a float scalar (shape [] or [1]); `seed` replaces the implicit cotangent 1.
 */
export function gradients(graph: Graph, loss: Tensor, wrt: Tensor[], seed?: Tensor): Tensor[] {
  if (loss.graph !== graph || wrt.some((w) => w.graph !== graph)) throw new GradientError("gradients: tensors of another graph");
  if (!seed && loss.numel !== 1) throw new GradientError(`gradients: the loss must be a scalar, got ${loss}`);
  if (!isFloat(loss)) throw new GradientError(`gradients: the loss ${loss} is not a float tensor`);

  const path = nodesBetween(graph, wrt, loss);
  const cotangents = new Map<Tensor, Tensor>();
  cotangents.set(loss, seed ?? graph.constant(Float32Array.of(1), [...loss.shape]));
  const varies = new Set<Tensor>(wrt);
  for (const n of path) for (const o of n.outputs) if (isFloat(o)) varies.add(o);

  for (let i = path.length - 1; i >= 0; i--) {
    const node = path[i];
    const dOut = node.outputs.map((o) => cotangents.get(o));
    if (dOut.every((d) => d === undefined)) continue;
    if (!node.op.grad) throw new GradientError(`gradients: op ${node.op.type} has no gradient rule (on the path from the parameters to the loss)`);
    const dIn = node.op.grad(node, node.outputs.map((o, k) => dOut[k] ?? zerosLike(o)));
    node.inputs.forEach((x, k) => {
      const d = dIn[k];
      if (!d || !varies.has(x)) return;
      if (d.shape.length !== x.shape.length || d.shape.some((s, j) => s !== x.shape[j])) {
        throw new GradientError(`gradients: ${node.op.type} gave a cotangent [${d.shape}] for input ${x}`);
      }
      const prev = cotangents.get(x);
      cotangents.set(x, prev ? F.add(prev, d) : d);
    });
  }
  return wrt.map((w) => cotangents.get(w) ?? zerosLike(w));
}

/** Nodes (in creation order) that depend on some tensor of `from` and that `to` depends on. */
function nodesBetween(graph: Graph, from: Tensor[], to: Tensor): Node<any>[] {
  const ancestors = new Set<Node<any>>();
  const stack = [to];
  while (stack.length) {
    const n = stack.pop()!.producer;
    if (n && !ancestors.has(n)) { ancestors.add(n); stack.push(...n.inputs); }
  }
  const reached = new Set<Tensor>(from);
  const path: Node<any>[] = [];
  for (const n of graph.nodes) {
    if (!ancestors.has(n) || !n.inputs.some((x) => reached.has(x))) continue;
    path.push(n);
    for (const o of n.outputs) if (isFloat(o)) reached.add(o);
  }
  return path;
}

function zerosLike(t: Tensor): Tensor {
  return t.graph.constant(new Float32Array(t.numel), [...t.shape]);
}
