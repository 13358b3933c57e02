/**
 * 8-bit Linear weights (SessionOptions.linearWeights "q8", src/ir/onnx/q8-weights.ts): the q8_0 layout
 * com.microsoft.MatMulNBits reads, the lowering (MatMulNBits in place of MatMul, float originals dropped,
 * every weight in onnxruntime's in-memory external data), and real values on the CPU provider against a
 * host product and the tiny UNet fixture. The WebGPU run is in webgpu.test.ts (unet-tiny-ssd-q8).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import { convRows, dequantizeQ8, quantizeQ8 } from "../src/ir/onnx/q8-weights.js";
import { InMemoryWeights } from "../src/ir/onnx/in-memory-weights.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { f16ToF32 } from "../src/safetensors/dtypes.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { openComponent, openWeights } from "../src/loaders/component.js";
import { compileComponent } from "../src/loaders/compile.js";
import { buildUNetGraph, parseUNetConfig } from "../src/models/unet/index.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { unetQ8Weights, unetSession } from "../src/pipelines/sessions.js";
import { diff, fixture, openFixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { Prng } from "./helpers/prng.js";

/**
 * The tiny-ssd UNet (float32) with q8 Linear weights against its fixture: 2.9e-3 relative L2 measured (float16
 * on the CPU: 7.3e-4; the float16 UNet on WebGPU, lavapipe: 8.3e-3, docs/webgpu-fp16.md). Bound ~2x.
 */
const Q8_UNET_REL_L2 = 6e-3;

const rel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) { n += (a[i] - b[i]) ** 2; d += b[i] ** 2; }
  return Math.sqrt(n / d);
};

function gaussian(n: number, scale: number, seed: number): Float32Array {
  const p = new Prng(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - p.next())) * Math.cos(2 * Math.PI * p.next()) * scale);
}

test("quantizeQ8: blocks of 32 along K, scale max|w|/127 in fp16, q + 128; error at most half a step; ~5e-3 relative L2 on Gaussian weights", () => {
  const n = 3, k = 64;
  const w = Float32Array.from({ length: n * k }, (_, i) => (i % 2 ? -1 : 1) * ((i % 32) + 1) * 0.01 * (1 + Math.floor(i / 32)));
  const q = quantizeQ8(w, n, k);
  assert.equal(q.data.length, n * k);
  assert.equal(q.scales.length, n * (k / 32));
  const scales = f16ToF32(q.scales);
  for (let b = 0; b < n * (k / 32); b++) {
    assert.ok(Math.abs(scales[b] - (0.32 * (b + 1)) / 127) <= 1e-3 * scales[b], `block ${b}: scale ${scales[b]}`);
    // the block's largest |w| maps to ±127 (q 1 or 255)
    assert.ok(q.data[b * 32 + 31] === 1 || q.data[b * 32 + 31] === 255, `block ${b}: q ${q.data[b * 32 + 31]}`);
  }
  const back = dequantizeQ8(q);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(back[i] - w[i]) <= scales[Math.floor(i / 32)] / 2 + 1e-9, `element ${i}`);
  // zeros stay zeros (scale 0 must not divide)
  const zeros = quantizeQ8(new Float32Array(32), 1, 32);
  assert.deepEqual([...dequantizeQ8(zeros)], new Array(32).fill(0));
  const g = gaussian(256 * 640, 0.04, 7);
  const e = rel(dequantizeQ8(quantizeQ8(g, 256, 640)), g);
  assert.ok(e > 3e-3 && e < 7e-3, `Gaussian weights: relative L2 ${e}`);
  assert.throws(() => quantizeQ8(new Float32Array(2 * 40), 2, 40), /K \(40\) must be a multiple of 32/);
});

test("InMemoryWeights: one file a tensor, its bytes as given (no copy)", () => {
  const m = new InMemoryWeights();
  const a = new Uint8Array(10).fill(1), b = new Uint8Array(3).fill(2);
  assert.deepEqual(m.add(a), { location: "ssd1b-in-memory-0.bin", offset: 0, length: 10 });
  assert.deepEqual(m.add(b), { location: "ssd1b-in-memory-1.bin", offset: 0, length: 3 });
  const files = m.take();
  assert.deepEqual(files.map((f) => [f.path, f.data.length]), [["ssd1b-in-memory-0.bin", 10], ["ssd1b-in-memory-1.bin", 3]]);
  assert.equal(files[1].data, b);
  assert.ok(m.empty);
});

/** x [2, 8, 64] → Linear 64->96 + bias → Linear 96->64 (no bias): weights as constants. */
function twoLinears(): { g: Graph; w1: Float32Array; w2: Float32Array; b1: Float32Array } {
  const g = new Graph();
  const w1 = gaussian(96 * 64, 0.125, 1), b1 = gaussian(96, 0.1, 2), w2 = gaussian(64 * 96, 0.1, 3);
  const x = g.input("x", [2, 8, 64]);
  const h = F.add(F.matmulTransB(x, g.constant(w1, [96, 64])), g.constant(b1, [96]));
  g.output("y", F.matmulTransB(h, g.constant(w2, [64, 96])));
  return { g, w1, w2, b1 };
}

/** x·Wᵀ (+ b) on the host in float64. */
function linear(x: Float32Array, rows: number, k: number, w: ArrayLike<number>, n: number, b?: Float32Array): Float64Array {
  const y = new Float64Array(rows * n);
  for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) {
    let s = b ? b[j] : 0;
    for (let i = 0; i < k; i++) s += x[r * k + i] * w[j * k + i];
    y[r * n + j] = s;
  }
  return y;
}

test("linearWeights q8: Linear layers lower to MatMulNBits (bits 8, block 32, the bias as its input) with in-memory weights; the CPU result is the host product with the quantized weights", async () => {
  const { g, w1, w2, b1 } = twoLinears();
  const lowered = lowerToOnnx(g, "q8", { linearWeights: "q8" });
  const model = onnxProto.onnx.ModelProto.decode(lowered.bytes);
  const types = model.graph!.node!.map((n) => n.opType);
  assert.equal(types.filter((t) => t === "MatMulNBits").length, 2, types.join(","));
  assert.ok(!types.includes("MatMul") && !types.includes("Add"), `no MatMul, and the bias Add fused into MatMulNBits: ${types.join(",")}`);
  const nbits = model.graph!.node!.find((n) => n.opType === "MatMulNBits")!;
  assert.deepEqual(Object.fromEntries(nbits.attribute!.map((a) => [a.name, Number(a.i)])), { K: 64, N: 96, bits: 8, block_size: 32 });
  assert.equal(nbits.input!.length, 6, "bias as MatMulNBits' input 5");
  // the float originals of the quantized weights are gone; the bias stays a float initializer
  const floats = model.graph!.initializer!.filter((i) => (i.floatData?.length ?? 0) > 0).map((i) => i.floatData!.length);
  assert.deepEqual(floats, [96]);
  assert.deepEqual(lowered.inMemoryFiles.map((f) => f.path), ["ssd1b-in-memory-0.bin", "ssd1b-in-memory-1.bin", "ssd1b-in-memory-2.bin", "ssd1b-in-memory-3.bin"], "the data and scales of each quantized weight");
  assert.equal(lowerToOnnx(twoLinears().g, "float").inMemoryFiles.length, 0);

  const x = gaussian(2 * 8 * 64, 1, 4);
  const h = Float32Array.from(linear(x, 16, 64, dequantizeQ8(quantizeQ8(w1, 96, 64)), 96, b1));
  const want = linear(h, 16, 96, dequantizeQ8(quantizeQ8(w2, 64, 96)), 64);
  const exact = linear(Float32Array.from(linear(x, 16, 64, w1, 96, b1)), 16, 96, w2, 64);
  for (const precision of ["float32", "float16"] as const) {
    const compiled = await CompiledGraph.create(twoLinears().g, "q8 linears", { linearWeights: "q8", precision });
    const y = (await compiled.run({ x })).y;
    await compiled.release();
    // float32: the quantized product to float32 rounding (measured 2.4e-7); float16: fp16 tensors on top (4.1e-4)
    assert.ok(rel(y, want) < (precision === "float32" ? 1e-5 : 1e-3), `${precision}: vs the quantized host product ${rel(y, want)}`);
    const e = rel(y, exact);
    assert.ok(e > 3e-3 && e < 1.5e-2, `${precision}: vs the float weights ${e} (measured 7.5e-3)`);
  }
});

/** conv2d on the host in float64 with weight rows [co, kh·kw·ci] in (ky, kx, c) order; zero or circular pads. */
function convRowsReference(x: Float32Array, [n, ci, h, w]: number[], rows: ArrayLike<number>, co: number, k: number, b: Float32Array | undefined, stride: number, pad: number, circular: boolean): Float64Array {
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1, wo = Math.floor((w + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(n * co * ho * wo);
  const at = (b0: number, c: number, i: number, j: number) => {
    if (circular) { i = (i + h) % h; j = (j + w) % w; } else if (i < 0 || j < 0 || i >= h || j >= w) return 0;
    return x[((b0 * ci + c) * h + i) * w + j];
  };
  for (let b0 = 0; b0 < n; b0++) for (let o = 0; o < co; o++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) {
    let s = b ? b[o] : 0;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) for (let c = 0; c < ci; c++) {
      s += rows[o * k * k * ci + (ky * k + kx) * ci + c] * at(b0, c, i * stride + ky - pad, j * stride + kx - pad);
    }
    y[((b0 * co + o) * ho + i) * wo + j] = s;
  }
  return y;
}

test("convWeights q8: convs lower to NHWC patches (one Gather) + MatMulNBits with the bias; 3x3 (stride 1 and 2, zero and circular pads) and 1x1 match the host conv with the quantized weights", async () => {
  const cases = [
    { ci: 64, co: 64, k: 3, stride: 1, pad: 1, bias: true, circular: false },
    { ci: 32, co: 64, k: 3, stride: 2, pad: 1, bias: true, circular: false },
    { ci: 32, co: 128, k: 1, stride: 1, pad: 0, bias: false, circular: false },
    { ci: 32, co: 64, k: 3, stride: 1, pad: 1, bias: true, circular: true },
  ];
  for (const [i, c] of cases.entries()) {
    const shape = [2, c.ci, 6, 5];
    const x = gaussian(shape.reduce((a, b) => a * b, 1), 1, 10 + i);
    const wts = gaussian(c.co * c.ci * c.k * c.k, 1 / Math.sqrt(c.ci * c.k * c.k), 20 + i), bias = c.bias ? gaussian(c.co, 0.1, 30 + i) : undefined;
    const build = () => {
      const g = new Graph();
      const xin = g.input("x", shape);
      g.output("y", F.conv2d(xin, g.constant(wts, [c.co, c.ci, c.k, c.k]), bias && g.constant(bias, [c.co]), { stride: c.stride, pads: [c.pad, c.pad, c.pad, c.pad] }));
      return g;
    };
    const what = `${c.k}x${c.k} ${c.ci}->${c.co} stride ${c.stride}${c.circular ? " circular" : ""}`;
    const types = onnxProto.onnx.ModelProto.decode(lowerToOnnx(build(), "conv", { convWeights: "q8", circularConvPads: c.circular }).bytes).graph!.node!.map((n) => n.opType);
    assert.ok(types.includes("MatMulNBits") && !types.includes("Conv"), `${what}: ${types.join(",")}`);
    // the patches are one Gather of pixels (a 1x1 stride-1 conv needs none), never kh·kw Slices and a Concat
    assert.equal(types.filter((t) => t === "Gather").length, c.k > 1 ? 1 : 0, `${what}: ${types.join(",")}`);
    assert.ok(!types.includes("Slice") && !types.includes("Concat"), `${what}: ${types.join(",")}`);
    const k = c.ci * c.k * c.k;
    const want = convRowsReference(x, shape, dequantizeQ8(quantizeQ8(convRows(wts, [c.co, c.ci, c.k, c.k]), c.co, k)), c.co, c.k, bias, c.stride, c.pad, c.circular);
    const exact = convRowsReference(x, shape, convRows(wts, [c.co, c.ci, c.k, c.k]), c.co, c.k, bias, c.stride, c.pad, c.circular);
    const compiled = await CompiledGraph.create(build(), `q8 conv ${what}`, { convWeights: "q8", circularConvPads: c.circular });
    const y = (await compiled.run({ x })).y;
    await compiled.release();
    assert.equal(y.length, want.length, what);
    assert.ok(rel(y, want) < 1e-5, `${what}: vs the quantized host conv ${rel(y, want)}`);
    const e = rel(y, exact);
    assert.ok(e > 2e-3 && e < 1.5e-2, `${what}: vs the float weights ${e}`);
  }
  // convs the kernel cannot take stay Conv: 4 output channels (conv_out), and 4 input channels (K = 36, conv_in)
  for (const [ci, co] of [[64, 4], [4, 64]]) {
    const g = new Graph();
    g.output("y", F.conv2d(g.input("x", [1, ci, 4, 4]), g.constant(gaussian(co * ci * 9, 0.1, 5), [co, ci, 3, 3]), undefined, { stride: 1, pads: [1, 1, 1, 1] }));
    const types = onnxProto.onnx.ModelProto.decode(lowerToOnnx(g, "conv", { convWeights: "q8" }).bytes).graph!.node!.map((n) => n.opType);
    assert.ok(types.includes("Conv") && !types.includes("MatMulNBits"), `${ci}->${co}: ${types.join(",")}`);
  }
});

test("SSD1B_UNET_LINEAR_WEIGHTS / SSD1B_UNET_CONV_WEIGHTS: q8 or float, anything else an error naming the variable", () => {
  assert.deepEqual(unetQ8Weights({}), {});
  assert.deepEqual(unetQ8Weights({ SSD1B_UNET_LINEAR_WEIGHTS: "q8", SSD1B_UNET_CONV_WEIGHTS: "float" }), { linearWeights: "q8", convWeights: "float" });
  assert.throws(() => unetQ8Weights({ SSD1B_UNET_LINEAR_WEIGHTS: "int8" }), /SSD1B_UNET_LINEAR_WEIGHTS=int8: must be q8 or float/);
  assert.throws(() => unetQ8Weights({ SSD1B_UNET_CONV_WEIGHTS: "4" }), /SSD1B_UNET_CONV_WEIGHTS=4: must be q8 or float/);
  assert.equal(unetSession({ linearWeights: "q8" }, "float32").linearWeights, "q8");
});

test("tiny UNet with q8 Linear weights on the CPU: weights from the file moved into memory, the fixture output within the quantization error", { skip: NO_FIXTURES }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "q8-unet-"));
  try {
    copyFileSync(fixture("unet", "tiny-ssd", "config.json"), join(dir, "config.json"));
    const manifest: Record<string, number[]> = JSON.parse(readFileSync(fixture("unet", "tiny-ssd", "manifest.json"), "utf8"));
    writeSynthFile(join(dir, "diffusion_pytorch_model.safetensors"), Object.entries(manifest), "fp32");
    const io = openFixture("unet", "tiny-ssd", "io.safetensors");
    const files = openComponent(dir);
    const config = parseUNetConfig(files.config);
    const [b, , h, w] = io.get("in.sample").shape;
    const build = (g: Graph, vb: WeightBuilder) => buildUNetGraph(g, vb, config, { batch: b, height: h, width: w });
    const g = new Graph();
    build(g, WeightBuilder.root(g, openWeights(files)));
    const lowered = lowerToOnnx(g, "t", { linearWeights: "q8" });
    const inits = onnxProto.onnx.ModelProto.decode(lowered.bytes).graph!.initializer!;
    const locations = new Set(inits.flatMap((i) => (i.externalData ?? []).filter((e) => e.key === "location").map((e) => e.value!)));
    assert.ok(locations.size > 1 && [...locations].every((l) => l.startsWith("ssd1b-in-memory-")), `every external initializer in memory (onnxruntime looks nowhere else then): ${[...locations].slice(0, 5)}`);
    assert.equal(locations.size, lowered.inMemoryFiles.length, "one file a tensor");
    const model = await compileComponent(files, "unet", "unet q8", build, { linearWeights: "q8" });
    const out = await model.run({
      sample: io.float32("in.sample"), timestep: io.float32("in.timestep"), encoder_hidden_states: io.float32("in.encoder_hidden_states"),
      text_embeds: io.float32("in.text_embeds"), time_ids: io.float32("in.time_ids"),
    });
    await model.release();
    const d = diff(out.sample_out, io.float32("out.sample"));
    assert.ok(d.relL2 > 1e-3 && d.relL2 < Q8_UNET_REL_L2, `relL2 ${d.relL2} (float weights: ~1e-6)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
