/**
 * ControlNetModel (tiny-ssd ControlNets A and B, synth weights) against diffusers 0.27.2's
 * StableDiffusionXLControlNetPipeline fixtures: the module's residuals at step
 * controlnet_residuals_step (module tolerance), then one UNet step with them (pipeline latents
 * tolerance, max|Δ| ≤ 2e-3).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, assertMaxAbs, assertModuleClose, diff, fixture, openFixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { synthComponentFolder } from "./helpers/controlnet-folder.js";
import { forwardComponent } from "../src/cli/commands/forward.js";
import { saveTensors } from "../src/safetensors/index.js";
import { Graph } from "../src/ir/graph.js";
import { WeightBuilder, shapeOnlySource } from "../src/nn/weights.js";
import { buildUNetGraph, parseUNetConfig } from "../src/models/unet/index.js";
import { parseControlNetConfig } from "../src/models/controlnet/index.js";
import { ControlNetRunner, checkControlNetFits } from "../src/pipelines/controlnet-runner.js";
import { guessModeScales, scaleResiduals, sumResiduals, withZeroUnconditionalHalf, type ControlNetResiduals } from "../src/pipelines/controlnet-residuals.js";
import { UNetRunner } from "../src/pipelines/sessions.js";
import { folderComponent } from "../src/loaders/model-source.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { applyGuidance } from "../src/pipelines/guidance.js";
import { createScheduler, parsePythonJson } from "../src/schedulers/index.js";
import { TorchGenerator } from "../src/random/index.js";

const CN = (...p: string[]) => fixture("controlnet", "tiny-ssd", ...p);
const tmp = mkdtempSync(join(tmpdir(), "controlnet-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A component folder under tmp with a fixture config.json and synth weights (as `ssd1b synth DIR`). */
const synthFolder = (name: string, config: string) => synthComponentFolder(join(tmp, name), config);

let dirs: { unet: string; a: string; b: string } | undefined;
function folders() {
  dirs ??= {
    unet: synthFolder("unet", fixture("pipeline", "tiny-ssd", "unet", "config.json")),
    a: synthFolder("controlnet", CN("controlnet", "config.json")),
    b: synthFolder("controlnet-b", CN("controlnet-b", "config.json")),
  };
  return dirs;
}

const cases = NO_FIXTURES ? {} : parsePythonJson(readFileSync(CN("cases.json"), "utf8")) as Record<string, any>;
const store = NO_FIXTURES ? undefined : openFixture("controlnet", "tiny-ssd", "cases.safetensors");
const get = (name: string) => store!.float32(name);
const cat = (...parts: Float32Array[]) => { const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0)); let o = 0; for (const p of parts) { out.set(p, o); o += p.length; } return out; };

let unetRunner: UNetRunner | undefined;
const runners = new Map<string, ControlNetRunner>();
after(async () => { await unetRunner?.release(); for (const r of runners.values()) await r.release(); });
const unet = () => (unetRunner ??= UNetRunner.fromWeights(folderComponent(folders().unet, undefined)));
const controlnet = (which: "a" | "b") => {
  if (!runners.has(which)) runners.set(which, ControlNetRunner.open(folders()[which]));
  return runners.get(which)!;
};

/** Step 0's inputs of a case (used by the forward and runner tests). */
function stepInputs(name: string) {
  const c = cases[name];
  const [h, w] = [c.height / 2, c.width / 2];
  const scheduler = createScheduler(c.scheduler.class, c.scheduler.config);
  scheduler.setTimesteps(c.num_inference_steps);
  const t = scheduler.timesteps[0];
  const latents = get(`${name}.latents_init`);
  return { c, h, w, t, scheduler, latents, ...feedsAt(name, scheduler.scaleModelInput(cat(latents, latents), t), t) };
}

/** The CFG batch [neg, pos] and its conditional half for scaled latents `sample` at timestep t. */
function feedsAt(name: string, sample: Float32Array, t: number) {
  const c = cases[name];
  const timeIds = Float32Array.of(c.height, c.width, 0, 0, c.height, c.width);
  return {
    cfg: {
      sample, timestep: new Float32Array(2).fill(t),
      encoder_hidden_states: cat(get(`${name}.negative_prompt_embeds`), get(`${name}.prompt_embeds`)),
      text_embeds: cat(get(`${name}.negative_pooled_prompt_embeds`), get(`${name}.pooled_prompt_embeds`)),
      time_ids: cat(timeIds, timeIds),
    },
    cond: {
      sample: sample.subarray(sample.length / 2), timestep: Float32Array.of(t),
      encoder_hidden_states: get(`${name}.prompt_embeds`), text_embeds: get(`${name}.pooled_prompt_embeds`), time_ids: timeIds,
    },
  };
}

/** Returns the worst relative L2 error. */
function assertResiduals(r: ControlNetResiduals, name: string): number {
  assert.equal(r.down.length, 9);
  const errs = r.down.map((d, k) => assertModuleClose(d, get(`${name}.controlnet_down_res_${k}`), `${name} down_res_${k}`).relL2);
  errs.push(assertModuleClose(r.mid, get(`${name}.controlnet_mid_res`), `${name} mid_res`).relL2);
  return Math.max(...errs);
}

/** The README's `edges` control image, [1, 3, H, W] in [0, 1]. */
function edgesImage(H: number, W: number): Float32Array {
  const r = Math.floor(Math.min(H, W) / 4);
  const plane = new Float32Array(H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const circle = Math.abs((x - Math.floor(W / 2)) ** 2 + (y - Math.floor(H / 2)) ** 2 - r * r) <= r;
    plane[y * W + x] = y === Math.floor(H / 4) || x === Math.floor((5 * W) / 8) || x === y || circle ? 1 : 0;
  }
  return cat(plane, plane, plane);
}

/**
 * The whole denoising loop of a case as the README describes 0.27.2's pipeline: per step the
 * ControlNet(s) on the CFG batch (guess mode: the conditional half, logspace scales, zeros for the
 * negative half) at scale·keep, the UNet with the summed residuals, guidance, the scheduler step.
 * Residuals are compared at controlnet_residuals_step, latents after every step.
 */
async function runCase(name: string): Promise<string> {
  let worstLatents = 0, worstResidual = 0;
  const c = cases[name];
  const [h, w] = [c.height / 2, c.width / 2];
  const shape = [1, 4, h, w];
  const scheduler = createScheduler(c.scheduler.class, c.scheduler.config);
  scheduler.setTimesteps(c.num_inference_steps);
  assert.deepEqual([...scheduler.timesteps], c.timesteps);
  // The only draw before the loop: latents = randn * init_noise_sigma; Euler's steps draw after it.
  const gen = new TorchGenerator(c.seed);
  const noise = gen.randn(shape);
  let latents = get(`${name}.latents_init`);
  assertMaxAbs(noise.map((v) => v * scheduler.initNoiseSigma), latents, 1e-5, `${name} latents_init`);
  const multi = c.multi_controlnet as boolean;
  const nets = multi ? (["a", "b"] as const) : (["a"] as const);
  const images = multi ? [get(`${name}.control_image_0`), get(`${name}.control_image_1`)] : [get(`${name}.control_image`)];
  if (c.control_images[0].formula === "edges") assert.deepEqual(images[0], edgesImage(c.height, c.width));
  const scales: number[] = multi ? c.controlnet_conditioning_scale : [c.controlnet_conditioning_scale];
  const keep = (i: number, j: number): number => (multi ? c.controlnet_keep_per_step[i][j] : c.controlnet_keep_per_step[i]);
  for (let i = 0; i < c.n_steps_recorded; i++) {
    const t = scheduler.timesteps[i];
    const { cfg, cond } = feedsAt(name, scheduler.scaleModelInput(cat(latents, latents), t), t);
    const parts: ControlNetResiduals[] = [];
    for (const [j, which] of nets.entries()) {
      const scale = scales[j] * keep(i, j);
      parts.push(c.guess_mode
        ? scaleResiduals(await controlnet(which).run(1, h, w, { ...cond, controlnet_cond: images[j] }), guessModeScales(9, scale))
        : scaleResiduals(await controlnet(which).run(2, h, w, { ...cfg, controlnet_cond: cat(images[j], images[j]) }), scale));
    }
    const res = sumResiduals(parts);
    if (i === c.controlnet_residuals_step) worstResidual = assertResiduals(res, name);
    const out = await unet().run(2, h, w, cfg, { residuals: c.guess_mode ? withZeroUnconditionalHalf(res) : res });
    latents = scheduler.step(applyGuidance(out, c.guidance_scale), t, latents, gen, shape);
    worstLatents = Math.max(worstLatents, assertMaxAbs(latents, get(`${name}.latents_after_step${i}`), 2e-3, `${name} latents_after_step${i}`).maxAbs);
  }
  return `residuals: worst rel L2 ${worstResidual.toExponential(2)}; latents: max|d| ${worstLatents.toExponential(2)} over ${c.n_steps_recorded} steps`;
}

const CASE_TITLES: Record<string, string> = {
  single: "scale 1",
  scale05_window: "scale 0.5, control_guidance 0.25-0.75 (keep 0,1,1,0; residuals at step 1)",
  guess_mode: "guess mode: conditional half only, logspace scales, zeros for the negative half",
  multi: "two nets, each with its image and scale, residuals summed",
  dpm_cfg7: "DPM++ 2M Karras, guidance 7",
};
for (const [name, title] of Object.entries(CASE_TITLES)) {
  test(`controlnet ${name} (${title}): residuals and every step's latents match diffusers`, { skip: NO_FIXTURES }, async (t) => { t.diagnostic(await runCase(name)); });
}

test("guess-mode scales are torch.logspace(-1, 0, 10) times the scale", () => {
  const s = guessModeScales(9, 1);
  assert.equal(s.length, 10);
  assert.ok(Math.abs(s[0] - 0.1) < 1e-8 && s[9] === 1 && Math.abs(s[4] - 10 ** (-5 / 9)) < 1e-7);
  assert.ok(Math.abs(guessModeScales(9, 0.5)[9] - 0.5) < 1e-8);
});

test("ssd1b forward on a ControlNet folder writes the unscaled residuals", { skip: NO_FIXTURES }, async () => {
  const inp = stepInputs("single");
  const image = get("single.control_image");
  const file = join(tmp, "cn-in.safetensors");
  const t = (data: Float32Array, shape: number[]) => ({ dtype: "F32" as const, shape, data });
  saveTensors(file, {
    "in.sample": t(inp.cfg.sample, [2, 4, inp.h, inp.w]), "in.timestep": t(inp.cfg.timestep, [2]),
    "in.encoder_hidden_states": t(inp.cfg.encoder_hidden_states, [2, 77, 64]), "in.text_embeds": t(inp.cfg.text_embeds, [2, 32]),
    "in.time_ids": t(inp.cfg.time_ids, [2, 6]), "in.controlnet_cond": t(cat(image, image), [2, 3, 32, 32]),
  });
  const out = await forwardComponent(folders().a, file);
  assert.deepEqual(Object.keys(out).sort(), [...Array.from({ length: 9 }, (_, k) => `out.down_res_${k}`), "out.mid_res"].sort());
  // single runs at scale 1 · keep 1, so the unscaled residuals are the fixture's.
  for (let k = 0; k < 9; k++) assertModuleClose(out[`out.down_res_${k}`].data, get(`single.controlnet_down_res_${k}`), `forward down_res_${k}`);
  assert.deepEqual(out["out.mid_res"].shape, [2, 64, 4, 4]);
});

test("a ControlNet that does not fit the UNet is refused, naming the field", { skip: NO_FIXTURES }, () => {
  const unetConfig = parseUNetConfig(JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "unet", "config.json"), "utf8")));
  const raw = JSON.parse(readFileSync(CN("controlnet", "config.json"), "utf8"));
  checkControlNetFits(parseControlNetConfig(raw), unetConfig);
  checkControlNetFits(parseControlNetConfig(JSON.parse(readFileSync(CN("controlnet-b", "config.json"), "utf8"))), unetConfig);
  const bad: [string, unknown][] = [
    ["cross_attention_dim", 128], ["block_out_channels", [32, 64, 64]], ["addition_time_embed_dim", 16],
    ["projection_class_embeddings_input_dim", 96], ["in_channels", 9],
  ];
  for (const [key, value] of bad) {
    const cfg = parseControlNetConfig({ ...raw, [key]: value });
    assert.throws(() => checkControlNetFits(cfg, unetConfig), (e: Error) => e instanceof PipelineInputError && e.message.includes(key), key);
  }
});

test("controlnet config: its own keys are read, bad ones refused", () => {
  const base = { _class_name: "ControlNetModel", block_out_channels: [32, 64], down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D"], cross_attention_dim: 64, attention_head_dim: 2, norm_num_groups: 32 };
  const c = parseControlNetConfig({ ...base, conditioning_embedding_out_channels: [16, 32, 96, 256], controlnet_conditioning_channel_order: "bgr", global_pool_conditions: true });
  assert.deepEqual(c.conditioningEmbeddingOutChannels, [16, 32, 96, 256]);
  assert.equal(c.channelOrder, "bgr");
  assert.equal(c.globalPoolConditions, true);
  assert.equal(c.encoder.midBlockType, "UNetMidBlock2DCrossAttn");
  assert.throws(() => parseControlNetConfig({ ...base, controlnet_conditioning_channel_order: "rbg" }), /controlnet_conditioning_channel_order/);
  assert.throws(() => parseControlNetConfig({ ...base, mid_block_type: "UNetMidBlock2DSimpleCrossAttn" }), /controlnet config: unsupported mid_block_type/);
});

test("the UNet graph has residual inputs only when asked", { skip: NO_FIXTURES }, () => {
  const config = parseUNetConfig(JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "unet", "config.json"), "utf8")));
  const names = (residuals: boolean) => {
    const g = new Graph();
    buildUNetGraph(g, WeightBuilder.root(g, shapeOnlySource()), config, { batch: 2, height: 16, width: 16 }, { controlnetResiduals: residuals });
    return { inputs: g.inputs.map((t) => (g.leaves.get(t) as { name: string }).name), flops: g.flops() };
  };
  const plain = names(false), withRes = names(true);
  assert.deepEqual(plain.inputs, ["sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"]);
  assert.deepEqual(withRes.inputs.slice(5), [...Array.from({ length: 9 }, (_, k) => `down_block_additional_residual_${k}`), "mid_block_additional_residual"]);
  assert.ok(withRes.flops > plain.flops);
});

test("ControlNetRunner opens a lone .safetensors file (config from its folder or --config) and the fp16 variant", { skip: NO_FIXTURES }, async () => {
  const inp = stepInputs("single");
  const image = get("single.control_image");
  const feeds = { ...inp.cond, controlnet_cond: image };
  const ref = await controlnet("a").run(1, inp.h, inp.w, feeds);
  const file = join(tmp, "lone-controlnet.safetensors");
  copyFileSync(join(folders().a, "diffusion_pytorch_model.safetensors"), file);
  const lone = ControlNetRunner.open(file, { config: folders().a });
  try {
    const out = await lone.run(1, inp.h, inp.w, feeds);
    out.down.forEach((d, k) => assert.deepEqual(d, ref.down[k]));
    assert.deepEqual(out.mid, ref.mid);
  } finally { await lone.release(); }
  assert.throws(() => ControlNetRunner.open(file), /no config\.json/);

  // A repo id in huggingface_hub's cache layout.
  const env = { HF_HUB_CACHE: join(tmp, "hub") };
  const snap = join(tmp, "hub", "models--someone--tiny-controlnet", "snapshots", "abc123");
  mkdirSync(join(tmp, "hub", "models--someone--tiny-controlnet", "refs"), { recursive: true });
  writeFileSync(join(tmp, "hub", "models--someone--tiny-controlnet", "refs", "main"), "abc123");
  cpSync(folders().a, snap, { recursive: true });
  const cached = ControlNetRunner.open("someone/tiny-controlnet", { env });
  try {
    assert.deepEqual((await cached.run(1, inp.h, inp.w, feeds)).mid, ref.mid);
  } finally { await cached.release(); }
  assert.throws(() => ControlNetRunner.open("someone/absent", { env }), /not in the Hugging Face cache/);

  const half = join(tmp, "controlnet-fp16");
  mkdirSync(half, { recursive: true });
  copyFileSync(CN("controlnet", "config.json"), join(half, "config.json"));
  synthModel(half, "fp16");
  const r16 = ControlNetRunner.open(half, { variant: "fp16" });
  try {
    const out = await r16.run(1, inp.h, inp.w, feeds);
    // fp16-rounded weights: close to the fp32 net, not equal.
    out.down.forEach((d, k) => { const e = diff(d, ref.down[k]); assert.ok(e.relL2 < 1e-2 && e.relL2 > 0, `fp16 down_res_${k}: relL2 ${e.relL2}`); });
  } finally { await r16.release(); }
});

test("controlnet_conditioning_channel_order bgr flips the image; global_pool_conditions averages each residual", { skip: NO_FIXTURES }, async () => {
  const inp = stepInputs("single");
  const image = get("single.control_image");
  // A colour image, so the flip matters.
  const colour = image.map((v, i) => (i < 1024 ? v : i < 2048 ? v * 0.5 : 1 - v));
  const flipped = cat(colour.subarray(2048), colour.subarray(1024, 2048), colour.subarray(0, 1024));
  const ref = await controlnet("a").run(1, inp.h, inp.w, { ...inp.cond, controlnet_cond: colour });
  const weights = folderComponent(folders().a, undefined);
  const variant = (extra: Record<string, unknown>) => ControlNetRunner.fromWeights({ ...weights, config: { ...weights.config, ...extra } });
  const bgr = variant({ controlnet_conditioning_channel_order: "bgr" });
  const pooled = variant({ global_pool_conditions: true });
  try {
    const b = await bgr.run(1, inp.h, inp.w, { ...inp.cond, controlnet_cond: flipped });
    b.down.forEach((d, k) => assertModuleClose(d, ref.down[k], `bgr down_res_${k}`));
    const p = await pooled.run(1, inp.h, inp.w, { ...inp.cond, controlnet_cond: colour });
    const means = (x: Float32Array, channels: number) => {
      const hw = x.length / channels;
      return Float32Array.from(x, (_, i) => { const c = Math.floor(i / hw); let s = 0; for (let j = 0; j < hw; j++) s += x[c * hw + j]; return s / hw; });
    };
    const channels = [32, 32, 32, 32, 32, 32, 32, 64, 64];
    p.down.forEach((d, k) => assertModuleClose(d, means(ref.down[k], channels[k]), `pooled down_res_${k}`));
    assertModuleClose(p.mid, means(ref.mid, 64), "pooled mid_res");
  } finally { await bgr.release(); await pooled.release(); }
});
