import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, assertMaxAbs, fixture, openFixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { ModelSourceError } from "../src/loaders/model-source.js";
import { decodePng } from "../src/image/png.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const tmp = mkdtempSync(join(tmpdir(), "vae-override-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const tinyModel = () => tinyModelIn(tmp);

/** A standalone AutoencoderKL folder: the tiny VAE config (edited by `edit`) with synth weights. */
function vaeFolder(name: string, edit: (c: Record<string, any>) => void = () => {}, dtype: "fp32" | "fp16" = "fp32"): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "vae", "config.json"), "utf8"));
  config._class_name = "AutoencoderKL";
  edit(config);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  synthModel(dir, dtype);
  return dir;
}

const basic = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly, blurry, poor quality", numInferenceSteps: 4, guidanceScale: 5, seed: 0, scheduler: "euler" };

test("vae override: a synth copy of the same tiny VAE gives the same image (the basic case)", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const dir = tinyModel();
  // only fp16 weights in the override folder: the pipeline's variant (fp32) falls back to what is there
  const vae = vaeFolder("vae-copy", () => {}, "fp16");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, { vae, variant: "fp32" });
  try {
    assert.equal(pipe.source.vae.where, vae);
    const out = await pipe.generate(basic);
    const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors");
    // fp16-rounded synth weights: the latents are the same, the decode differs by the weight rounding only
    assertMaxAbs(out.latents.data, ref.float32("basic.latents_after_step3"), 2e-3, "latents");
    const d = assertMaxAbs(out.images.data, ref.float32("basic.images"), 5e-3, "images");
    t.diagnostic(`images (fp16 VAE weights): max|d| ${d.maxAbs.toExponential(2)}`);
  } finally {
    await pipe.release();
  }
  const same = await StableDiffusionXLPipeline.fromPretrained(dir, { vae: vaeFolder("vae-copy-32") });
  try {
    const out = await same.generate(basic);
    const d = assertMaxAbs(out.images.data, openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images"), 2e-3, "images");
    t.diagnostic(`images (fp32 copy): max|d| ${d.maxAbs.toExponential(2)}`);
  } finally {
    await same.release();
  }
});

test("vae override: a VAE with latent_channels 8, a missing folder and a non-VAE fail clearly", { skip: NO_FIXTURES }, async () => {
  const dir = tinyModel();
  const wide = vaeFolder("vae-8ch", (c) => { c.latent_channels = 8; });
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { vae: wide }),
    (e: Error) => e instanceof ModelSourceError && /latent_channels 8/.test(e.message) && /4-channel latents/.test(e.message) && e.message.includes(wide));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { vae: join(tmp, "nowhere") }), /VAE ".*nowhere" not found/);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { vae: join(dir, "unet") }), /config.json describes a UNet2DConditionModel, not an AutoencoderKL/);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { vae: "someone/missing-vae", env: { HF_HOME: join(tmp, "hf") }, hub: { offline: true } }),
    /offline .*someone\/missing-vae@main is not in the cache at .*models--someone--missing-vae/);
});

test("cli --vae DIR: same PNG as without it; a wrong VAE exits with the reason", { skip: NO_FIXTURES, timeout: 300_000 }, () => {
  const dir = tinyModel();
  const run = (extra: string[], out: string) => spawnSync(process.execPath, [CLI, "generate", "--model", dir, "--prompt", basic.prompt, "--negative-prompt", basic.negativePrompt,
    "--steps", "4", "--seed", "0", "--scheduler", "euler", "--output", out, ...extra], { encoding: "utf8" });
  const a = join(tmp, "cli", "a.png"), b = join(tmp, "cli", "b.png");
  const ra = run([], a), rb = run(["--vae", vaeFolder("vae-cli")], b);
  assert.equal(ra.status, 0, ra.stderr);
  assert.equal(rb.status, 0, rb.stderr);
  assert.deepEqual(decodePng(readFileSync(a)).data, decodePng(readFileSync(b)).data);
  const bad = run(["--vae", vaeFolder("vae-8ch-cli", (c) => { c.latent_channels = 8; })], join(tmp, "cli", "c.png"));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /error: the VAE .* has latent_channels 8/);
});
