/**
 * Inpainting split between two models, as diffusers' StableDiffusionXLInpaintPipeline pairs a base
 * (denoising_end) with a refiner (denoising_start, image = the base's latents): the known area is
 * the clean image after the base, taken as it is, re-noised with the refiner's own noise at each of
 * its steps and clean again at its end. Checked against img2img from the same latents (an all-white
 * mask blends nothing), the scheduler's add_noise done by hand, and the recipe against its two calls.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, fixture, levelDiff } from "./helpers/fixtures.js";
import { runCli } from "./helpers/cli.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { tinyRefinerIn } from "./helpers/tiny-refiner.js";
import { gradChecker } from "./helpers/inpaint-inputs.js";
import { StableDiffusionXLPipeline, type InpaintOptions } from "../src/pipelines/sdxl/index.js";
import { img2imgRefined, inpaintRefined } from "../src/recipes/refiner.js";
import { encodePng } from "../src/image/png.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { TorchGenerator } from "../src/random/index.js";
import { synthModel } from "../src/cli/commands/synth.js";
import type { FloatTensor } from "../src/image/image.js";

const tmp = mkdtempSync(join(tmpdir(), "inpaint-refiner-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

let base: StableDiffusionXLPipeline | undefined, refiner: StableDiffusionXLPipeline | undefined;
const openBase = async () => (base ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-sdxl")));
const openRefiner = async () => (refiner ??= await StableDiffusionXLPipeline.fromPretrained(tinyRefinerIn(tmp)));
after(async () => { await base?.release(); await refiner?.release(); });

const S = 32;
const common = { prompt: "a red cube on a table", negativePrompt: "blurry", numInferenceSteps: 8, scheduler: "EulerDiscreteScheduler", outputType: "latent" as const };
/** White (repaint) in the left half of the 32x32 image. */
const leftHalf: FloatTensor = { data: Float32Array.from({ length: S * S }, (_, i) => (i % S < S / 2 ? 1 : 0)), shape: [S, S] };
const allWhite: FloatTensor = { data: new Float32Array(S * S).fill(1), shape: [S, S] };
const image = gradChecker(S, S);

/** The latents' values in the right (kept) or left (repainted) half of each plane. */
function half(latents: FloatTensor, side: "left" | "right"): number[] {
  const out: number[] = [], w = latents.shape[3];
  latents.data.forEach((v, i) => { if ((i % w < w / 2) === (side === "left")) out.push(v); });
  return out;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test("inpaint from latents with denoisingStart and an all-white mask is img2img from them; the noise draw comes first", { skip: NO_FIXTURES }, async () => {
  const pipe = await openBase();
  const first = await pipe.generate({ ...common, width: S, height: S, seed: 4, denoisingEnd: 0.6 });
  const viaImg2img = await pipe.img2img({ ...common, image: first.latents, denoisingStart: 0.6, seed: 9 });
  const viaInpaint = await pipe.inpaint({ ...common, image: first.latents, maskImage: allWhite, denoisingStart: 0.6, seed: 9 });
  assert.deepEqual(viaInpaint.timesteps, viaImg2img.timesteps);
  assert.ok(viaInpaint.timesteps.every((t) => t < 400) && viaInpaint.timesteps.length > 1);
  // a mask of ones keeps every stepped latent exactly: bit-equal to img2img
  assert.deepEqual(Array.from(viaInpaint.latents.data), Array.from(viaImg2img.latents.data));
  // an ancestral sampler shows the order of draws: diffusers' inpaint draws randn(shape) once, then the steps' noise
  const ancestral = { ...common, scheduler: "EulerAncestralDiscreteScheduler" };
  const inpainted = await pipe.inpaint({ ...ancestral, image: first.latents, maskImage: allWhite, denoisingStart: 0.6, seed: 9 });
  const drawnOnce = new TorchGenerator(9);
  drawnOnce.randn(first.latents.shape);
  const img2img = await pipe.img2img({ ...ancestral, image: first.latents, denoisingStart: 0.6, generator: drawnOnce });
  assert.deepEqual(Array.from(inpainted.latents.data), Array.from(img2img.latents.data));
  const notDrawn = await pipe.img2img({ ...ancestral, image: first.latents, denoisingStart: 0.6, seed: 9 });
  assert.ok(maxDiff(notDrawn.latents.data, inpainted.latents.data) > 1e-3, "the ancestral noise depends on the draw before it");
});

test("base to the switch, then inpaint from its latents: the known area is clean after each, re-noised with the second call's noise between", { skip: NO_FIXTURES }, async () => {
  const pipe = await openBase();
  const opts: InpaintOptions = { ...common, image, maskImage: leftHalf, seed: 3 };
  const whole = await pipe.inpaint(opts);
  const first = await pipe.inpaint({ ...opts, denoisingEnd: 0.6 });
  assert.deepEqual(first.timesteps, whole.timesteps.filter((t) => t >= 400));
  // the base's last blend puts the clean image latents (the same encode draws as the whole run's) in the known area
  assert.deepEqual(half(first.latents, "right"), half(whole.latents, "right"));
  assert.ok(maxDiff(half(first.latents, "left"), half(whole.latents, "left")) > 1e-3);

  const steps: Float32Array[] = [];
  const second = await pipe.inpaint({ ...common, image: first.latents, maskImage: leftHalf, denoisingStart: 0.6, seed: 11, onStep: (s) => { steps.push(s.latents); } });
  assert.deepEqual(second.timesteps, whole.timesteps.filter((t) => t < 400));
  assert.deepEqual(half(second.latents, "right"), half(first.latents, "right"), "clean again after the last step");
  assert.ok(maxDiff(half(second.latents, "left"), half(first.latents, "left")) > 1e-3, "the masked area is denoised further");
  // after its first step the known area is the base's latents noised to the next timestep with randn(shape) of the second call's seed
  const noise = new TorchGenerator(11).randn(first.latents.shape);
  const scheduler = pipe.createScheduler("EulerDiscreteScheduler");
  scheduler.setTimesteps(common.numInferenceSteps);
  const expected = scheduler.addNoise(first.latents.data, noise, second.timesteps[1]);
  assert.ok(maxDiff(half({ data: steps[0], shape: first.latents.shape }, "right"), half({ data: expected, shape: first.latents.shape }, "right")) < 1e-6);
});

test("inpaintRefined: the base's inpaint to the switch and the refiner's from its latents; a late strength leaves all to the refiner", { skip: NO_FIXTURES }, async () => {
  const [b, r] = [await openBase(), await openRefiner()];
  const opts: InpaintOptions = { ...common, image, maskImage: leftHalf, seed: 6 };
  let switched = 0;
  const out = await inpaintRefined(b, r, opts, { switchAt: 0.6, onSwitch: async () => { switched++; } });
  assert.equal(switched, 1);
  const first = await b.inpaint({ ...opts, denoisingEnd: 0.6 });
  const second = await r.inpaint({ ...common, seed: 6, image: first.latents, maskImage: leftHalf, denoisingStart: 0.6 });
  assert.deepEqual(Array.from(out.latents.data), Array.from(second.latents.data));
  assert.deepEqual(out.timesteps, [...first.timesteps, ...second.timesteps]);
  assert.equal(out.seed, 6);
  // a switch by step count (of the whole schedule; strength 0.9999 skips its first step): the same timesteps, split elsewhere
  const byStep = await inpaintRefined(b, r, opts, { switchStep: 3 });
  assert.deepEqual(byStep.timesteps, out.timesteps);
  assert.ok(maxDiff(byStep.latents.data, out.latents.data) > 1e-4);
  // strength 0.3 of 8 steps starts below the switch at 0.6: the refiner inpaints the image itself
  const late = await inpaintRefined(b, r, { ...opts, strength: 0.3 }, { switchAt: 0.6 });
  const alone = await r.inpaint({ ...common, seed: 6, image, maskImage: leftHalf, strength: 0.3 });
  assert.deepEqual(Array.from(late.latents.data), Array.from(alone.latents.data));
  // decoded, only the mask's crop is repainted with paddingMaskCrop (8-bit image and mask)
  const mask8 = { width: S, height: S, data: new Uint8Array(S * S * 3) };
  for (let y = 4; y < 12; y++) for (let x = 4; x < 12; x++) mask8.data.fill(255, (y * S + x) * 3, (y * S + x) * 3 + 3);
  const cropped = await inpaintRefined(b, r, { ...opts, outputType: undefined, maskImage: mask8, paddingMaskCrop: 2 }, { switchAt: 0.6 });
  assert.deepEqual(cropped.images.shape, [1, S, S, 3]);
  const px = (x: number, y: number, c: number) => Math.round(cropped.images.data[(y * S + x) * 3 + c] * 255);
  assert.deepEqual([px(30, 30, 0), px(30, 30, 1), px(30, 30, 2)], Array.from(image.data.subarray((30 * S + 30) * 3, (30 * S + 30) * 3 + 3)));
});

test("ssd1b inpaint and img2img --refiner: the recipes' images, Refiner in the infotext", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const [b, r] = [await openBase(), await openRefiner()];
  const mask8 = { width: S, height: S, data: Uint8Array.from({ length: S * S * 3 }, (_, i) => (Math.floor(i / 3) % S < S / 2 ? 255 : 0)) };
  const [initFile, maskFile] = [join(tmp, "init.png"), join(tmp, "mask.png")];
  writeFileSync(initFile, encodePng(image));
  writeFileSync(maskFile, encodePng(mask8));
  const flags = ["--model", tinyModelIn(tmp, "tiny-sdxl"), "--refiner", tinyRefinerIn(tmp), "--refiner-switch-at", "0.6",
    "--prompt", common.prompt, "--negative-prompt", common.negativePrompt, "--steps", "8", "--seed", "3", "--scheduler", "EulerDiscreteScheduler", "--image", initFile];
  const call = { prompt: common.prompt, negativePrompt: common.negativePrompt, numInferenceSteps: 8, seed: 3, scheduler: "EulerDiscreteScheduler", image };
  const inpainted = join(tmp, "inpainted.png");
  const run = runCli(["inpaint", ...flags, "--mask", maskFile, "--output", inpainted]);
  assert.equal(run.code, 0, run.stderr);
  const want = await inpaintRefined(b, r, { ...call, maskImage: mask8 }, { switchAt: 0.6 });
  const png = readFileSync(inpainted);
  assert.ok(levelDiff(png, want.images.data) <= 1, `CLI vs library: ${levelDiff(png, want.images.data)} levels`);
  assert.match(png.toString("latin1"), /Refiner: tiny-refiner, Refiner switch at: 0.6/);
  const plain = await b.inpaint({ ...call, maskImage: mask8 });
  assert.ok(levelDiff(png, plain.images.data) > 1, "the refiner ran");
  const changed = join(tmp, "img2img.png");
  const i2i = runCli(["img2img", ...flags, "--strength", "0.7", "--output", changed]);
  assert.equal(i2i.code, 0, i2i.stderr);
  const wantI2i = await img2imgRefined(b, r, { ...call, strength: 0.7 }, { switchAt: 0.6 });
  assert.ok(levelDiff(readFileSync(changed), wantI2i.images.data) <= 1);
  const bad = runCli(["inpaint", ...flags.slice(0, 4), "--refiner-switch-at", "0", ...flags.slice(6), "--mask", maskFile]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--refiner-switch-at must be in \(0, 1\)/);
});

test("inpainting from latents: what cannot be continued is an input error naming it", { skip: NO_FIXTURES }, async () => {
  const pipe = await openBase();
  const L = S / pipe.vaeScaleFactor;
  const latents: FloatTensor = { data: new Float32Array(4 * L * L), shape: [1, 4, L, L] };
  const wrongSize: FloatTensor = { data: new Float32Array(64 * 64).fill(1), shape: [64, 64] };
  await assert.rejects(pipe.inpaint({ ...common, image: latents, maskImage: wrongSize, denoisingStart: 0.6 }),
    (e: Error) => e instanceof PipelineInputError && /the mask is 64x64 but the init latents are \(x the VAE scale\) 32x32/.test(e.message));
  await assert.rejects(pipe.inpaint({ ...common, image: latents, maskImage: allWhite, denoisingStart: 0.6, latentFill: "noise" }), /latentFill .* with denoisingStart/);
  await assert.rejects(pipe.inpaint({ ...common, image: latents, maskImage: allWhite, denoisingStart: 0.6, denoisingEnd: 0.5 }), /denoisingStart 0.6 must be smaller than denoisingEnd 0.5/);
  await assert.rejects(pipe.inpaint({ ...common, image: latents, maskImage: allWhite, paddingMaskCrop: 4, denoisingStart: 0.6 }), /paddingMaskCrop needs the image and the mask as 8-bit images/);
  // an inpainting UNet needs the masked image, which latents cannot give
  const dir = join(tmp, "tiny-ssd-9ch");
  cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
  cpSync(fixture("inpaint", "tiny-ssd", "unet-9ch", "config.json"), join(dir, "unet", "config.json"));
  synthModel(dir, "fp32");
  const nine = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    await assert.rejects(nine.inpaint({ ...common, image: latents, maskImage: allWhite, denoisingStart: 0.6 }), /an inpainting UNet \(9 input channels\) needs the init image in pixels/);
  } finally {
    await nine.release();
  }
});
