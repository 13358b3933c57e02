/**
 * Segmind's SSD-1B endpoint: `POST /v1/ssd-1b`
 *
 *   { prompt, negative_prompt, samples, scheduler, num_inference_steps, guidance_scale, seed, img_width, img_height, base64,
 *     loras: [{name, weight}] (an extension; <lora:NAME:WEIGHT> prompt tags work too, with --lora-dir),
 *     controlnets: [{name, image, module, scale, start, end, threshold_a, threshold_b}], guess_mode (an extension, with --controlnet-dir),
 *     preset: "fast" (an extension, with --fast: replaces scheduler, num_inference_steps and guidance_scale) }
 *   -> the PNG bytes (image/png; one sample), or with base64: true
 *      { image: "<base64 PNG>", images: [...], seed, seeds, job_id }
 *
 * Segmind's scheduler names "DPM Multi", "DPM Single" and "Karras" map to diffusers' DPMSolverMultistep,
 * DPMSolverSinglestep and DPM++ 2M Karras, "PNDM" to PLMS; the other names are A1111's, with or
 * without the schedule ("DPM2 Karras", "LMS", "DPM++ 2M SDE Karras").
 * `style`, `refiner` and `high_noise_fraction` are accepted and ignored.
 *
 * Segmind's SSD Img2Img: `POST /v1/ssd-img2img` { image: base64 PNG / JPEG (URLs are not fetched), strength
 * (default 0.9), and the fields above but the size } -> the same answers. Segmind names no SSD-1B inpainting
 * route (its inpainting routes serve other models), so there is none here: use /sdapi/v1/img2img with a mask.
 */
import { invalid } from "./errors.js";
import { readJson, sendBytes, sendJson, type Ctx, type Router } from "./http.js";
import { generateForRequest, type AppState } from "./generation.js";
import { DEFAULTS, Fields, checkScheduler, checkStrength, finishSpec, readInitImage, readSeed, readSides } from "./validation.js";
import type { JobSpec } from "./job.js";
import { readLoras } from "./lora-request.js";
import { readControlNetField } from "./controlnet-request.js";
import { FAST_JOB, readPreset } from "./fast-request.js";

const SEGMIND_SCHEDULERS: Record<string, string> = {
  "dpm multi": "DPM++ 2M", "dpm single": "DPMSolverSinglestepScheduler", karras: "DPM++ 2M Karras", pndm: "PLMS",
};

/** Segmind's `scheduler` field: its own names, then A1111's (see checkScheduler). */
function readSegmindScheduler(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  return checkScheduler(SEGMIND_SCHEDULERS[name.trim().replace(/\s+/g, " ").toLowerCase()] ?? name, "scheduler");
}

/**
 * The fields /v1/ssd-1b and /v1/ssd-img2img share, as a spec (sizes and init image left to the route).
 * `binary`: the answer is one PNG unless base64 (v1); v2 answers with URLs, any number of samples.
 */
function segmindSpec(f: Fields, state: AppState, binary: boolean): { spec: JobSpec; base64: boolean } {
  const { limits } = state;
  f.string("style");
  f.bool("refiner");
  f.number("high_noise_fraction", 0, 1);
  const samples = f.int("samples", 1, 1_000_000) ?? 1;
  const base64 = f.bool("base64") ?? false;
  const scheduler = readSegmindScheduler(f.string("scheduler"));
  const fast = readPreset(f, state);
  const steps = f.int("num_inference_steps", 1, limits.maxSteps) ?? DEFAULTS.steps;
  const guidance = f.number("guidance_scale", 0, 100) ?? DEFAULTS.guidanceScale;
  if (binary && !base64 && samples > 1) throw invalid("samples > 1 needs base64: true (the binary answer holds one image)", "invalid_value", "samples");
  const spec: JobSpec = {
    prompt: f.requiredString("prompt", limits.maxPromptChars),
    negativePrompt: f.string("negative_prompt", limits.maxPromptChars),
    // Segmind clients always send these three: the preset replaces them
    steps: fast ? FAST_JOB.steps : steps,
    guidanceScale: fast ? FAST_JOB.guidanceScale : guidance,
    seed: readSeed(f),
    scheduler: fast ? FAST_JOB.scheduler : scheduler,
    batchSize: samples,
    iterations: 1,
    ...(fast ? { preset: "fast" as const } : {}),
  };
  return { spec, base64 };
}

async function answer(ctx: Ctx<AppState>, spec: JobSpec, base64: boolean): Promise<void> {
  const { job, output } = await generateForRequest(ctx, spec);
  if (!base64) {
    sendBytes(ctx.res, 200, output.images[0], "image/png");
    return;
  }
  const images = output.images.map((png) => png.toString("base64"));
  sendJson(ctx.res, 200, { image: images[0], images, seed: spec.seed, seeds: output.seeds, job_id: job.id });
}

/** Segmind's SSD Img2Img default strength (its documented example; the CLI's is 0.3). */
const SEGMIND_IMG2IMG_STRENGTH = 0.9;

/** A checked SSD-1B text-to-image request (Segmind's ssd-1b model). */
export async function readSsd1b(ctx: Ctx<AppState>, binary: boolean): Promise<{ spec: JobSpec; base64: boolean }> {
  const { limits } = ctx.state;
  const f = Fields.of(await readJson(ctx.req, limits.maxBodyBytes));
  const { spec, base64 } = segmindSpec(f, ctx.state, binary);
  Object.assign(spec, readSides(f, limits, "img_width", "img_height"));
  await readLoras(f, finishSpec(spec, limits), ctx.state);
  await readControlNetField(f, spec, ctx.state);
  return { spec, base64 };
}

/** A checked SSD Img2Img request (Segmind's ssd-img2img model). */
export async function readSsdImg2img(ctx: Ctx<AppState>, binary: boolean): Promise<{ spec: JobSpec; base64: boolean }> {
  const { limits } = ctx.state;
  const f = Fields.of(await readJson(ctx.req, limits.maxBodyBytes));
  const image = f.requiredString("image");
  // Segmind takes a URL too; this server fetches nothing from elsewhere
  if (/^\s*https?:\/\//i.test(image)) throw invalid("image must be a base64 PNG or JPEG: this server does not fetch URLs", "invalid_image", "image");
  const { spec, base64 } = segmindSpec(f, ctx.state, binary);
  spec.initImage = readInitImage(image, limits, "image").base64;
  spec.strength = f.number("strength", 0, 1) ?? SEGMIND_IMG2IMG_STRENGTH;
  checkStrength(spec.strength, spec.steps, "strength");
  await readLoras(f, finishSpec(spec, limits), ctx.state);
  await readControlNetField(f, spec, ctx.state);
  return { spec, base64 };
}

export function segmindRoutes(router: Router<AppState>): void {
  router.on("POST", "/v1/ssd-1b", async (ctx) => {
    const { spec, base64 } = await readSsd1b(ctx, true);
    await answer(ctx, spec, base64);
  });

  router.on("POST", "/v1/ssd-img2img", async (ctx) => {
    const { spec, base64 } = await readSsdImg2img(ctx, true);
    await answer(ctx, spec, base64);
  });
}
