import { Graph } from "../ir/graph.js";
import { WeightBuilder, WeightError } from "../nn/weights.js";
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import { openWeights, type ComponentFiles } from "./component.js";

/**
 * Builds a component's graph against its checkpoint and compiles it. Every tensor the config calls
 * for must be in the files with the right shape, and every tensor in the files must be used: a
 * leftover means the config does not describe these weights.
 */
export async function compileComponent(
  files: ComponentFiles,
  description: string,
  build: (graph: Graph, vb: WeightBuilder) => void,
  opts: SessionOptions = {},
): Promise<CompiledGraph> {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, openWeights(files));
  build(graph, vb);
  const unused = vb.unused();
  if (unused.length) {
    throw new WeightError(`${files.dir}: ${unused.length} tensor(s) in the checkpoint are not used by a model with this config.json (e.g. ${unused.slice(0, 5).map((k) => `"${k}"`).join(", ")}); is the config for another model?`);
  }
  return CompiledGraph.create(graph, description, opts);
}
