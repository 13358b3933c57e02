import { Graph } from "../ir/graph.js";
import { WeightBuilder } from "../nn/weights.js";
import type { WeightDeltas } from "../nn/weight-deltas.js";
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import { checkCheckpoint, type ComponentKind } from "../models/components.js";
import { openWeights, type ComponentFiles } from "./component.js";
import { rejectUnappliedDeltas } from "./delta-check.js";
import type { ComponentWeights } from "./model-source.js";

/**
 * Checks a component's checkpoint against its config (every tensor present with the right shape,
 * none left over), then builds one graph of it and compiles it. The component is a diffusers folder's
 * files or a config + weight source opened elsewhere (a single-file checkpoint); `deltas` (LoRA) are
 * added to the weights they name, and every one must land on a weight of the model.
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
  checkCheckpoint(kind, files.config, source, where);
  const graph = new Graph();
  build(graph, WeightBuilder.root(graph, source, deltas));
  rejectUnappliedDeltas(deltas, where);
  return CompiledGraph.create(graph, description, opts);
}
