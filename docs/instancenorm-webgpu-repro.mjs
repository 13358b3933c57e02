// Minimal reproduction of docs/onnxruntime-webgpu-instancenorm-bug.md: two InstanceNormalization models of
// the same shape, epsilon 0.1 then 1e-4, in one process on onnxruntime-node's WebGPU EP vs. a float64
// reference. Needs only onnxruntime-node and onnx-proto: `node docs/instancenorm-webgpu-repro.mjs`.
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
const [N, C, L] = [1, 8, 64];
const io = (name, dims) => ({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const model = (epsilon) => onnx.ModelProto.encode({
  irVersion: 10, opsetImport: [{ domain: "", version: 21 }],
  graph: {
    name: "instancenorm", input: [io("x", [N, C, L])], output: [io("y", [N, C, L])],
    initializer: [{ name: "scale", dataType: 1, dims: [C], floatData: new Array(C).fill(1) }, { name: "bias", dataType: 1, dims: [C], floatData: new Array(C).fill(0) }],
    node: [{ opType: "InstanceNormalization", input: ["x", "scale", "bias"], output: ["y"], attribute: [{ name: "epsilon", type: onnx.AttributeProto.AttributeType.FLOAT, f: epsilon }] }],
  },
}).finish();

// variance ~1e-4 per channel, so that epsilon 0.1 and 1e-4 give very different outputs
const x = Float32Array.from({ length: N * C * L }, (_, i) => 0.01 * Math.sin(i * 0.731));
function reference(epsilon) {
  const out = new Float64Array(x.length);
  for (let c = 0; c < N * C; c++) {
    const row = x.subarray(c * L, (c + 1) * L);
    const mean = row.reduce((a, b) => a + b, 0) / L;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / L;
    row.forEach((v, j) => { out[c * L + j] = (v - mean) / Math.sqrt(variance + epsilon); });
  }
  return out;
}

for (const ep of ["cpu", "webgpu"]) {
  for (const epsilon of [0.1, 1e-4]) {
    const session = await ort.InferenceSession.create(model(epsilon), { executionProviders: [ep] });
    const y = (await session.run({ x: new ort.Tensor("float32", x, [N, C, L]) })).y.data;
    const ref = reference(epsilon);
    let num = 0, den = 0;
    for (let i = 0; i < ref.length; i++) { num += (y[i] - ref[i]) ** 2; den += ref[i] ** 2; }
    console.log(`${ep}: epsilon ${epsilon}, relative L2 error ${Math.sqrt(num / den).toExponential(2)}`);
  }
}
