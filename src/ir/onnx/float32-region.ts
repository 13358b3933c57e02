/**
 * Which nodes of a graph made float16 (half-precision.ts) still compute in float32, and which of their
 * inputs are float tensors (those get a Cast at the region's edge; shapes and indices do not).
 */
import type onnxProto from "onnx-proto";

type Node = onnxProto.onnx.INodeProto;

/**
 * Op types `keepFloat32` may name. Sin and Cos take their whole argument along: the nodes that compute
 * it from the graph's inputs and constants (diffusers' get_timestep_embedding multiplies
 * `timesteps.float()` by fp32 frequencies, so a timestep such as 901 times a frequency near 1 keeps
 * its fractional part, which fp16 at 512-1024 rounds to 0.5).
 */
export const FLOAT32_ISLAND_OPS = ["GroupNormalization", "LayerNormalization", "Softmax", "MultiHeadAttention", "Sin", "Cos", "MatMul", "Conv"] as const;
export type Float32IslandOp = (typeof FLOAT32_ISLAND_OPS)[number];

/** Input positions that hold float tensors, for the op types a region can contain (all: every input). */
const FLOAT_INPUTS: Record<string, "all" | number[]> = {
  GroupNormalization: "all", InstanceNormalization: "all", SkipLayerNormalization: "all", LayerNormalization: "all", Softmax: "all", MultiHeadAttention: "all", Sin: "all", Cos: "all",
  MatMul: "all", Conv: "all",
  Mul: "all", Div: "all", Add: "all", Sub: "all", Reshape: [0], Unsqueeze: [0], Flatten: [0], Identity: "all",
};
/** com.microsoft ops a region may hold (other contrib ops keep their own precision). */
const CONTRIB_ISLAND_OPS = new Set(["MultiHeadAttention", "SkipLayerNormalization"]);
/** Ops the backward walk from Sin/Cos passes through; anything else ends the region there. */
const ARGUMENT_OPS = new Set(["Mul", "Div", "Add", "Sub", "Reshape", "Unsqueeze", "Flatten", "Identity"]);

export function floatInputs(node: Node): number[] {
  const spec = FLOAT_INPUTS[node.opType!];
  const n = (node.input ?? []).length;
  if (spec === undefined) throw new Error(`float32 region: no float-input rule for ${node.opType}`);
  return (spec === "all" ? [...Array(n).keys()] : spec.filter((i) => i < n)).filter((i) => !!node.input![i]);
}

/** The nodes kept in float32: those of the `keep` op types, plus (for Sin/Cos) their arguments' producers. */
export function float32Region(nodes: readonly Node[], keep: ReadonlySet<string>): Set<Node> {
  for (const t of keep) if (!(FLOAT32_ISLAND_OPS as readonly string[]).includes(t)) throw new Error(`keepFloat32: ${t} is not one of ${FLOAT32_ISLAND_OPS.join(", ")}`);
  const producer = new Map<string, Node>();
  for (const node of nodes) for (const o of node.output ?? []) producer.set(o, node);
  // On WebGPU GroupNorm is lowered as InstanceNormalization, a residual Add + LayerNorm as
  // SkipLayerNormalization (ops/normalization.ts): the same islands.
  const types = new Set(keep);
  if (keep.has("GroupNormalization")) types.add("InstanceNormalization");
  if (keep.has("LayerNormalization")) types.add("SkipLayerNormalization");
  const region = new Set<Node>();
  const walk = (node: Node) => {
    for (const i of floatInputs(node)) {
      const p = producer.get(node.input![i]);
      if (p && !region.has(p) && ARGUMENT_OPS.has(p.opType!)) { region.add(p); walk(p); }
    }
  };
  for (const node of nodes) {
    if (!types.has(node.opType!) || (node.domain && !CONTRIB_ISLAND_OPS.has(node.opType!))) continue;
    region.add(node);
    if (node.opType === "Sin" || node.opType === "Cos") walk(node);
  }
  return region;
}
