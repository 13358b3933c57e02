/**
 * LCM against diffusers 0.27.2 (fixtures lcm/tiny-ssd): the tiny-ssd UNet with time_cond_proj_dim 256
 * (cond_proj, fed timestep_cond), the guidance-scale embedding, the LCM step, and two 4-step
 * StableDiffusionXLPipeline runs (guidance 8 and 1.5: no CFG batch, the scale embedded), through the
 * library and the CLI. Also how a config listing time_cond_proj_dim in _use_default_values is read.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAVE_FIXTURES, NO_FIXTURES, PROJECT_ROOT, assertMaxAbs, assertModuleClose, diff, fixture, levelDiff, openFixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { parseUNetConfig, buildUNetGraph } from "../src/models/unet/index.js";
import { TimestepEmbedding, timestepEmbedding } from "../src/models/unet/embeddings.js";
import { expectedParameters } from "../src/models/components.js";
import { openComponent } from "../src/loaders/component.js";
import { compileComponent } from "../src/loaders/compile.js";
import { guidanceScaleEmbedding } from "../src/pipelines/guidance.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import type { UNetFeeds } from "../src/pipelines/sessions.js";
import { createScheduler } from "../src/schedulers/index.js";
import { saveTensors, TensorStore } from "../src/safetensors/index.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
/** Pipeline latents and images: the fixtures README's tolerance. */
const TOL = 2e-3;
/**
 * timestep_cond: sin/cos of arguments up to 7000 rad, where 1 ulp of a float32 frequency moves the
 * result by ~4e-4 (torch's float32 exp is 1 ulp off for some frequencies); the README's bound is ~1e-3.
 */
const COND_TOL = 1e-3;
const LCM = ["lcm", "tiny-ssd"];

const tmp = mkdtempSync(join(tmpdir(), "lcm-fixture-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** pipeline/tiny-ssd with the LCM UNet config, synth weights (made once). */
function lcmModel(): string {
  const dir = join(tmp, "tiny-ssd-lcm");
  if (!existsSync(join(dir, "unet", "diffusion_pytorch_model.safetensors"))) {
    cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
    copyFileSync(fixture(...LCM, "unet", "config.json"), join(dir, "unet", "config.json"));
    synthModel(dir, "fp32");
  }
  return dir;
}

const fmt = (d: { maxAbs: number; relL2?: number }) => `max|d| ${d.maxAbs.toExponential(2)}${d.relL2 === undefined ? "" : `, relL2 ${d.relL2.toExponential(2)}`}`;

test("lcm config: time_cond_proj_dim is read as diffusers' from_config reads it (_use_default_values wins)", { skip: NO_FIXTURES }, () => {
  const lcm = JSON.parse(readFileSync(fixture(...LCM, "unet", "config.json"), "utf8"));
  assert.equal(parseUNetConfig(lcm).timeCondProjDim, 256);
  assert.deepEqual(expectedParameters("unet", lcm).get("time_embedding.cond_proj.weight"), [32, 256]);
  // pipeline/tiny-ssd's config lists time_cond_proj_dim in _use_default_values: 0.27.2's extract_init_dict
  // drops the listed keys, values and all, so a 256 written next to it gives a plain UNet.
  const plain = JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "unet", "config.json"), "utf8"));
  assert.ok(plain._use_default_values.includes("time_cond_proj_dim"));
  const listed = { ...plain, time_cond_proj_dim: 256 };
  assert.equal(parseUNetConfig(listed).timeCondProjDim, null);
  assert.equal(expectedParameters("unet", listed).has("time_embedding.cond_proj.weight"), false);
  const unlisted = { ...listed, _use_default_values: plain._use_default_values.filter((k: string) => k !== "time_cond_proj_dim") };
  assert.equal(parseUNetConfig(unlisted).timeCondProjDim, 256);
  // every other key the file lists holds the class default, so the rest of the UNet is unchanged
  const { timeCondProjDim: _a, ...rest } = parseUNetConfig(listed);
  const { timeCondProjDim: _b, ...restLcm } = parseUNetConfig(lcm);
  assert.deepEqual(rest, restLcm);
  // the LCM UNet has the plain one's tensors plus cond_proj
  const plainKeys = [...expectedParameters("unet", plain).keys()];
  assert.deepEqual([...expectedParameters("unet", lcm).keys()].filter((k) => !plainKeys.includes(k)), ["time_embedding.cond_proj.weight"]);
});

test("lcm: the guidance-scale embedding equals get_guidance_scale_embedding's timestep_cond", { skip: NO_FIXTURES }, (t) => {
  const io = openFixture(...LCM, "io.safetensors");
  const w = io.float32("in.guidance_w");
  const ref = io.float32("in.timestep_cond");
  assert.deepEqual(Array.from(w), [7, 0.5]);
  for (let b = 0; b < 2; b++) {
    const d = assertMaxAbs(guidanceScaleEmbedding(w[b], 256), ref.subarray(b * 256, (b + 1) * 256), COND_TOL, `timestep_cond w=${w[b]}`);
    t.diagnostic(`w=${w[b]}: ${fmt(d)}`);
  }
});

test("lcm unet: time embedding, block outputs and out.sample with timestep_cond match diffusers", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const io = openFixture(...LCM, "io.safetensors");
  const files = openComponent(join(lcmModel(), "unet"));
  const config = parseUNetConfig(files.config);
  const [b, , h, w] = io.get("in.sample").shape;
  const feeds = {
    sample: io.float32("in.sample"), timestep: io.float32("in.timestep"), encoder_hidden_states: io.float32("in.encoder_hidden_states"),
    text_embeds: io.float32("in.text_embeds"), time_ids: io.float32("in.time_ids"), timestep_cond: io.float32("in.timestep_cond"),
  };
  const unet = await compileComponent(files, "unet", "lcm unet", (g, vb) => buildUNetGraph(g, vb, config, { batch: b, height: h, width: w }, true));
  try {
    const out = await unet.run(feeds);
    for (const key of [...io.tensors.keys()].filter((k) => k.startsWith("act.") && k !== "act.time_embedding")) {
      const d = assertModuleClose(out[key.slice(4)], io.float32(key), key);
      t.diagnostic(`${key}: ${fmt(d)}`);
    }
    const d = assertModuleClose(out.sample_out, io.float32("out.sample"), "out.sample");
    t.diagnostic(`out.sample: ${fmt(d)}`);
  } finally {
    await unet.release();
  }
  // time_embedding alone: cond_proj(timestep_cond) is added to the 32-wide sinusoid, before linear_1
  const te = await compileComponent(files, "unet", "lcm time embedding", (g, vb) => {
    const emb = new TimestepEmbedding(vb.pp("time_embedding"), 32, 128, 256);
    const sinusoid = timestepEmbedding(g.input("timestep", [b]), 32, config.flipSinToCos, config.freqShift);
    g.output("time_embedding", emb.forward(sinusoid, g.input("timestep_cond", [b, 256])));
  });
  try {
    const out = await te.run({ timestep: feeds.timestep, timestep_cond: feeds.timestep_cond });
    const d = assertModuleClose(out.time_embedding, io.float32("act.time_embedding"), "act.time_embedding");
    t.diagnostic(`act.time_embedding: ${fmt(d)}`);
  } finally {
    await te.release();
  }
});

test("cli forward: an LCM UNet folder with and without in.timestep_cond gives diffusers' out.sample", { skip: NO_FIXTURES, timeout: 300_000 }, (t) => {
  const io = openFixture(...LCM, "io.safetensors");
  const unetDir = join(lcmModel(), "unet");
  const keys = ["in.sample", "in.timestep", "in.encoder_hidden_states", "in.text_embeds", "in.time_ids"];
  const run = (name: string, withCond: boolean) => {
    const inputs = join(tmp, `${name}-in.safetensors`), output = join(tmp, `${name}-out.safetensors`);
    const tensors = Object.fromEntries([...keys, ...(withCond ? ["in.timestep_cond"] : [])]
      .map((k) => [k, { dtype: "F32" as const, shape: io.get(k).shape, data: io.float32(k) }]));
    saveTensors(inputs, tensors);
    const r = spawnSync(process.execPath, [CLI, "forward", unetDir, "--inputs", inputs, "--output", output], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return TensorStore.open(output).float32("out.sample");
  };
  const withCond = run("cond", true);
  const d = assertModuleClose(withCond, io.float32("out.sample"), "forward out.sample");
  t.diagnostic(`with timestep_cond: ${fmt(d)}`);
  const without = run("nocond", false);
  const e = assertModuleClose(without, io.float32("out.sample_no_timestep_cond"), "forward out.sample_no_timestep_cond");
  t.diagnostic(`without timestep_cond: ${fmt(e)}`);
  assert.ok(diff(without, withCond).maxAbs > 0.01, "timestep_cond changes the output");
});

const CASES: Record<string, { guidance_scale: number; seed: number; num_inference_steps: number; width: number; height: number; prompt: string; timesteps: number[] }> =
  HAVE_FIXTURES ? JSON.parse(readFileSync(fixture(...LCM, "cases.json"), "utf8")) : {};

test("lcm scheduler: one step from diffusers' latents, UNet output and step noise gives its next latents", { skip: NO_FIXTURES }, (t) => {
  const ref = openFixture(...LCM, "cases.safetensors");
  for (const name of Object.keys(CASES)) {
    const scheduler = createScheduler("LCM", JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "scheduler", "scheduler_config.json"), "utf8")));
    scheduler.setTimesteps(4);
    assert.deepEqual(Array.from(scheduler.timesteps), Array.from(ref.float32(`${name}.timesteps`)));
    let x = ref.float32(`${name}.latents_init`);
    for (let i = 0; i < 4; i++) {
      const noise = i < 3 ? ref.float32(`${name}.step_noise${i}`) : undefined;
      const generator = { randn: () => { assert.ok(noise, `no draw at the last step`); return noise!; } };
      const next = scheduler.step(ref.float32(`${name}.noise_pred_step${i}`), scheduler.timesteps[i], x, generator, [1, 4, 16, 16]);
      const expected = ref.float32(`${name}.latents_after_step${i}`);
      // relative to the latents' size: they reach |x| ~ 69 with synth weights
      const d = assertMaxAbs(next, expected, 1e-5 * Math.max(...expected.map(Math.abs)), `${name} step ${i}`);
      t.diagnostic(`${name} step ${i}: ${fmt(d)}`);
      x = expected;
    }
  }
});

for (const [name, c] of Object.entries(CASES)) {
  test(`lcm pipeline ${name}: one UNet batch, timestep_cond, UNet outputs, latents after every step and images match diffusers`, { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
    const ref = openFixture(...LCM, "cases.safetensors");
    const pipe = await StableDiffusionXLPipeline.fromPretrained(lcmModel());
    try {
      assert.equal(pipe.timeCondProjDim, 256);
      const calls: { batch: number; feeds: UNetFeeds; out: Float32Array }[] = [];
      const run = pipe.unet.run.bind(pipe.unet);
      pipe.unet.run = async (batch, h, w, feeds) => {
        const out = await run(batch, h, w, feeds);
        calls.push({ batch, feeds, out });
        return out;
      };
      const steps: Float32Array[] = [];
      const out = await pipe.generate({
        prompt: c.prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed,
        scheduler: "LCM", width: c.width, height: c.height, onStep: ({ latents }) => { steps.push(latents); },
      });
      assert.equal(out.scheduler.className, "LCMScheduler");
      assert.deepEqual(out.timesteps, c.timesteps);
      assert.equal(calls.length, 4);
      const cond = ref.float32(`${name}.timestep_cond`);
      calls.forEach(({ batch, feeds, out: eps }, i) => {
        assert.equal(batch, 1, "no classifier-free guidance batch");
        assertModuleClose(feeds.encoder_hidden_states, ref.float32(`${name}.prompt_embeds`), "prompt_embeds");
        assertModuleClose(feeds.text_embeds, ref.float32(`${name}.pooled_prompt_embeds`), "pooled_prompt_embeds");
        assert.deepEqual(Array.from(feeds.time_ids), Array.from(ref.float32(`${name}.time_ids`)));
        const dc = assertMaxAbs(feeds.timestep_cond!, cond, COND_TOL, `${name} timestep_cond`);
        const de = assertMaxAbs(eps, ref.float32(`${name}.noise_pred_step${i}`), TOL, `${name} noise_pred step ${i}`);
        if (i === 0) t.diagnostic(`timestep_cond: ${fmt(dc)}`);
        t.diagnostic(`noise_pred step ${i}: ${fmt(de)}`);
      });
      assert.equal(steps.length, 4);
      steps.forEach((lat, i) => {
        const d = assertMaxAbs(lat, ref.float32(`${name}.latents_after_step${i}`), TOL, `${name} latents after step ${i}`);
        t.diagnostic(`latents after step ${i}: ${fmt(d)} (max|ref| ${d.maxRef.toFixed(1)})`);
      });
      assert.deepEqual(out.images.shape, ref.get(`${name}.images`).shape);
      const d = assertMaxAbs(out.images.data, ref.float32(`${name}.images`), TOL, `${name} images`);
      t.diagnostic(`images: ${fmt(d)}`);
    } finally {
      await pipe.release();
    }
  });
}

test("cli generate --scheduler LCM: the guidance8 PNG is diffusers' image", { skip: NO_FIXTURES, timeout: 300_000 }, (t) => {
  const c = CASES.guidance8;
  const png = join(tmp, "cli", "lcm.png");
  mkdirSync(join(tmp, "cli"), { recursive: true });
  const r = spawnSync(process.execPath, [CLI, "generate", "--model", lcmModel(), "--prompt", c.prompt, "--steps", String(c.num_inference_steps),
    "--guidance", String(c.guidance_scale), "--seed", String(c.seed), "--scheduler", "LCM", "--width", String(c.width), "--height", String(c.height),
    "--output", png], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const levels = levelDiff(readFileSync(png), openFixture(...LCM, "cases.safetensors").float32("guidance8.images"));
  t.diagnostic(`PNG vs diffusers: ${levels.toFixed(3)} levels of 255`);
  assert.ok(levels <= 1, `PNG vs diffusers: ${levels} levels`);
});
