import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { attentionModel, referenceAttention, relL2 } from "../src/runtime/webgpu-check.js";

// The lowering WebGPU falls back to (MatMul + Softmax + MatMul) must equal the fused op; checked on the
// CPU EP so that it holds without a GPU too (test/webgpu.test.ts runs it on lavapipe).
test("attention: the unfused lowering equals MultiHeadAttention and the host reference", async () => {
  const [b, s, h, dh] = [1, 64, 2, 8], d = h * dh;
  const rand = (seed: number) => Float32Array.from({ length: b * s * d }, (_, i) => Math.sin(seed * 1000 + i * 0.37));
  const [q, k, v] = [rand(1), rand(2), rand(3)];
  const ref = referenceAttention(q, k, v, b, s, s, h, dh);
  for (const unfused of [false, true]) {
    const session = await ort.InferenceSession.create(attentionModel(unfused), { executionProviders: ["cpu"] });
    const t = (x: Float32Array) => new ort.Tensor("float32", x, [b, s, d]);
    const out = (await session.run({ q: t(q), k: t(k), v: t(v) })).out.data as Float32Array;
    await session.release();
    const r = relL2(out, ref);
    assert.ok(r < 1e-6, `${unfused ? "unfused" : "fused"}: relL2 ${r.toExponential(2)}`);
  }
});
