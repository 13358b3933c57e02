import type { Graph } from "../graph.js";
import type { Tensor } from "../tensor.js";
import { MatMul } from "../ops/matmul.js";
import * as F from "../functional.js";

/** A LoRA pair for one Linear weight [out, in]: down (A) [rank, in], up (B) [out, rank]. */
export interface LowRankBranch {
  down: Tensor;
  up: Tensor;
  scale?: number;
}

/**
 * Graph pass for training LoRA: after every Linear product x·Wᵀ whose weight has a branch, adds
 * scale·B(A x) as explicit ops, so A and B (typically trainable inputs) get their own gradients and
 * W is never materialized as W + BA. Built models need no change: the new nodes are spliced in right
 * after the product (keeping creation order topological) and its consumers are rewired to the sum.
 * `branches` is keyed by the weight's checkpoint key (a weight leaf, or an input made trainable).
 */
export function addLoraBranches(graph: Graph, branches: Map<string, LowRankBranch>): void {
  const keyOf = new Map<Tensor, string>();
  for (const [t, leaf] of graph.leaves) {
    const key = leaf.kind === "weight" ? leaf.key : leaf.kind === "input" ? leaf.name : undefined;
    if (key !== undefined && branches.has(key)) keyOf.set(t, key);
  }
  const applied = new Set<string>();
  for (const node of [...graph.nodes]) {
    const key = node.op === MatMul && node.attrs.transB ? keyOf.get(node.inputs[1]) : undefined;
    if (key === undefined) continue;
    const { down, up, scale = 1 } = branches.get(key)!;
    const [x] = node.inputs;
    const y = node.outputs[0];
    const { value: sum, nodes } = graph.detached(() => {
      let delta = F.matmulTransB(F.matmulTransB(x, down), up);
      if (scale !== 1) delta = F.mul(delta, scale);
      return F.add(y, delta);
    });
    graph.replaceUses(y, sum); // before the branch is back in: its own `y + delta` keeps reading y
    graph.insertAfter(node, nodes);
    applied.add(key);
  }
  const missing = [...branches.keys()].filter((k) => !applied.has(k));
  if (missing.length) throw new Error(`addLoraBranches: no Linear uses ${missing.join(", ")}`);
}

/** A LoRA delta merged into a Linear weight in the graph (WeightBuilder's MergedDelta). */
export interface MergedLinearDelta extends LowRankBranch {
  key: string;
  base: Tensor;
  merged: Tensor;
}

/**
 * Undoes the merge of LoRA deltas into Linear weights (W + scale·up·down, which onnxruntime folds into a
 * float constant) where every use of the merged weight is a Linear product: the product reads the checkpoint
 * weight again and the delta runs beside it as scale·B(A x), as diffusers' unfused (PEFT) LoRA does. Made for
 * 8-bit Linear weights: only a checkpoint weight can be quantized, and a folded one would stay float. Weights
 * used otherwise keep their merge. Returns the keys unmerged.
 */
export function unmergeLinearDeltas(graph: Graph, deltas: readonly MergedLinearDelta[]): string[] {
  const byKey = new Map<string, MergedLinearDelta[]>();
  for (const d of deltas) if (d.base.rank === 2) byKey.set(d.key, [...(byKey.get(d.key) ?? []), d]);
  const unmerged: string[] = [];
  for (const [key, stack] of byKey) {
    const weight = stack[0].base, final = stack[stack.length - 1].merged;
    const leaf = graph.leaves.get(weight);
    if (leaf?.kind !== "weight" || leaf.key !== key) continue;
    const users = graph.nodes.filter((n) => n.inputs.includes(final));
    const onlyProducts = users.length > 0 && users.every((n) => n.op === MatMul && n.attrs.transB && n.inputs[1] === final && n.inputs[0] !== final);
    if (!onlyProducts || graph.outputs.some((o) => o.tensor === final)) continue;
    graph.replaceUses(final, weight);
    for (const { down, up, scale } of stack) addLoraBranches(graph, new Map([[key, { down, up, scale }]]));
    unmerged.push(key);
  }
  return unmerged;
}
