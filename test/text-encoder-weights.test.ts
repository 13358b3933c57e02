/**
 * PipelineLoadOptions.textEncoderWeights / --text-encoder-weights: the option and flag, the full-size CLIP-L
 * with 8-bit Linear weights against transformers, a text-encoder LoRA under q8 (its deltas run beside the
 * 8-bit product, so every Linear layer stays quantized), and the tiny pipeline against diffusers' images.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { NO_FIXTURES, diff, fixture, openFixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { assertQ8ImagesClose } from "./helpers/q8-images.js";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import type { Graph } from "../src/ir/graph.js";
import { WeightDeltas } from "../src/nn/weight-deltas.js";
import { openComponent, openWeights } from "../src/loaders/component.js";
import { compileChecked } from "../src/loaders/compile.js";
import { createClipTextEncoder } from "../src/loaders/clip-text.js";
import { buildClipTextGraph } from "../src/models/clip/clip-text-model.js";
import { parseClipTextConfig } from "../src/models/clip/config.js";
import { readInt64, saveTensors } from "../src/safetensors/index.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { StableDiffusionXLPipeline, type GenerateOptions } from "../src/pipelines/sdxl/index.js";
import { textEncoderWeights } from "../src/pipelines/sdxl/load-options.js";
import { textEncoderSession } from "../src/pipelines/sessions.js";
import { parseModelLoad } from "../src/cli/commands/generate.js";

const tmp = mkdtempSync(join(tmpdir(), "text-encoder-weights-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const nbits = (g: Graph) => onnxProto.onnx.ModelProto.decode(lowerToOnnx(g, "t", { linearWeights: "q8" }).bytes).graph!.node!.filter((n) => n.opType === "MatMulNBits").length;

test("textEncoderWeights: float or q8, unset stays unset; the --text-encoder-weights flag; the session it makes", () => {
  assert.equal(textEncoderWeights({}), undefined);
  assert.equal(textEncoderWeights({ textEncoderWeights: "q8" }), "q8");
  assert.throws(() => textEncoderWeights({ textEncoderWeights: "int8" as "q8" }), /textEncoderWeights must be float or q8, got "int8"/);
  assert.equal(parseModelLoad({ "text-encoder-weights": "q8" }).textEncoderWeights, "q8");
  assert.equal(parseModelLoad({}).textEncoderWeights, undefined);
  assert.throws(() => parseModelLoad({ "text-encoder-weights": "q4" }), /--text-encoder-weights must be float or q8, got "q4"/);
  assert.equal(parseModelLoad({ "unet-weights": "q8" }).textEncoderWeights, undefined, "the UNet's flag leaves the text encoders as stored");
  assert.deepEqual(textEncoderSession({ device: "cpu" }, "q8"), { device: "cpu", linearWeights: "q8" });
  assert.deepEqual(textEncoderSession({ device: "cpu" }), { device: "cpu" });
  assert.equal(textEncoderSession(undefined), undefined);
});

test("clip-l-synth with q8 Linear weights: all 72 Linear layers 8-bit, outputs within the q8 error of transformers'", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const name = "clip-l-synth";
  const dir = join(tmp, name);
  const manifest: Record<string, number[]> = JSON.parse(readFileSync(fixture("text_encoder", name, "manifest.json"), "utf8"));
  mkdirSync(dir, { recursive: true });
  copyFileSync(fixture("text_encoder", name, "config.json"), join(dir, "config.json"));
  writeSynthFile(join(dir, "model.safetensors"), Object.entries(manifest), "fp32");
  const files = openComponent(dir);
  // 12 layers x (q, k, v, out, fc1, fc2) + nothing else: CLIP-L has no projection.
  assert.equal(nbits(buildClipTextGraph(parseClipTextConfig(files.config, name), openWeights(files)).vb.graph), 72);
  const io = openFixture("text_encoder", name, "io.safetensors");
  const enc = await createClipTextEncoder(dir, { session: { linearWeights: "q8" } });
  try {
    const out = await enc.run(readInt64(io.get("in.input_ids")));
    for (const key of ["last_hidden_state", "penultimate_hidden_state", "pooled"] as const) {
      const d = diff(out[key], io.float32(`out.${key}`));
      t.diagnostic(`${key}: relL2 ${d.relL2.toExponential(2)}`);
      // Measured 9.0e-3 (float32 weights: 6e-7; fp16 files: 7e-4): the q8 rounding, not a wrong kernel.
      assert.ok(d.relL2 > 2e-3 && d.relL2 < 1.5e-2, `${key}: relL2 ${d.relL2}`);
    }
  } finally {
    await enc.release();
  }
});

/** A kohya LoRA on text_encoder's layer 0 q_proj and text_encoder_2's layer 1 fc1 (as lora-pipeline.test.ts makes). */
function textEncoderLora(): string {
  const mat = (rows: number, cols: number, seed: number) => Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(seed + i * 0.37) * 0.2);
  const tensors = {
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { dtype: "F32" as const, shape: [32, 2], data: mat(32, 2, 1) },
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { dtype: "F32" as const, shape: [2, 32], data: mat(2, 32, 2) },
    "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_up.weight": { dtype: "F32" as const, shape: [37, 2], data: mat(37, 2, 3) },
    "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_down.weight": { dtype: "F32" as const, shape: [2, 32], data: mat(2, 32, 4) },
  };
  const file = join(tmp, "te-lora.safetensors");
  saveTensors(file, tensors);
  return file;
}

test("a text-encoder LoRA with q8: its deltas unmerged at compilation, every Linear layer 8-bit, embeddings near float's with the LoRA", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const dir = tinyModelIn(tmp);
  const lora = [{ file: textEncoderLora(), weight: 1 }];
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, { loras: lora });
  const teDeltas = pipe.loras[0].deltas.textEncoder;
  await pipe.release();
  assert.equal(teDeltas.length, 1);

  // compileChecked under q8 rewires the merged weight to its checkpoint leaf (tiny CLIP: 5 layers x q, k, v,
  // out, fc1; fc2's K = 37 is no multiple of 32 and stays float).
  const files = openComponent(join(dir, "text_encoder"));
  const deltas = new WeightDeltas();
  for (const { key, delta } of teDeltas) deltas.add(key, delta);
  const { vb } = buildClipTextGraph(parseClipTextConfig(files.config, "te"), openWeights(files), { deltas });
  assert.equal(nbits(vb.graph), 24, "the merged q_proj is no checkpoint leaf");
  const compiled = await compileChecked(vb, "te", "te q8", { linearWeights: "q8" }, deltas);
  await compiled.release();
  assert.equal(nbits(vb.graph), 25);

  const args = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly" };
  const embeds = async (textEncoderWeights?: "q8", loras?: typeof lora) => {
    const p = await StableDiffusionXLPipeline.fromPretrained(dir, { loras, textEncoderWeights });
    try {
      return await p.encodePrompt(args);
    } finally {
      await p.release();
    }
  };
  const float = await embeds(undefined, lora);
  const q8 = await embeds("q8", lora);
  const q8Plain = await embeds("q8");
  for (const key of ["promptEmbeds", "pooledPromptEmbeds"] as const) {
    const d = diff(q8[key].data, float[key].data);
    const lorasEffect = diff(q8Plain[key].data, float[key].data);
    t.diagnostic(`${key}: q8 with LoRA vs float with LoRA relL2 ${d.relL2.toExponential(2)}; q8 without it ${lorasEffect.relL2.toExponential(2)}`);
    assert.ok(d.relL2 > 1e-5 && d.relL2 < 1.5e-2, `${key}: relL2 ${d.relL2}`);
    assert.ok(lorasEffect.relL2 > 3 * d.relL2, `${key}: the LoRA is applied under q8 (${lorasEffect.relL2} without it)`);
  }
});

test("tiny pipeline with textEncoderWeights q8: diffusers' basic images within the q8 error", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const c = JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "cases.json"), "utf8")).basic;
  const opts: GenerateOptions = { prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler };
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  await assertQ8ImagesClose(t, tinyModelIn(tmp), opts, ref, (textEncoderWeights) => ({ textEncoderWeights }));
});
