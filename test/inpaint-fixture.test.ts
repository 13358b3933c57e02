import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAVE_FIXTURES, NO_FIXTURES, assertMaxAbs, diff, fixture, openFixture } from "./helpers/fixtures.js";
import type { RgbImage } from "../src/image/png.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline, type InpaintOptions } from "../src/pipelines/sdxl/index.js";
import { binarizeMask, maskLatents } from "../src/pipelines/sdxl/inpaint.js";
import { createScheduler, parsePythonJson } from "../src/schedulers/index.js";
import type { Pair } from "../src/pipelines/micro-conditioning.js";
import type { FloatTensor } from "../src/image/image.js";

/** Pipeline latents and images: the fixtures README's tolerance (README-inpaint-controlnet.md). */
const TOL = 2e-3;

interface InpaintCase {
  prompt: string;
  negative_prompt: string | null;
  num_inference_steps: number;
  guidance_scale: number;
  seed: number;
  strength: number;
  height: number;
  width: number;
  num_images_per_prompt: number;
  original_size: Pair | null;
  crops_coords_top_left: Pair;
  target_size: Pair | null;
  padding_mask_crop: number | null;
  unet_in_channels: number;
  n_steps_recorded: number;
  timesteps: number[];
  scheduler: { class: string; config: Record<string, unknown> };
  mask_image: { kind: string; y0: number; y1: number; x0: number; x1: number; blurred_with: string | null };
}

const tmpDirs: string[] = [];
after(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

/** tiny-ssd with synth weights; `unet9ch` swaps in the 9-channel inpainting UNet config. */
function tinyModel(unet9ch: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), "tiny-ssd-inpaint-"));
  tmpDirs.push(dir);
  cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
  if (unet9ch) cpSync(fixture("inpaint", "tiny-ssd", "unet-9ch", "config.json"), join(dir, "unet", "config.json"));
  synthModel(dir, "fp32");
  return dir;
}

const cases: Record<string, InpaintCase> = HAVE_FIXTURES ? parsePythonJson(readFileSync(fixture("inpaint", "tiny-ssd", "cases.json"), "utf8")) as Record<string, InpaintCase> : {};
const pipes = new Map<boolean, Promise<StableDiffusionXLPipeline>>();
const open = (nine: boolean) => {
  if (!pipes.has(nine)) pipes.set(nine, StableDiffusionXLPipeline.fromPretrained(tinyModel(nine)));
  return pipes.get(nine)!;
};
after(async () => { for (const p of pipes.values()) await (await p).release(); });

/** The case's arguments as inpaint options, with the stored init image and mask (uint8 / 255). */
export function inpaintCaseOptions(name: string, c: InpaintCase): InpaintOptions {
  const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
  const tensor = (key: string): FloatTensor => ({ data: ref.float32(`${name}.${key}`), shape: [...ref.get(`${name}.${key}`).shape] });
  return {
    prompt: c.prompt, negativePrompt: c.negative_prompt ?? undefined, numInferenceSteps: c.num_inference_steps,
    guidanceScale: c.guidance_scale, seed: c.seed, strength: c.strength, numImagesPerPrompt: c.num_images_per_prompt,
    originalSize: c.original_size ?? undefined, cropsCoordsTopLeft: c.crops_coords_top_left, targetSize: c.target_size ?? undefined,
    scheduler: createScheduler(c.scheduler.class, c.scheduler.config),
    image: tensor("init_image"), maskImage: tensor("mask"),
  };
}

for (const [name, c] of Object.entries(cases)) {
  if (c.padding_mask_crop !== null) continue; // 8-bit inputs and output: the test below
  test(`inpaint tiny-ssd/${name}: mask latents, latents after every step and images match diffusers`, { skip: NO_FIXTURES }, async (t) => {
    const pipe = await open(c.unet_in_channels === 9);
    const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
    const opts = inpaintCaseOptions(name, c);
    // the mask as the loop uses it: binarized, then nearest-downsampled to the latents
    const init = { tensor: opts.image as FloatTensor, given: "image" as const, height: c.height, width: c.width };
    const mask = binarizeMask(opts.maskImage, init);
    assert.deepEqual(Array.from(mask.data), Array.from(ref.float32(`${name}.mask_preprocessed`)), "binarized mask");
    const lat = maskLatents(mask, 2).data;
    const refLat = ref.float32(`${name}.mask_latents`);
    assert.deepEqual(Array.from(lat), Array.from(refLat.subarray(0, lat.length)), "mask latents");
    const steps: Float32Array[] = [];
    const out = await pipe.inpaint({ ...opts, onStep: ({ latents }) => { steps.push(latents); } });
    assert.deepEqual(out.timesteps, c.timesteps);
    assert.equal(steps.length, c.n_steps_recorded);
    for (let i = 0; i < steps.length; i++) {
      const d = assertMaxAbs(steps[i], ref.float32(`${name}.latents_after_step${i}`), TOL, `latents after step ${i}`);
      t.diagnostic(`step ${i}: max|d| ${d.maxAbs.toExponential(2)}`);
    }
    assert.deepEqual(out.images.shape, [...ref.get(`${name}.images`).shape]);
    const d = assertMaxAbs(out.images.data, ref.float32(`${name}.images`), TOL, "images");
    t.diagnostic(`images: max|d| ${d.maxAbs.toExponential(2)}`);
    if (c.unet_in_channels === 4) {
      // outside the mask the final latents are the image latents (the blend keeps them exactly)
      const imageLatents = ref.float32(`${name}.image_latents`);
      const plane = lat.length, per = 4 * plane;
      for (let b = 0; b < out.latents.shape[0]; b++) {
        for (let ch = 0; ch < 4; ch++) for (let i = 0; i < plane; i++) {
          if (lat[i] === 0) assert.ok(Math.abs(out.latents.data[b * per + ch * plane + i] - imageLatents[(b * per + ch * plane + i) % imageLatents.length]) <= 1e-3);
        }
      }
    }
  });
}

test("inpaint: bad masks and strengths are clear errors before any work", { skip: NO_FIXTURES }, async () => {
  const pipe = await open(false);
  const [name, c] = Object.entries(cases).find(([, c]) => c.unet_in_channels === 4)!;
  const opts = inpaintCaseOptions(name, c);
  const black: FloatTensor = { data: new Float32Array(32 * 32), shape: [1, 1, 32, 32] };
  await assert.rejects(pipe.inpaint({ ...opts, maskImage: black }), /all black: nothing to repaint/);
  await assert.rejects(pipe.inpaint({ ...opts, maskImage: { data: new Float32Array(16 * 32).fill(1), shape: [16, 32] } }), /mask is 32x16 but the image is 32x32/);
  await assert.rejects(pipe.inpaint({ ...opts, strength: 0 }), /strength must be in \(0, 1\]/);
  await assert.rejects(pipe.inpaint({ ...opts, strength: 1.5 }), /strength must be in \(0, 1\]/);
  await assert.rejects(pipe.inpaint({ ...opts, maskImage: { data: new Float32Array(32 * 32).fill(2), shape: [32, 32] } }), /mask values must be in \[0, 1\]/);
  await assert.rejects(pipe.inpaint({ ...opts, maskImage: { data: new Float32Array(3 * 32 * 32), shape: [3, 32, 32] } }), /float mask must be/);
});

test("inpaint tiny-ssd/padding_mask_crop: the crop's latents after every step, and the pasted-back image, match diffusers", { skip: NO_FIXTURES }, async (t) => {
  const name = "padding_mask_crop", c = cases[name];
  const pipe = await open(false);
  const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
  const opts = inpaintCaseOptions(name, c);
  // PIL images, as diffusers requires for padding_mask_crop
  const rgb = (tensor: FloatTensor): RgbImage => {
    const [, ch, h, w] = tensor.shape;
    const data = new Uint8Array(h * w * 3);
    for (let p = 0; p < h * w; p++) for (let k = 0; k < 3; k++) data[3 * p + k] = Math.round(tensor.data[(ch === 1 ? 0 : k) * h * w + p] * 255);
    return { width: w, height: h, data };
  };
  const image = rgb(opts.image as FloatTensor), maskImage = rgb(opts.maskImage as FloatTensor);
  const steps: Float32Array[] = [];
  const out = await pipe.inpaint({ ...opts, image, maskImage, paddingMaskCrop: c.padding_mask_crop!, onStep: ({ latents }) => { steps.push(latents); } });
  for (let i = 0; i < steps.length; i++) assertMaxAbs(steps[i], ref.float32(`${name}.latents_after_step${i}`), TOL, `latents after step ${i}`);
  const d = diff(out.images.data, ref.float32(`${name}.images`));
  t.diagnostic(`images (8-bit): max|d| ${(d.maxAbs * 255).toFixed(2)} levels`);
  assert.ok(d.maxAbs <= 1 / 255 + 1e-6, `${d.maxAbs * 255} levels`);
  // outside the mask: the original pixels exactly
  const init = opts.image as FloatTensor, m = opts.maskImage as FloatTensor;
  for (let p = 0; p < 32 * 32; p++) if (m.data[p] === 0) for (let k = 0; k < 3; k++) assert.equal(Math.round(out.images.data[p * 3 + k] * 255), Math.round(init.data[k * 1024 + p] * 255));
  await assert.rejects(pipe.inpaint({ ...opts, paddingMaskCrop: 8 }), /paddingMaskCrop needs the image and the mask as 8-bit images/);
});
