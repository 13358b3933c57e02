import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import onnxProto from "onnx-proto";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import { INSTANCE_NORM_EPSILON } from "../src/ir/ops/normalization.js";
import { relL2 } from "../src/runtime/webgpu-check.js";
import { groupNormGraph, groupNormReference } from "./helpers/group-norm-reference.js";
import { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";

// onnxruntime's WebGPU provider has no GroupNormalization kernel (it inlines the ONNX function: ~28
// kernels a call, shape arithmetic on the CPU); GroupNorm lowers there as InstanceNormalization over the
// groups plus the affine (ops/normalization.ts). Both lowerings are checked here on the CPU provider,
// against torch.nn.GroupNorm's formula in float64; test/webgpu.test.ts runs them on lavapipe.

const nodes = (bytes: Uint8Array) => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!;
const lower = (shape: number[], eps: number, device: "cpu" | "webgpu", precision: "float32" | "float16" = "float32", keep = false) =>
  lowerToOnnx(groupNormGraph(shape, 16, eps), "gn", { device, precision, keepFloat32: keep ? ["GroupNormalization"] : [] }).bytes;

const CASES: [number[], number][] = [[[2, 64, 5, 3], 1e-5], [[2, 32, 24], 1e-6], [[1, 32, 4, 4], 0.1]];
for (const [shape, eps] of CASES) {
  test(`GroupNorm [${shape}] / 16 groups, eps ${eps}: the WebGPU lowering (InstanceNormalization) equals the CPU one and torch's formula`, async () => {
    const x = Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => (eps === 0.1 ? 0.05 : 1) * (0.5 + Math.sin(i * 0.37) * (1 + (i % 7))));
    const ref = groupNormReference(x, shape, 16, eps);
    for (const device of ["cpu", "webgpu"] as const) {
      const bytes = lower(shape, eps, device);
      const all = nodes(bytes);
      const types = all.map((n) => n.opType);
      assert.equal(types.includes("GroupNormalization"), device === "cpu", `${device}: ${types.join(" ")}`);
      const norms = all.filter((n) => n.opType === "InstanceNormalization");
      assert.equal(norms.length, device === "webgpu" ? 1 : 0);
      // one epsilon for every InstanceNormalization (onnxruntime's WebGPU shader cache ignores it)
      for (const n of norms) assert.equal(n.attribute!.find((a) => a.name === "epsilon")!.f, Math.fround(INSTANCE_NORM_EPSILON));
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
      const y = (await session.run({ x: new ort.Tensor("float32", x, shape) })).y.data as Float32Array;
      await session.release();
      const r = relL2(y, ref);
      assert.ok(r < 1e-6, `${device} lowering: relL2 ${r.toExponential(2)}`);
    }
  });
}

test("GroupNorm in a float16 model: keepFloat32 GroupNormalization keeps the WebGPU lowering's statistics in float32", () => {
  for (const keep of [true, false]) {
    const all = nodes(lower([2, 64, 4, 4], 1e-6, "webgpu", "float16", keep));
    const norm = all.find((n) => n.opType === "InstanceNormalization")!;
    const producer = all.find((n) => n.output!.includes(norm.input![0]))!;
    const castTo = producer.opType === "Cast" ? Number(producer.attribute![0].i) : undefined;
    assert.equal(castTo === onnxProto.onnx.TensorProto.DataType.FLOAT, keep, `keep ${keep}: the normalized input comes from ${producer.opType} (to ${castTo})`);
  }
});

test("GEGLU: com.microsoft.BiasSplitGelu on WebGPU in float32 only (it fails on float16 inputs there), the composed ops elsewhere", () => {
  const g = new Graph();
  const x = g.input("x", [2, 5, 8]);
  g.output("y", F.biasGeglu(x, g.constant(Float32Array.from({ length: 8 }, (_, i) => i / 8), [8])));
  for (const [device, precision, fused] of [["webgpu", "float32", true], ["webgpu", "float16", false], ["cpu", "float32", false]] as const) {
    const types = nodes(lowerToOnnx(g, "geglu", { device, precision }).bytes).map((n) => n.opType);
    assert.equal(types.includes("BiasSplitGelu"), fused, `${device} ${precision}: ${types.join(" ")}`);
    // the composed form halves with one Split on WebGPU (a kernel fewer), two Slices on the CPU as measured there
    const halves = device === "webgpu" ? "Split" : "Slice";
    if (!fused) for (const t of ["Add", halves, "Gelu", "Mul"]) assert.ok(types.includes(t), `${device} ${precision}: ${types.join(" ")}`);
    assert.equal(types.filter((t) => t === "Slice").length, device === "cpu" ? 2 : 0, `${device} ${precision}: ${types.join(" ")}`);
  }
});

test("residual Add + LayerNorm: com.microsoft.SkipLayerNormalization on WebGPU (both precisions), Add + LayerNormalization on the CPU, equal on the CPU provider", async () => {
  const g = new Graph();
  const x = g.input("x", [2, 5, 8]), skip = g.input("skip", [2, 5, 8]);
  const [normed, sum] = F.addLayerNorm(x, skip, g.constant(Float32Array.from({ length: 8 }, (_, i) => 1 + i / 8), [8]), g.constant(Float32Array.from({ length: 8 }, (_, i) => i / 16), [8]), 1e-5);
  g.output("normed", normed);
  g.output("sum", sum);
  const feeds = { x: new ort.Tensor("float32", Float32Array.from({ length: 80 }, (_, i) => Math.sin(i)), [2, 5, 8]), skip: new ort.Tensor("float32", Float32Array.from({ length: 80 }, (_, i) => Math.cos(i * 0.7)), [2, 5, 8]) };
  const results: Record<string, Float32Array>[] = [];
  for (const [device, precision, fused] of [["webgpu", "float32", true], ["webgpu", "float16", true], ["cpu", "float32", false]] as const) {
    const bytes = lowerToOnnx(g, "aln", { device, precision }).bytes;
    const types = nodes(bytes).map((n) => n.opType);
    assert.equal(types.includes("SkipLayerNormalization"), fused, `${device} ${precision}: ${types.join(" ")}`);
    if (precision === "float16") continue;
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
    const out = await session.run(feeds);
    await session.release();
    results.push({ normed: out.normed.data as Float32Array, sum: out.sum.data as Float32Array });
  }
  for (const k of ["normed", "sum"]) assert.ok(relL2(results[0][k], results[1][k]) < 1e-6, `${k}: relL2 ${relL2(results[0][k], results[1][k]).toExponential(2)}`);
});
