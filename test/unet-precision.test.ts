/**
 * unetPrecision: how "auto" resolves, the --unet-precision flag, the float32 islands toHalfPrecision
 * leaves in a float16 UNet graph, and the tiny UNet in float16 on the CPU (the WebGPU run is in
 * webgpu.test.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { fixture, openFixture, diff, NO_FIXTURES } from "./helpers/fixtures.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { openComponent, openWeights } from "../src/loaders/component.js";
import { compileComponent } from "../src/loaders/compile.js";
import { parseUNetConfig, buildUNetGraph } from "../src/models/unet/index.js";
import { Graph } from "../src/ir/graph.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import { UNET_FLOAT32_OPS, unetFloat32Ops, unetSession } from "../src/pipelines/sessions.js";
import { unetPrecision } from "../src/pipelines/sdxl/load-options.js";
import { parseModelLoad } from "../src/cli/commands/generate.js";

const T = onnxProto.onnx.TensorProto.DataType;

test("unetPrecision: auto is float16 on webgpu, float32 on cpu; explicit values and the CLI flag", () => {
  assert.equal(unetPrecision({}), "float32");
  assert.equal(unetPrecision({ session: { device: "webgpu" } }), "float16");
  assert.equal(unetPrecision({ session: { device: "webgpu" }, unetPrecision: "float32" }), "float32");
  assert.equal(unetPrecision({ unetPrecision: "float16" }), "float16");
  assert.throws(() => unetPrecision({ unetPrecision: "half" as "auto" }), /unetPrecision must be float32, float16 or auto, got "half"/);
  assert.equal(parseModelLoad({ "unet-precision": "fp16" }).unetPrecision, "float16");
  assert.equal(parseModelLoad({}).unetPrecision, undefined);
  assert.throws(() => parseModelLoad({ "unet-precision": "half" }), /--unet-precision must be fp16, fp32 or auto, got "half"/);
  assert.deepEqual(unetSession({ device: "webgpu" }, "float16"), { device: "webgpu", precision: "float16", keepFloat32: ["Softmax", "Sin", "Cos"] });
  assert.deepEqual(unetSession({ device: "cpu" }, "float16"), { device: "cpu", precision: "float16", keepFloat32: UNET_FLOAT32_OPS });
  assert.deepEqual(unetFloat32Ops("webgpu", { SSD1B_UNET_FLOAT32_OPS: "Conv+Softmax" }), ["Conv", "Softmax"]);
  assert.deepEqual(unetFloat32Ops("cpu", { SSD1B_UNET_FLOAT32_OPS: "" }), []);
});

function tinyUNetFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), "unet-precision-"));
  copyFileSync(fixture("unet", "tiny-ssd", "config.json"), join(dir, "config.json"));
  const manifest: Record<string, number[]> = JSON.parse(readFileSync(fixture("unet", "tiny-ssd", "manifest.json"), "utf8"));
  writeSynthFile(join(dir, "diffusion_pytorch_model.safetensors"), Object.entries(manifest), "fp32");
  return dir;
}

test("float16 UNet graph: GroupNorm and Softmax between Casts, the timestep sinusoid in float32 from the input", { skip: NO_FIXTURES }, () => {
  const dir = tinyUNetFolder();
  try {
    const files = openComponent(dir);
    const g = new Graph();
    buildUNetGraph(g, WeightBuilder.root(g, openWeights(files)), parseUNetConfig(files.config), { batch: 1, height: 8, width: 8 });
    const model = onnxProto.onnx.ModelProto.decode(lowerToOnnx(g, "t", { precision: "float16", keepFloat32: UNET_FLOAT32_OPS, unfusedAttention: true }).bytes);
    const nodes = model.graph!.node!;
    const producer = new Map(nodes.flatMap((n) => n.output!.map((o) => [o, n] as const)));
    const castTo = (n: onnxProto.onnx.INodeProto | undefined) => (n?.opType === "Cast" ? Number(n.attribute![0].i) : undefined);
    const ofType = (t: string) => nodes.filter((n) => n.opType === t);
    assert.ok(ofType("GroupNormalization").length > 0 && ofType("Softmax").length > 0 && ofType("Sin").length > 0);
    const fp32Inits = new Set(model.graph!.initializer!.filter((i) => i.dataType === T.FLOAT).map((i) => i.name!));
    for (const n of [...ofType("GroupNormalization"), ...ofType("Softmax")]) {
      // activations through a Cast, affine weights as float32 initializers
      for (const i of n.input!) assert.ok(castTo(producer.get(i)) === T.FLOAT || fp32Inits.has(i), `${n.name} input ${i} is not float32`);
      for (const o of n.output!) assert.ok(nodes.some((m) => castTo(m) === T.FLOAT16 && m.input![0] === o), `${n.name} output not cast back`);
    }
    // Sin(timestep · freqs): no float16 on the way from the graph input (a Cast would be one).
    const upstream = (name: string): string[] => {
      const p = producer.get(name);
      return p ? [p.opType!, ...p.input!.flatMap(upstream)] : [name];
    };
    for (const n of [...ofType("Sin"), ...ofType("Cos")]) assert.ok(!upstream(n.input![0]).includes("Cast"), `${n.name}: ${upstream(n.input![0])}`);
    assert.ok(ofType("Sin").some((n) => upstream(n.input![0]).includes("timestep")));
    const freqs = model.graph!.initializer!.filter((i) => i.dataType === T.FLOAT && (i.floatData?.length ?? 0) > 1);
    assert.ok(freqs.length > 0, "the frequency table stays float32");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tiny UNet in float16 on the CPU: the fixture output within half-precision rounding", { skip: NO_FIXTURES }, async () => {
  const dir = tinyUNetFolder();
  try {
    const io = openFixture("unet", "tiny-ssd", "io.safetensors");
    const files = openComponent(dir);
    const config = parseUNetConfig(files.config);
    const [b, , h, w] = io.get("in.sample").shape;
    const model = await compileComponent(files, "unet", "unet fp16", (g, vb) => buildUNetGraph(g, vb, config, { batch: b, height: h, width: w }), unetSession({}, "float16"));
    const out = await model.run({
      sample: io.float32("in.sample"), timestep: io.float32("in.timestep"), encoder_hidden_states: io.float32("in.encoder_hidden_states"),
      text_embeds: io.float32("in.text_embeds"), time_ids: io.float32("in.time_ids"),
    });
    await model.release();
    // Measured 7.3e-4 (fp16 weights and tensors; onnxruntime's CPU computes most ops in float32 between Casts).
    const d = diff(out.sample_out, io.float32("out.sample"));
    assert.ok(d.relL2 > 1e-5 && d.relL2 < 3e-3, `relL2 ${d.relL2}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
