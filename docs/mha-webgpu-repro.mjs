// Minimal reproduction of docs/onnxruntime-webgpu-mha-bug.md: one com.microsoft.MultiHeadAttention node
// (1 batch, 2 heads of 8, 64 query and 64 key tokens) on onnxruntime-node's WebGPU EP vs. a float64
// reference. Needs only onnxruntime-node and onnx-proto: `node docs/mha-webgpu-repro.mjs [tokens]`.
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
const S = Number(process.argv[2] ?? 64), H = 2, DH = 8, D = H * DH;
const io = (name) => ({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [1, S, D].map((d) => ({ dimValue: d })) } } } });
const model = onnx.ModelProto.encode({
  irVersion: 10, opsetImport: [{ domain: "", version: 21 }, { domain: "com.microsoft", version: 1 }],
  graph: {
    name: "mha", input: ["q", "k", "v"].map(io), output: [io("out")],
    node: [{ opType: "MultiHeadAttention", domain: "com.microsoft", input: ["q", "k", "v"], output: ["out"], attribute: [{ name: "num_heads", type: onnx.AttributeProto.AttributeType.INT, i: H }] }],
  },
}).finish();

let seed = 1;
const rand = (n) => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0), seed / 2 ** 31 - 1));
const [q, k, v] = [rand(S * D), rand(S * D), rand(S * D)];

const ref = new Float64Array(S * D);
for (let h = 0; h < H; h++) for (let i = 0; i < S; i++) {
  const w = Array.from({ length: S }, (_, j) => { let s = 0; for (let c = 0; c < DH; c++) s += q[i * D + h * DH + c] * k[j * D + h * DH + c]; return s / Math.sqrt(DH); });
  const m = Math.max(...w), e = w.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
  for (let c = 0; c < DH; c++) ref[i * D + h * DH + c] = e.reduce((a, p, j) => a + p * v[j * D + h * DH + c], 0) / z;
}

for (const ep of ["cpu", "webgpu"]) {
  const session = await ort.InferenceSession.create(model, { executionProviders: [ep] });
  const t = (x) => new ort.Tensor("float32", x, [1, S, D]);
  const out = (await session.run({ q: t(q), k: t(k), v: t(v) })).out.data;
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) { num += (out[i] - ref[i]) ** 2; den += ref[i] ** 2; }
  console.log(`${ep}: ${S} tokens, relative L2 error ${Math.sqrt(num / den).toExponential(2)}`);
}
