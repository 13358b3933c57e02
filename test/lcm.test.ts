import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, fixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { guidanceScaleEmbedding } from "../src/pipelines/guidance.js";
import type { UNetFeeds } from "../src/pipelines/sessions.js";

const tmp = mkdtempSync(join(tmpdir(), "lcm-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("lcm: the guidance-scale embedding equals get_guidance_scale_embedding worked by hand", () => {
  // w = 0.5 (guidance_scale 1.5), dim 8: half 4, frequencies 10000^(-i/3), arguments 500 · freq; [sin, cos]
  const ref = [-0.46777180532247614, -0.93799335590891, 0.8806428497839695, 0.04997916927067828,
    -0.883849273431478, -0.34665323346355925, 0.4737807205072501, 0.9987502603949663];
  const got = guidanceScaleEmbedding(0.5, 8);
  assert.equal(got.length, 8);
  got.forEach((v, i) => assert.ok(Math.abs(v - ref[i]) < 1e-5, `[${i}] ${v} vs ${ref[i]}`));
  // w = 0: sin 0 = 0, cos 0 = 1; an odd dim is zero-padded
  assert.deepEqual(Array.from(guidanceScaleEmbedding(0, 7)), [0, 0, 0, 1, 1, 1, 0]);
});

test("lcm: a tiny-ssd UNet with time_cond_proj_dim 8 runs 4 LCM steps, one UNet batch, fed timestep_cond", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = join(tmp, "tiny-lcm");
  cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
  const cfgFile = join(dir, "unet", "config.json");
  const cfg = JSON.parse(readFileSync(cfgFile, "utf8"));
  cfg.time_cond_proj_dim = 8;
  // the fixture config lists time_cond_proj_dim in _use_default_values; diffusers would ignore the 8
  cfg._use_default_values = cfg._use_default_values.filter((k: string) => k !== "time_cond_proj_dim");
  writeFileSync(cfgFile, JSON.stringify(cfg));
  synthModel(dir, "fp32");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    assert.equal(pipe.timeCondProjDim, 8);
    const calls: { batch: number; feeds: UNetFeeds }[] = [];
    const run = pipe.unet.run.bind(pipe.unet);
    pipe.unet.run = (batch, h, w, feeds) => { calls.push({ batch, feeds }); return run(batch, h, w, feeds); };
    const args = { prompt: ["a photo of a cat", "a dog"], negativePrompt: ["ugly", "blurry"], numInferenceSteps: 4, seed: 3, scheduler: "LCM", width: 32, height: 32 };
    const out = await pipe.generate({ ...args, guidanceScale: 8.5 });
    assert.equal(out.scheduler.className, "LCMScheduler");
    assert.deepEqual(out.timesteps, [999, 759, 499, 259]);
    assert.equal(calls.length, 4);
    const cond = guidanceScaleEmbedding(7.5, 8);
    for (const { batch, feeds } of calls) {
      assert.equal(batch, 2, "no classifier-free guidance batch doubling");
      assert.equal(feeds.sample.length, 2 * 4 * 16 * 16, "2 images of 4x16x16 latents (VAE scale 2)");
      assert.deepEqual(Array.from(feeds.timestep_cond!), [...cond, ...cond], "timestep_cond = embedding(guidance_scale - 1) per image");
    }
    assert.ok(out.latents.data.every(Number.isFinite));
    assert.deepEqual(out.images.shape, [2, 32, 32, 3]);
    // the negative prompt is not used; the guidance scale reaches the UNet through timestep_cond only
    const noNeg = await pipe.generate({ ...args, negativePrompt: undefined, guidanceScale: 8.5 });
    assert.deepEqual(noNeg.latents.data, out.latents.data);
    const other = await pipe.generate({ ...args, guidanceScale: 1.5 });
    assert.notDeepEqual(other.latents.data, out.latents.data);
    // encode_prompt runs without negatives for an LCM UNet
    const lastCall = calls[calls.length - 1];
    assert.equal(lastCall.feeds.encoder_hidden_states.length, 2 * 77 * 64);
  } finally {
    await pipe.release();
  }
});
