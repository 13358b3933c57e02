/**
 * Runs a lowered float32 model in float16: every float tensor inside the graph becomes float16 while
 * the graph's inputs and outputs stay float32 (a Cast at each end), so callers feed and read the same
 * arrays. fp16 weights are then used as stored (no Cast, half the memory), fp32 / bf16 ones are cast
 * to fp16 (folded by onnxruntime at session creation). Op types named in `keepFloat32` compute in
 * float32 between Casts instead (float32-region.ts), with float32 initializers where they read one.
 *
 * This is what diffusers does when a VAE runs in torch.float16: same ops, half-precision arithmetic,
 * with the same risk of overflow (the SDXL VAE's activations exceed 65504 and give NaN; the
 * "fp16-fix" VAE does not). Callers check the output and fall back to float32.
 */
import onnxProto from "onnx-proto";
import { f32ToF16 } from "../../safetensors/dtypes.js";
import { float32Region, floatInputs, type Float32IslandOp } from "./float32-region.js";

export { FLOAT32_ISLAND_OPS, type Float32IslandOp } from "./float32-region.js";

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;
type Model = onnxProto.onnx.IModelProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** float32 values as an ONNX FLOAT16 tensor (int32_data holds the raw 16 bits, as the ONNX spec says). */
function halfTensor(values: number[], dims: NonNullable<TensorProto["dims"]>, name?: string): TensorProto {
  const bits = f32ToF16(Float32Array.from(values));
  return { name, dataType: T.FLOAT16, dims, int32Data: Array.from(bits) };
}

export interface HalfPrecisionOptions {
  /**
   * Op types computed in float32 between Casts, as torch keeps some arithmetic in fp32 inside an fp16
   * model (GroupNorm statistics, softmax, the timestep sinusoids; see float32-region.ts). Default none.
   */
  keepFloat32?: readonly Float32IslandOp[];
}

const castNode = (to: number, input: string, output: string): onnxProto.onnx.INodeProto =>
  ({ opType: "Cast", input: [input], output: [output], name: `cast${to === T.FLOAT ? 32 : 16}_${output}`, attribute: [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: to }] });

export function toHalfPrecision(model: Model, opts: HalfPrecisionOptions = {}): void {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const region = float32Region(nodes, new Set(opts.keepFloat32 ?? []));
  const inRegion = (n: onnxProto.onnx.INodeProto) => region.has(n);
  // Float tensors that region nodes read: initializers among them stay float32.
  const readInside = new Set<string>();
  for (const node of region) for (const i of floatInputs(node)) readInside.add(node.input![i]);

  const before: onnxProto.onnx.INodeProto[] = [];
  const after: onnxProto.onnx.INodeProto[] = [];
  /** Tensor names whose value is float32 here (graph inputs, kept initializers, region outputs). */
  const full = new Set<string>();

  for (const init of g.initializer ?? []) {
    if (init.dataType !== T.FLOAT) continue;
    const name = init.name!;
    if (readInside.has(name)) { full.add(name); continue; } // kept float32; outside readers get a Cast below
    if (init.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      // an fp32 weight in the user's file: read as stored, cast once
      init.name = `${name}::stored`;
      before.push(castNode(T.FLOAT16, init.name, name));
    } else {
      const h = halfTensor(init.floatData ?? [], init.dims ?? [], init.name ?? undefined);
      init.dataType = T.FLOAT16;
      init.floatData = [];
      init.int32Data = h.int32Data;
    }
  }
  for (const node of nodes) {
    if (inRegion(node)) { for (const o of node.output ?? []) full.add(o); continue; }
    if (node.opType === "Cast" && (node.domain ?? "") === "") {
      const to = node.attribute!.find((a) => a.name === "to")!;
      if (Number(to.i) === T.FLOAT) to.i = T.FLOAT16;
    } else if (node.opType === "Constant") {
      const a = node.attribute![0];
      if (a.name === "value_float") node.attribute = [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t: halfTensor([a.f ?? 0], []) }];
      else if (a.name === "value_floats") node.attribute = [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t: halfTensor(a.floats ?? [], [(a.floats ?? []).length]) }];
      else if (a.name === "value" && a.t?.dataType === T.FLOAT) node.attribute = [{ name: "value", type: a.type, t: halfTensor(a.t.floatData ?? [], a.t.dims ?? []) }];
    }
  }
  for (const input of g.input ?? []) if (input.type?.tensorType?.elemType === T.FLOAT) full.add(input.name!);

  // Edges where the precision changes get one Cast per tensor: after its producer, or first for
  // graph inputs and initializers.
  const producer = new Map<string, onnxProto.onnx.INodeProto>();
  for (const node of nodes) for (const o of node.output ?? []) producer.set(o, node);
  const castsAfter = new Map<onnxProto.onnx.INodeProto, onnxProto.onnx.INodeProto[]>();
  const casted = new Map<string, string>();
  const convert = (n: string, to: number): string => {
    const key = `${n}::${to === T.FLOAT ? "f32" : "half"}`;
    if (!casted.has(key)) {
      casted.set(key, key);
      const p = producer.get(n);
      const cast = castNode(to, n, key);
      if (p) castsAfter.set(p, [...(castsAfter.get(p) ?? []), cast]);
      else before.push(cast);
    }
    return key;
  };
  for (const node of nodes) {
    if (inRegion(node)) {
      for (const i of floatInputs(node)) if (!full.has(node.input![i])) node.input![i] = convert(node.input![i], T.FLOAT);
    } else {
      node.input = (node.input ?? []).map((n) => (full.has(n) ? convert(n, T.FLOAT16) : n));
    }
  }
  // Graph outputs stay float32: a float16 one is renamed inside and cast at the end.
  const rename = new Map<string, string>();
  for (const output of g.output ?? []) {
    if (output.type?.tensorType?.elemType !== T.FLOAT || full.has(output.name!)) continue;
    const inner = `${output.name}::half`;
    rename.set(output.name!, inner);
    after.push(castNode(T.FLOAT, inner, output.name!));
  }
  const all = [...before, ...nodes.flatMap((n) => [n, ...(castsAfter.get(n) ?? [])])];
  for (const node of all) {
    node.input = (node.input ?? []).map((n) => rename.get(n) ?? n);
    node.output = (node.output ?? []).map((n) => rename.get(n) ?? n);
  }
  g.node = [...all, ...after];
}
