/**
 * SDXL's ensemble of expert denoisers: denoisingEnd / denoisingStart split one schedule between two
 * runs, and an SDXL refiner (requires_aesthetics_score, text_encoder_2 alone, aesthetic-score time
 * ids) finishes what a base model started. Checked against the whole run and a step done by hand.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { runCli } from "./helpers/cli.js";
import { generateHires } from "../src/recipes/hires-fix.js";
import { generateRefined, img2imgRefined } from "../src/recipes/refiner.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { tinyRefinerIn, tinyRefinerSingleFile } from "./helpers/tiny-refiner.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { refinerTimeIds } from "../src/pipelines/micro-conditioning.js";
import { relL2 } from "../src/runtime/webgpu-check.js";
import { TorchGenerator } from "../src/random/index.js";

const tmp = mkdtempSync(join(tmpdir(), "refiner-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const EULER = "EulerDiscreteScheduler";
const common = { prompt: "a red cube on a table", negativePrompt: "blurry", width: 32, height: 32, numInferenceSteps: 8, scheduler: EULER, outputType: "latent" as const };

let base: StableDiffusionXLPipeline | undefined, refiner: StableDiffusionXLPipeline | undefined;
const openBase = async () => (base ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-sdxl")));
const openRefiner = async () => (refiner ??= await StableDiffusionXLPipeline.fromPretrained(tinyRefinerIn(tmp)));
after(async () => { await base?.release(); await refiner?.release(); });

const slice = (data: Float32Array, rows: number, width: number, from: number, to: number) => {
  const out = new Float32Array(rows * (to - from));
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * width + from, r * width + to), r * (to - from));
  return out;
};

test("denoisingEnd then denoisingStart on the same model is the whole run (Euler: no state across steps)", { skip: NO_FIXTURES }, async () => {
  const pipe = await openBase();
  const whole = await pipe.generate({ ...common, seed: 5 });
  const first = await pipe.generate({ ...common, seed: 5, denoisingEnd: 0.55 });
  // diffusers keeps the timesteps >= round(1000 - 0.55 * 1000) = 450
  assert.deepEqual(first.timesteps, whole.timesteps.filter((t) => t >= 450));
  assert.ok(first.timesteps.length > 0 && first.timesteps.length < whole.timesteps.length);
  assert.ok(relL2(first.latents.data, whole.latents.data) > 0.01, "the first half's latents are not the end's");
  const second = await pipe.img2img({ ...common, seed: 99, image: first.latents, denoisingStart: 0.55 });
  assert.deepEqual(second.timesteps, whole.timesteps.filter((t) => t < 450));
  assert.ok(relL2(second.latents.data, whole.latents.data) < 1e-6, `split vs whole: relL2 ${relL2(second.latents.data, whole.latents.data)}`);
  // decoded, the split run is the whole run's image
  const a = await pipe.img2img({ ...common, outputType: undefined, seed: 1, image: first.latents, denoisingStart: 0.55 });
  const b = await pipe.generate({ ...common, outputType: undefined, seed: 5 });
  assert.ok(relL2(a.images.data, b.images.data) < 1e-6);
});

test("denoisingStart with a second-order scheduler runs an odd count of evaluations (no step cut in half)", { skip: NO_FIXTURES }, async () => {
  const pipe = await openBase();
  const heun = { ...common, scheduler: "HeunDiscreteScheduler", numInferenceSteps: 6 };
  const first = await pipe.generate({ ...heun, seed: 2, denoisingEnd: 0.5 });
  const second = await pipe.img2img({ ...heun, seed: 2, image: first.latents, denoisingStart: 0.5 });
  const all = pipe.createScheduler("HeunDiscreteScheduler");
  all.setTimesteps(6);
  const below = Array.from(all.timesteps).filter((t) => t < 500).length;
  assert.equal(second.timesteps.length, below % 2 === 0 ? below + 1 : below);
  assert.equal(second.timesteps.length % 2, 1);
  assert.ok(second.latents.data.every(Number.isFinite));
});

test("denoisingEnd / denoisingStart: values outside (0, 1), start >= end and empty windows are input errors", { skip: NO_FIXTURES }, async () => {
  const pipe = await openBase();
  for (const denoisingEnd of [0, 1, 1.5, -0.2, Number.NaN]) {
    await assert.rejects(pipe.generate({ ...common, denoisingEnd }), (e: Error) => e instanceof PipelineInputError && /denoisingEnd must be a fraction in \(0, 1\)/.test(e.message));
  }
  const latents = { data: new Float32Array(256), shape: [1, 4, 8, 8] };
  await assert.rejects(pipe.img2img({ ...common, image: latents, denoisingStart: 1 }), /denoisingStart must be a fraction/);
  await assert.rejects(pipe.img2img({ ...common, image: latents, denoisingStart: 0.8, denoisingEnd: 0.5 }), /denoisingStart 0.8 must be smaller than denoisingEnd 0.5/);
  await assert.rejects(pipe.img2img({ ...common, numInferenceSteps: 4, image: latents, denoisingStart: 0.9999 }), /leaves none of the 4 steps/);
  await assert.rejects(pipe.generate({ ...common, numInferenceSteps: 4, denoisingEnd: 0.0001 }), /ends before the first of the 4 steps/);
});

test("refiner time ids: original size, crop, aesthetic score; the negative row its own crop and score, [negative x B, positive x B]", () => {
  const ids = refinerTimeIds({ originalSize: [64, 48], cropsCoordsTopLeft: [8, 4], negativeCropsCoordsTopLeft: [2, 1], aestheticScore: 7, negativeAestheticScore: 1.5 }, 32, 32, 2, true);
  assert.deepEqual(Array.from(ids), [64, 48, 2, 1, 1.5, 64, 48, 2, 1, 1.5, 64, 48, 8, 4, 7, 64, 48, 8, 4, 7]);
  // defaults: the output size, crop (0, 0), scores 6 and 2.5; without guidance only the positive rows
  assert.deepEqual(Array.from(refinerTimeIds({}, 40, 24, 1, true)), [40, 24, 0, 0, 2.5, 40, 24, 0, 0, 6]);
  assert.deepEqual(Array.from(refinerTimeIds({}, 40, 24, 1, false)), [40, 24, 0, 0, 6]);
  assert.throws(() => refinerTimeIds({ aestheticScore: Number.NaN }, 32, 32, 1, false), /aestheticScore must be a finite number/);
});

test("a refiner is conditioned by text_encoder_2 alone: its embeddings are the base's second half, `prompt` goes to it", { skip: NO_FIXTURES }, async () => {
  const [b, r] = [await openBase(), await openRefiner()];
  assert.equal(r.requiresAestheticsScore, true);
  assert.equal(b.requiresAestheticsScore, false);
  assert.equal(r.promptEncoder.encoders[0], undefined);
  assert.deepEqual(r.promptEncoder.dims, { hidden: 32, pooled: 32, seqLen: 77 });
  const be = await b.encodePrompt({ prompt: "a red cube", negativePrompt: "blurry" });
  // diffusers zips [prompt, prompt_2] with the encoders present: the refiner's lone encoder gets `prompt`
  const re = await r.encodePrompt({ prompt: "a red cube", prompt2: "not used by a refiner", negativePrompt: "blurry", negativePrompt2: "nor this" });
  assert.deepEqual(re.promptEmbeds.shape, [1, 77, 32]);
  assert.deepEqual(Array.from(re.promptEmbeds.data), Array.from(slice(be.promptEmbeds.data, 77, 64, 32, 64)));
  assert.deepEqual(Array.from(re.negativePromptEmbeds!.data), Array.from(slice(be.negativePromptEmbeds!.data, 77, 64, 32, 64)));
  assert.deepEqual(Array.from(re.pooledPromptEmbeds.data), Array.from(be.pooledPromptEmbeds.data));
  // force_zeros_for_empty_prompt is false for refiners: no negative prompt encodes ""
  const rz = await r.encodePrompt({ prompt: "a red cube" });
  const bz = await b.encodePrompt({ prompt: "a red cube", negativePrompt: "" });
  assert.ok(rz.negativePromptEmbeds!.data.some((v) => v !== 0));
  assert.deepEqual(Array.from(rz.negativePromptEmbeds!.data), Array.from(slice(bz.negativePromptEmbeds!.data, 77, 64, 32, 64)));
  await assert.rejects(r.generate({ ...common }), (e: Error) => e instanceof PipelineInputError && /SDXL refiner.*use img2img/.test(e.message));
  await assert.rejects(r.encodePrompt({ prompt: "x", clipSkip: { textEncoder: 1 } }), /no text_encoder/);
});

test("a refiner step equals the step done by hand: aesthetic time ids, [negative, positive] batch, the latents not noised", { skip: NO_FIXTURES }, async () => {
  const r = await openRefiner();
  const steps = 4;
  const s = r.createScheduler(EULER);
  s.setTimesteps(steps);
  const ts = Array.from(s.timesteps);
  // a denoisingStart that leaves exactly the last timestep
  const denoisingStart = (1000 - ts[steps - 2]) / 1000;
  const latents = new TorchGenerator(11).randn([1, 4, 8, 8]);
  const opts = { prompt: "a red cube", negativePrompt: "blurry", numInferenceSteps: steps, scheduler: EULER, guidanceScale: 5, aestheticScore: 7, negativeAestheticScore: 1.5, outputType: "latent" as const };
  const out = await r.img2img({ ...opts, image: { data: latents, shape: [1, 4, 8, 8] }, denoisingStart });
  assert.deepEqual(out.timesteps, [ts[steps - 1]]);

  const e = await r.encodePrompt({ prompt: "a red cube", negativePrompt: "blurry" });
  const sigma = s.sigmas![steps - 1], next = s.sigmas![steps];
  const scaled = latents.map((v) => v / Math.sqrt(sigma * sigma + 1));
  const cat = (a: Float32Array, b: Float32Array) => { const o = new Float32Array(a.length + b.length); o.set(a); o.set(b, a.length); return o; };
  const t = ts[steps - 1], px = 8 * r.vaeScaleFactor;
  const unetOut = await r.unet.run(2, 8, 8, {
    sample: cat(scaled, scaled), timestep: Float32Array.from([t, t]),
    encoder_hidden_states: cat(e.negativePromptEmbeds!.data, e.promptEmbeds.data),
    text_embeds: cat(e.negativePooledPromptEmbeds!.data, e.pooledPromptEmbeds.data),
    time_ids: Float32Array.from([px, px, 0, 0, 1.5, px, px, 0, 0, 7]),
  });
  const n = latents.length;
  const want = latents.map((x, i) => x + (next - sigma) * (unetOut[i] + 5 * (unetOut[n + i] - unetOut[i])));
  assert.ok(relL2(out.latents.data, want) < 1e-5, `pipeline vs by hand: relL2 ${relL2(out.latents.data, want)}`);
  // the aesthetic score is really fed: another one gives other latents
  const other = await r.img2img({ ...opts, aestheticScore: 3, image: { data: latents, shape: [1, 4, 8, 8] }, denoisingStart });
  assert.ok(relL2(other.latents.data, out.latents.data) > 1e-4);
});

test("base + refiner: the base stops at denoisingEnd, the refiner runs the rest of the same schedule and decodes", { skip: NO_FIXTURES }, async () => {
  const [b, r] = [await openBase(), await openRefiner()];
  const first = await b.generate({ ...common, seed: 8, denoisingEnd: 0.7 });
  const out = await r.img2img({ ...common, outputType: undefined, seed: 8, image: first.latents, denoisingStart: 0.7 });
  const whole = b.createScheduler(EULER);
  whole.setTimesteps(8);
  assert.deepEqual([...first.timesteps, ...out.timesteps], Array.from(whole.timesteps));
  assert.deepEqual(out.images.shape, [1, 32, 32, 3]);
  assert.ok(out.images.data.every((v) => v >= 0 && v <= 1));
  // strength on an image also works (diffusers' refiner as a plain img2img)
  const plain = await r.img2img({ ...common, outputType: undefined, seed: 8, image: { data: out.images.data.length ? toChw(out.images.data, 32, 32) : new Float32Array(), shape: [1, 3, 32, 32] }, strength: 0.3 });
  assert.equal(plain.timesteps.length, 2);
});

/** [1, H, W, 3] -> [1, 3, H, W]. */
function toChw(hwc: Float32Array, h: number, w: number): Float32Array {
  const out = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[c * h * w + y * w + x] = hwc[(y * w + x) * 3 + c];
  return out;
}

test("generateRefined / img2imgRefined: the two calls made by hand; a switch step is exactly that many base steps", { skip: NO_FIXTURES }, async () => {
  const [b, r] = [await openBase(), await openRefiner()];
  const opts = { ...common, outputType: undefined, seed: 4 };
  const got = await generateRefined(b, r, opts, { switchAt: 0.6, aestheticScore: 5 });
  const first = await b.generate({ ...opts, denoisingEnd: 0.6, outputType: "latent" });
  const want = await r.img2img({ ...opts, image: first.latents, denoisingStart: 0.6, aestheticScore: 5 });
  assert.deepEqual(Array.from(got.images.data), Array.from(want.images.data));
  assert.deepEqual(got.timesteps, [...first.timesteps, ...want.timesteps]);
  assert.equal(got.seed, 4);
  // ComfyUI's end_at_step 3 of 8 (Euler, leading: 876 751 626 | 501 ...)
  const bySteps = await generateRefined(b, r, opts, { switchStep: 3 });
  assert.deepEqual(bySteps.timesteps, [876, 751, 626, 501, 376, 251, 126, 1]);
  const seen: number[] = [], totals: number[] = [];
  await generateRefined(b, r, { ...opts, onStep: (s) => { seen.push(s.timestep); totals.push(s.totalSteps); } }, { switchStep: 3 });
  assert.deepEqual(seen, bySteps.timesteps);
  assert.deepEqual(totals, [3, 3, 3, 5, 5, 5, 5, 5], "3 base steps, then 5 refiner steps");
  // a strength that starts after the switch leaves the whole img2img to the refiner
  const image = { data: new Float32Array(3 * 32 * 32).fill(0.5), shape: [1, 3, 32, 32] };
  const late = await img2imgRefined(b, r, { ...opts, image, strength: 0.25 }, { switchAt: 0.5 });
  const alone = await r.img2img({ ...opts, image, strength: 0.25 });
  assert.deepEqual(Array.from(late.images.data), Array.from(alone.images.data));
  for (const bad of [{}, { switchAt: 0.5, switchStep: 2 }, { switchAt: 1 }, { switchStep: 0 }, { switchStep: 8 }, { switchStep: 2.5 }]) {
    await assert.rejects(generateRefined(b, r, opts, bad), PipelineInputError);
  }
});

test("ssd1b generate --refiner: the recipe's image, Refiner in the infotext; a switch outside (0, 1) is a usage error", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const [b, r] = [await openBase(), await openRefiner()];
  const out = join(tmp, "refined.png");
  const args = ["generate", "--model", tinyModelIn(tmp, "tiny-sdxl"), "--refiner", tinyRefinerIn(tmp), "--refiner-switch-at", "0.3",
    "--prompt", "a red cube", "--steps", "6", "--width", "32", "--height", "32", "--seed", "3", "--scheduler", EULER, "--output", out];
  const run = runCli(args);
  assert.equal(run.code, 0, run.stderr);
  const want = await generateRefined(b, r, { prompt: "a red cube", numInferenceSteps: 6, width: 32, height: 32, seed: 3, scheduler: EULER }, { switchAt: 0.3 });
  const png = readFileSync(out);
  assert.ok(levelDiff(png, want.images.data) <= 1, `CLI vs library: ${levelDiff(png, want.images.data)} levels`);
  assert.match(png.toString("latin1"), /Refiner: tiny-refiner, Refiner switch at: 0.3/);
  const bad = runCli([...args.slice(0, 5), "--refiner-switch-at", "1", ...args.slice(7)]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--refiner-switch-at must be in \(0, 1\)/);
  // with the hires fix the refiner takes over in the second pass
  const hiresOut = join(tmp, "refined-hires.png");
  const withHires = runCli([...args.slice(0, -1), hiresOut, "--hires-scale", "1.5", "--hires-strength", "0.6"]);
  assert.equal(withHires.code, 0, withHires.stderr);
  const call = { prompt: "a red cube", numInferenceSteps: 6, width: 32, height: 32, seed: 3, scheduler: EULER };
  const wantHires = await generateHires(b, call, { scale: 1.5, strength: 0.6, secondPass: (o) => img2imgRefined(b, r, o, { switchAt: 0.3 }) });
  const hiresPng = readFileSync(hiresOut);
  assert.ok(levelDiff(hiresPng, wantHires.images.data) <= 1, `CLI vs library: ${levelDiff(hiresPng, wantHires.images.data)} levels`);
  assert.match(hiresPng.toString("latin1"), /Hires upscale: 1.5.*Refiner: tiny-refiner, Refiner switch at: 0.3/);
});

test("a refiner single file (sd_xl_refiner_1.0 layout: OpenCLIP alone as embedders.0) is the refiner folder's model", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const r = await openRefiner();
  const file = tinyRefinerSingleFile(tmp);
  const sf = await StableDiffusionXLPipeline.fromPretrained(file, { config: tinyRefinerIn(tmp), env: { HF_HOME: join(tmp, "no-hf"), HF_HUB_CACHE: "", HUGGINGFACE_HUB_CACHE: "" } });
  try {
    assert.equal(sf.requiresAestheticsScore, true);
    assert.equal(sf.source.textEncoder, undefined);
    const [a, b] = [await sf.encodePrompt({ prompt: "a red cube", negativePrompt: "blurry" }), await r.encodePrompt({ prompt: "a red cube", negativePrompt: "blurry" })];
    assert.ok(relL2(a.promptEmbeds.data, b.promptEmbeds.data) < 1e-6 && relL2(a.pooledPromptEmbeds.data, b.pooledPromptEmbeds.data) < 1e-6);
    const latents = { data: new TorchGenerator(3).randn([1, 4, 16, 16]), shape: [1, 4, 16, 16] };
    const opts = { prompt: "a red cube", numInferenceSteps: 6, scheduler: EULER, image: latents, denoisingStart: 0.5, seed: 1 };
    const [x, y] = [await sf.img2img(opts), await r.img2img(opts)];
    assert.ok(relL2(x.images.data, y.images.data) < 1e-6, `single file vs folder: ${relL2(x.images.data, y.images.data)}`);
  } finally {
    await sf.release();
  }
});

test("the SDXL refiner's UNet structure is recognised in a single file (built-in config: 384 channels, 4 blocks per attention)", async () => {
  const { detectArchitecture } = await import("../src/loaders/single-file.js");
  const { builtinConfigs } = await import("../src/loaders/builtin-configs/index.js");
  const { expectedParameters } = await import("../src/models/components.js");
  const { unetPrefixTable } = await import("../src/loaders/sgm-names.js");
  const { parseUNetConfig } = await import("../src/models/unet/config.js");
  const config = builtinConfigs("sdxl-refiner");
  assert.equal(config.textEncoder, undefined);
  const table = unetPrefixTable(parseUNetConfig(config.unet));
  const tensors = new Map([...expectedParameters("unet", config.unet)].map(([k, shape]) => {
    const name = `model.diffusion_model.${table.toSgm(k)!.key}`;
    return [name, { name, shape, dtype: "F32", offset: 0, byteLength: 0, file: "header-only" } as never];
  }));
  assert.equal(detectArchitecture(tensors).architecture, "sdxl-refiner");
  // the built-in config is the refiner's: 2560 = 1280 + 5 x 256, CLIP-G's context
  const unet = parseUNetConfig(config.unet);
  assert.deepEqual([unet.projectionClassEmbeddingsInputDim, unet.crossAttentionDim[0], unet.midTransformerLayers], [2560, 1280, 4]);
});
