import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, openFixture, diff, NO_FIXTURES } from "./helpers/fixtures.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { writeSafetensors } from "../src/safetensors/index.js";
import { VaeRunner } from "../src/pipelines/sessions.js";
import { folderComponent } from "../src/loaders/model-source.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { tinyModelIn } from "./helpers/tiny-model.js";

const manifest = () => JSON.parse(readFileSync(fixture("vae", "tiny", "manifest.json"), "utf8")) as Record<string, number[]>;

/** The fixture's tiny VAE as a diffusers folder with synth weights stored as `dtype`. */
function tinyVaeFolder(dtype: "fp32" | "fp16"): string {
  const dir = mkdtempSync(join(tmpdir(), "vae-precision-"));
  copyFileSync(fixture("vae", "tiny", "config.json"), join(dir, "config.json"));
  const file = dtype === "fp16" ? "diffusion_pytorch_model.fp16.safetensors" : "diffusion_pytorch_model.safetensors";
  writeSynthFile(join(dir, file), Object.entries(manifest()), dtype);
  return dir;
}

/**
 * The tiny VAE (fp32 weights) with 1e5 added to decoder.conv_out's bias: beyond float16's range
 * (65504), as the original SDXL VAE's activations are. float32 decodes to large but finite values;
 * in float16 the bias is infinity.
 */
function overflowingVaeFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), "vae-overflow-"));
  copyFileSync(fixture("vae", "tiny", "config.json"), join(dir, "config.json"));
  const specs = Object.entries(manifest()).sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, shape]) => ({ name, shape, dtype: "F32" as const }));
  writeSafetensors(join(dir, "diffusion_pytorch_model.safetensors"), specs, (s) => {
    const data = synthTensor(s.name, s.shape, new Float32Array(s.shape.reduce((a, b) => a * b, 1)));
    return s.name === "decoder.conv_out.bias" ? data.map((v) => v + 1e5) : data;
  });
  return dir;
}

for (const dtype of ["fp32", "fp16"] as const) {
  test(`vae decode in float16 (${dtype} weights) is float32's up to half-precision rounding`, { skip: NO_FIXTURES }, async () => {
    const dir = tinyVaeFolder(dtype);
    const io = openFixture("vae", "tiny", "io.safetensors");
    const [, , h, w] = io.get("in.latent").shape;
    const latent = io.float32("in.latent");
    const variant = dtype === "fp16" ? "fp16" : undefined;
    const full = VaeRunner.fromWeights(folderComponent(dir, variant ?? "fp32"));
    const half = VaeRunner.fromWeights(folderComponent(dir, variant ?? "fp32"), {}, { precision: "float16", onFallback: () => assert.fail("no overflow expected") });
    try {
      const ref = await full.decode(latent, h, w);
      const got = await half.decode(latent, h, w);
      assert.equal(half.decoderPrecision, "float16");
      const d = diff(got, ref);
      // really computed in half precision (not equal), and close to it (fp16 has 11 significant bits)
      assert.ok(d.relL2 > 1e-6 && d.relL2 < 5e-3, `relL2 ${d.relL2}`);
      // and still diffusers' decode: the fixture output
      assert.ok(diff(got, io.float32("out.decoded")).relL2 < 5e-3);
    } finally {
      await full.release();
      await half.release();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("a float16 decode that overflows is done again in float32, which is then kept", { skip: NO_FIXTURES }, async () => {
  const dir = overflowingVaeFolder();
  const io = openFixture("vae", "tiny", "io.safetensors");
  const [, , h, w] = io.get("in.latent").shape;
  const latent = io.float32("in.latent");
  const messages: string[] = [];
  const full = VaeRunner.fromWeights(folderComponent(dir, "fp32"));
  const half = VaeRunner.fromWeights(folderComponent(dir, "fp32"), {}, { precision: "float16", onFallback: (m) => messages.push(m) });
  try {
    const ref = await full.decode(latent, h, w);
    assert.ok(ref.every(Number.isFinite), "float32 decodes these latents");
    const got = await half.decode(latent, h, w);
    assert.equal(messages.length, 1);
    assert.match(messages[0], /float16 overflowed.*float32/);
    assert.equal(half.decoderPrecision, "float32");
    assert.deepEqual(got, ref);
    // the next decode goes straight to float32
    await half.decode(latent, h, w);
    assert.equal(messages.length, 1);
  } finally {
    await full.release();
    await half.release();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("pipeline: vaePrecision float16 gives the basic image within half-precision rounding; bad values are named", { skip: NO_FIXTURES }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "vae-precision-pipe-"));
  const warnings: string[] = [];
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { vaePrecision: "float16", onWarning: (m) => warnings.push(m) });
  try {
    const c = JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "cases.json"), "utf8")).basic;
    const { images } = await pipe.generate({
      prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps,
      guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler, width: c.width, height: c.height,
    });
    const d = diff(images.data, openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images"));
    assert.ok(d.maxAbs < 4e-3, `max |d| ${d.maxAbs}`);
    assert.equal(pipe.vae.decoderPrecision, "float16");
    assert.deepEqual(warnings, []);
    await assert.rejects(
      StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { vaePrecision: "half" as "float16" }),
      /vaePrecision must be float32, float16 or auto, got "half"/,
    );
  } finally {
    await pipe.release();
    rmSync(tmp, { recursive: true, force: true });
  }
});
