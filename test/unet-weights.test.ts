/**
 * PipelineLoadOptions.unetWeights / --unet-weights: the option and flag, LoRA deltas on Linear layers run
 * beside the 8-bit product (unmergeLinearDeltas) so the checkpoint weights are what gets quantized, and the
 * tiny pipeline with a PEFT LoRA and q8 UNet weights against diffusers' images.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { NO_FIXTURES, diff, fixture, openFixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { assertQ8ImagesClose } from "./helpers/q8-images.js";
import { Graph } from "../src/ir/graph.js";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import { unmergeLinearDeltas } from "../src/ir/passes/lora-branch.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { WeightDeltas } from "../src/nn/weight-deltas.js";
import { openComponent, openWeights } from "../src/loaders/component.js";
import { compileComponent } from "../src/loaders/compile.js";
import { buildUNetGraph, parseUNetConfig } from "../src/models/unet/index.js";
import { StableDiffusionXLPipeline, type GenerateOptions } from "../src/pipelines/sdxl/index.js";
import { unetWeights } from "../src/pipelines/sdxl/load-options.js";
import { unetSession } from "../src/pipelines/sessions.js";
import { parseModelLoad } from "../src/cli/commands/generate.js";

const tmp = mkdtempSync(join(tmpdir(), "unet-weights-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("unetWeights: float or q8, unset stays unset; the --unet-weights flag; an explicit value wins over the session's", () => {
  assert.equal(unetWeights({}), undefined);
  assert.equal(unetWeights({ unetWeights: "q8" }), "q8");
  assert.throws(() => unetWeights({ unetWeights: "int8" as "q8" }), /unetWeights must be float or q8, got "int8"/);
  assert.equal(parseModelLoad({ "unet-weights": "q8" }).unetWeights, "q8");
  assert.equal(parseModelLoad({ "unet-weights": "float" }).unetWeights, "float");
  assert.equal(parseModelLoad({}).unetWeights, undefined);
  assert.throws(() => parseModelLoad({ "unet-weights": "q4" }), /--unet-weights must be float or q8, got "q4"/);
  assert.equal(unetSession({}, "float32", "q8").linearWeights, "q8");
  assert.equal(unetSession({ linearWeights: "q8" }, "float32", "float").linearWeights, "float");
  assert.equal(unetSession({ linearWeights: "q8" }, "float32").linearWeights, "q8");
});

/** The PEFT fixture LoRA's UNet deltas as the loader hands them to the weight builder. */
async function peftUNetDeltas(dir: string): Promise<WeightDeltas> {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, { loras: [{ file: fixture("lora", "peft", "lora.safetensors"), weight: 1 }] });
  try {
    const deltas = new WeightDeltas();
    for (const { key, delta } of pipe.loras[0].deltas.unet) deltas.add(key, delta);
    return deltas;
  } finally {
    await pipe.release();
  }
}

test("q8 with a LoRA: its Linear deltas run beside the product, so every Linear layer lowers to MatMulNBits, with the float result of the merged weights", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = tinyModelIn(tmp);
  const files = openComponent(join(dir, "unet"));
  const config = parseUNetConfig(files.config);
  const io = openFixture("unet", "tiny-ssd", "io.safetensors");
  const [b, , h, w] = io.get("in.sample").shape;
  const build = (g: Graph, vb: WeightBuilder) => buildUNetGraph(g, vb, config, { batch: b, height: h, width: w });
  const nbits = (g: Graph) => onnxProto.onnx.ModelProto.decode(lowerToOnnx(g, "t", { linearWeights: "q8" }).bytes).graph!.node!.filter((n) => n.opType === "MatMulNBits").length;

  const plain = new Graph();
  build(plain, WeightBuilder.root(plain, openWeights(files)));
  const layers = nbits(plain);

  const deltas = await peftUNetDeltas(dir);
  const merged = new Graph();
  const vb = WeightBuilder.root(merged, openWeights(files), deltas);
  build(merged, vb);
  const before = nbits(merged);
  const unmerged = unmergeLinearDeltas(merged, vb.mergedDeltas());
  assert.equal(unmerged.length, deltas.size, "every delta of this LoRA is on a Linear weight");
  assert.ok(before < layers, `merged LoRA weights are not checkpoint leaves: ${before} of ${layers} Linear layers quantized`);
  assert.equal(nbits(merged), layers, "after unmerging, all of them");

  // The branch form computes what the merged float weights do (float weights: only rounding apart),
  // and q8 stays within its error of that.
  const feeds = {
    sample: io.float32("in.sample"), timestep: io.float32("in.timestep"), encoder_hidden_states: io.float32("in.encoder_hidden_states"),
    text_embeds: io.float32("in.text_embeds"), time_ids: io.float32("in.time_ids"),
  };
  const run = async (opts: { linearWeights?: "q8" }, branches: boolean) => {
    const ds = await peftUNetDeltas(dir);
    const model = await compileComponent(files, "unet", "unet lora", (g, v) => {
      build(g, v);
      if (branches) unmergeLinearDeltas(g, v.mergedDeltas());
    }, opts, ds);
    try {
      return (await model.run(feeds)).sample_out;
    } finally {
      await model.release();
    }
  };
  const reference = await run({}, false);
  const branchForm = diff(await run({}, true), reference);
  assert.ok(branchForm.relL2 < 1e-5, `float branches against the merged weights: relL2 ${branchForm.relL2}`);
  const q8 = diff(await run({ linearWeights: "q8" }, false), reference);
  assert.ok(q8.relL2 > 1e-4 && q8.relL2 < 6e-3, `q8 with LoRA branches against float merged: relL2 ${q8.relL2}`);
});

test("tiny pipeline with unetWeights q8 and the PEFT LoRA: diffusers' lora_basic images within the q8 error", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const c = JSON.parse(readFileSync(fixture("lora", "peft", "cases.json"), "utf8")).lora_basic;
  const opts: GenerateOptions = { prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler };
  const ref = openFixture("lora", "peft", "cases.safetensors").float32("lora_basic.images");
  await assertQ8ImagesClose(t, tinyModelIn(tmp), opts, ref, (unetWeights) => ({ loras: [{ file: fixture("lora", "peft", "lora.safetensors"), weight: 1 }], unetWeights }));
});
