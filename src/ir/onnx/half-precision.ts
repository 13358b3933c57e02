/**
 * Runs a lowered float32 model in float16: every float tensor inside the graph becomes float16 while
 * the graph's inputs and outputs stay float32 (a Cast at each end), so callers feed and read the same
 * arrays. fp16 weights are then used as stored (no Cast, half the memory), fp32 / bf16 ones are cast
 * to fp16 (folded by onnxruntime at session creation).
 *
 * This is what diffusers does when a VAE runs in torch.float16: same ops, half-precision arithmetic,
 * with the same risk of overflow (the SDXL VAE's activations exceed 65504 and give NaN; the
 * "fp16-fix" VAE does not). Callers check the output and fall back to float32.
 */
import onnxProto from "onnx-proto";
import { f32ToF16 } from "../../safetensors/dtypes.js";

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;
type Model = onnxProto.onnx.IModelProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** float32 values as an ONNX FLOAT16 tensor (int32_data holds the raw 16 bits, as the ONNX spec says). */
function halfTensor(values: number[], dims: NonNullable<TensorProto["dims"]>, name?: string): TensorProto {
  const bits = f32ToF16(Float32Array.from(values));
  return { name, dataType: T.FLOAT16, dims, int32Data: Array.from(bits) };
}

export function toHalfPrecision(model: Model): void {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const before: onnxProto.onnx.INodeProto[] = [];
  const after: onnxProto.onnx.INodeProto[] = [];
  const rename = new Map<string, string>();

  for (const init of g.initializer ?? []) {
    if (init.dataType !== T.FLOAT) continue;
    if (init.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      // an fp32 weight in the user's file: read as stored, cast once
      const name = init.name!;
      init.name = `${name}::stored`;
      before.push({ opType: "Cast", input: [init.name], output: [name], name: `half_${name}`, attribute: [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT16 }] });
    } else {
      const h = halfTensor(init.floatData ?? [], init.dims ?? [], init.name ?? undefined);
      init.dataType = T.FLOAT16;
      init.floatData = [];
      init.int32Data = h.int32Data;
    }
  }
  for (const node of nodes) {
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
  for (const input of g.input ?? []) {
    const tt = input.type?.tensorType;
    if (tt?.elemType !== T.FLOAT) continue;
    const inner = `${input.name}::half`;
    rename.set(input.name!, inner);
    before.push({ opType: "Cast", input: [input.name!], output: [inner], name: `half_in_${input.name}`, attribute: [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT16 }] });
  }
  for (const node of nodes) node.input = (node.input ?? []).map((n) => rename.get(n) ?? n);
  for (const output of g.output ?? []) {
    const tt = output.type?.tensorType;
    if (tt?.elemType !== T.FLOAT) continue;
    const inner = `${output.name}::half`;
    for (const node of nodes) node.output = (node.output ?? []).map((n) => (n === output.name ? inner : n));
    for (const node of nodes) node.input = (node.input ?? []).map((n) => (n === output.name ? inner : n));
    after.push({ opType: "Cast", input: [inner], output: [output.name!], name: `half_out_${output.name}`, attribute: [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT } ] });
  }
  g.node = [...before, ...nodes, ...after];
}
