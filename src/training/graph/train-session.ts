/**
 * How training graphs are compiled (the `ssd1b train` / `distill` commands, the benchmark and the
 * gradient tests use the same settings):
 *  - no onnxruntime memory arena: activations freed during the backward pass go back at once (with the
 *    arena, SSD-1B LoRA at 1024² kept growing past 20 GiB over the first steps);
 *  - frozen weights as the left operand of matrix products (LoweringContext.weightsOnTheLeft): held
 *    once instead of pre-packed for the forward and again for the backward product.
 */
import { CompiledGraph, type SessionOptions } from "../../runtime/session.js";
import type { Graph } from "../../ir/graph.js";

export const TRAINING_SESSION: SessionOptions = { memoryArena: false, weightsOnTheLeft: true };

export function compileTrainingGraph(graph: Graph, description: string, opts: { threads?: number } & SessionOptions = {}): Promise<CompiledGraph> {
  const { threads, ...session } = opts;
  return CompiledGraph.create(graph, description, { ...TRAINING_SESSION, ...session, ...(threads ? { intraOpThreads: threads } : {}) });
}
