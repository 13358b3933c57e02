import { Graph } from "../ir/graph.js";
import { WeightBuilder, rejectLeftovers } from "../nn/weights.js";
import type { WeightDeltas } from "../nn/weight-deltas.js";
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import { checkCheckpoint, type ComponentKind } from "../models/components.js";
import { openWeights, type ComponentFiles, type ComponentWeights } from "./component.js";
import { rejectUnappliedDeltas } from "./delta-check.js";
import { unmergeLinearDeltas } from "../ir/passes/lora-branch.js";

/**
 * Compiles a graph built by `vb` after its checks: every LoRA delta landed on a weight, and (with
 * `leftovers`) every tensor of the checkpoint was used. With 8-bit Linear weights the Linear layers'
 * deltas run beside the product instead of merged, so the checkpoint weights are what gets quantized.
 */
export function compileChecked(vb: WeightBuilder, where: string, description: string, opts: SessionOptions = {}, deltas?: WeightDeltas, leftovers = true): Promise<CompiledGraph> {
  if (leftovers) rejectLeftovers(vb.unused(), where);
  rejectUnappliedDeltas(deltas, where);
  if (opts.linearWeights === "q8") unmergeLinearDeltas(vb.graph, vb.mergedDeltas());
  return CompiledGraph.create(vb.graph, description, opts);
}

/**
 * Checks a component's checkpoint against its config (every tensor present with the right shape,
 * none left over), builds one graph of it and compiles it. The component is a diffusers folder's
 * files or a config + weight source opened elsewhere (a single-file checkpoint); `deltas` (LoRA) are
 * added to the weights they name, and every one must land on a weight of the model (compileChecked).
 */
export async function compileComponent(
  files: ComponentFiles | ComponentWeights,
  kind: ComponentKind,
  description: string,
  build: (graph: Graph, vb: WeightBuilder) => void,
  opts: SessionOptions = {},
  deltas?: WeightDeltas,
): Promise<CompiledGraph> {
  const isFiles = "weightFiles" in files;
  const source = isFiles ? openWeights(files) : files.source;
  const where = isFiles ? files.dir : files.where;
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source, deltas);
  build(graph, vb);
  // The graph itself is the check (built once): only a partial build (one block) leaves tensors
  // unused, and then a build of the whole component tells leftovers from parts not built.
  if (vb.unused().length > 0) checkCheckpoint(kind, files.config, source, where);
  return compileChecked(vb, where, description, opts, deltas, false);
}
