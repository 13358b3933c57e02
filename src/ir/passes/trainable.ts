import { readFloat32 } from "../../safetensors/read.js";
import type { Graph } from "../graph.js";
import type { Tensor } from "../tensor.js";
import { gradients } from "../autodiff/backward.js";

/** A parameter being trained: a graph input fed from `value` (host memory, float32) at every step. */
export interface TrainableParameter {
  /** Checkpoint key, also the graph input's name. */
  key: string;
  tensor: Tensor;
  value: Float32Array;
}

/**
 * Turns the chosen checkpoint weights of a built graph into graph inputs named by their key, with
 * their current values read into memory; the other weights stay external data. The tensors keep
 * their identity, so the model code that used them needs no change.
 */
export function makeTrainable(graph: Graph, select: (key: string) => boolean): TrainableParameter[] {
  const params: TrainableParameter[] = [];
  const inputNames = new Set<string>();
  for (const leaf of graph.leaves.values()) if (leaf.kind === "input") inputNames.add(leaf.name);
  for (const [tensor, leaf] of graph.leaves) {
    if (leaf.kind !== "weight" || !select(leaf.key)) continue;
    if (inputNames.has(leaf.key)) throw new Error(`makeTrainable: "${leaf.key}" is already a graph input (two leaves with one key?)`);
    inputNames.add(leaf.key);
    params.push({ key: leaf.key, tensor, value: readFloat32(leaf.entry) });
    graph.makeInput(tensor, leaf.key);
  }
  return params;
}

/** A new trainable tensor (e.g. a LoRA factor) that no checkpoint holds yet. */
export function addParameter(graph: Graph, key: string, shape: readonly number[], value: Float32Array): TrainableParameter {
  if (value.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`addParameter: ${value.length} values for "${key}" [${shape}]`);
  return { key, tensor: graph.input(key, shape), value };
}

export const GRAD_PREFIX = "grad.";

/**
 * Makes a training graph of a forward graph: outputs `loss` and `grad.<key>` for every parameter
 * (the names the training fixtures use).
 */
export function addGradientOutputs(graph: Graph, loss: Tensor, params: TrainableParameter[]): void {
  const grads = gradients(graph, loss, params.map((p) => p.tensor));
  graph.output("loss", loss);
  params.forEach((p, i) => graph.output(GRAD_PREFIX + p.key, grads[i]));
}

/** The feeds of the parameters' current values. */
export function parameterFeeds(params: TrainableParameter[]): Record<string, Float32Array> {
  return Object.fromEntries(params.map((p) => [p.key, p.value]));
}
