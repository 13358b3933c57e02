import { Graph } from "../ir/graph.js";
import { WeightBuilder } from "../nn/weights.js";
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import { checkCheckpoint, type ComponentKind } from "../models/components.js";
import { openWeights, type ComponentFiles } from "./component.js";

/**
 * Checks a component's checkpoint against its config (every tensor present with the right shape,
 * none left over), then builds one graph of it and compiles it.
 */
export async function compileComponent(
  files: ComponentFiles,
  kind: ComponentKind,
  description: string,
  build: (graph: Graph, vb: WeightBuilder) => void,
  opts: SessionOptions = {},
): Promise<CompiledGraph> {
  const source = openWeights(files);
  checkCheckpoint(kind, files.config, source, files.dir);
  const graph = new Graph();
  build(graph, WeightBuilder.root(graph, source));
  return CompiledGraph.create(graph, description, opts);
}
