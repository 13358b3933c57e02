/**
 * A Linear's bias into MatMulNBits' own bias input: MatMulNBits(x, W) followed by Add(y, b), b a 1-D [N]
 * weight, becomes MatMulNBits(x, W, bias b). One kernel and one pass over the activation fewer a Linear
 * (the WebGPU tensor-core kernel adds the bias as it writes its tile). The IR keeps Linear as matmul + add;
 * this runs on the lowered nodes, before half-precision.ts.
 */
import onnxProto from "onnx-proto";

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

export function fuseMatMulNBitsBias(nodes: NodeProto[], initializers: TensorProto[], outputs: string[]): NodeProto[] {
  const dims = new Map(initializers.map((i) => [i.name!, (i.dims ?? []).map(Number)]));
  const producer = new Map<string, NodeProto>();
  const readers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const i of n.input ?? []) readers.set(i, [...(readers.get(i) ?? []), n]);
  }
  /** The shape of a weight: an initializer, or a Cast of one (fp16/bf16 weights as stored). */
  const weightDims = (name: string): number[] | undefined => {
    if (dims.has(name)) return dims.get(name);
    const p = producer.get(name);
    return p?.opType === "Cast" && dims.has(p.input![0]) ? dims.get(p.input![0]) : undefined;
  };
  const graphOutputs = new Set(outputs);
  const removed = new Set<NodeProto>();
  for (const mm of nodes) {
    if (mm.opType !== "MatMulNBits" || (mm.input ?? []).length !== 3) continue;
    const y = mm.output![0];
    const users = readers.get(y) ?? [];
    if (graphOutputs.has(y) || users.length !== 1 || users[0].opType !== "Add" || (users[0].domain ?? "") !== "") continue;
    const add = users[0];
    const bias = add.input![0] === y ? add.input![1] : add.input![0];
    const n = Number(mm.attribute!.find((a) => a.name === "N")!.i);
    const d = weightDims(bias);
    if (!d || d.length !== 1 || d[0] !== n) continue;
    mm.input = [...mm.input!, "", "", bias];
    mm.output = [add.output![0]];
    removed.add(add);
  }
  return nodes.filter((n) => !removed.has(n));
}
