/**
 * Base + refiner, diffusers' "ensemble of expert denoisers" (A1111's Refiner, ComfyUI's SDXL example
 * workflow): the base model runs the noisy start of the schedule and stops (denoisingEnd), a second
 * model (an SDXL refiner, or any SDXL-family model) continues from its latents with the same number
 * of steps (img2img with denoisingStart) and decodes.
 *
 *   const out = await generateRefined(base, refiner, { prompt, seed: 1, numInferenceSteps: 40 }, { switchAt: 0.8 });
 *
 * The switch is a fraction of the noise schedule (A1111's refiner_switch_at, diffusers' denoising_end:
 * the base runs the timesteps t >= round(1000 - 1000·switchAt), which is where A1111's default
 * "switch by timestep" hands over too), or a step count (ComfyUI's end_at_step / start_at_step).
 * As in diffusers, the refiner's scheduler starts afresh: a multistep solver (DPM++ 2M) restarts its
 * history at the switch, where A1111 keeps it. The refiner draws its noise (ancestral samplers only)
 * from the same seeds, and runs without the base's LoRAs and ControlNets.
 */
import { DEFAULT_STEPS } from "../pipelines/sdxl/prepare.js";
import type { StableDiffusionXLPipeline, GenerateOptions, Img2ImgOptions, InpaintOptions, PipelineOutput } from "../pipelines/sdxl/index.js";
import { cropAroundMask, overlayCrop } from "../pipelines/sdxl/mask-crop.js";
import { PipelineInputError } from "../pipelines/errors.js";
import { createScheduler, denoisingEndTimesteps, img2imgTimesteps, type Scheduler } from "../schedulers/index.js";

export interface RefinerSwitch {
  /** The fraction of the noise schedule the base runs, in (0, 1) (A1111's default 0.8). */
  switchAt?: number;
  /** Instead: the number of steps the base runs (ComfyUI's end_at_step), from 1 to steps - 1. */
  switchStep?: number;
  /** The refiner's aesthetic-score conditioning (SDXL refiners only; defaults 6 and 2.5). */
  aestheticScore?: number;
  negativeAestheticScore?: number;
  /** Called between the passes (a server frees the base's UNet session there). */
  onSwitch?: () => Promise<void>;
}

/** Text to image: the base from noise to the switch, the refiner from there to the image. */
export async function generateRefined(base: StableDiffusionXLPipeline, refiner: StableDiffusionXLPipeline, opts: GenerateOptions, r: RefinerSwitch): Promise<PipelineOutput> {
  const at = switchFraction(base, opts, r);
  const baseSteps = stepsBefore(base, opts, at);
  if (baseSteps === 0) throw new PipelineInputError(`refiner switch ${at} comes before the first of the ${steps(opts)} steps; raise it`);
  if (baseSteps === "all") return base.generate(opts);
  const first = await base.generate({ ...opts, denoisingEnd: at, outputType: "latent" });
  return finish(refiner, opts, first, at, r);
}

/**
 * Image to image: the base runs the part of its strength's schedule before the switch, the refiner
 * the rest; a strength that starts after the switch leaves the whole run to the refiner.
 */
export async function img2imgRefined(base: StableDiffusionXLPipeline, refiner: StableDiffusionXLPipeline, opts: Img2ImgOptions, r: RefinerSwitch): Promise<PipelineOutput> {
  const at = switchFraction(base, opts, r);
  const baseSteps = stepsBefore(base, opts, at, opts.strength ?? 0.3);
  if (baseSteps === "all") return base.img2img(opts);
  if (baseSteps === 0) return refiner.img2img({ ...refinerCall(opts, r), image: opts.image, strength: opts.strength });
  const first = await base.img2img({ ...opts, denoisingEnd: at, outputType: "latent" });
  return finish(refiner, opts, first, at, r);
}

/**
 * Inpainting, as diffusers' inpaint pipelines pair up: the base inpaints to the switch (its known
 * area blended back, clean after its last step), the refiner inpaints from those latents with the
 * same mask (denoisingStart), re-noising the known area at each of its steps. A strength that starts
 * after the switch leaves the whole run to the refiner. paddingMaskCrop crops once around both passes.
 */
export async function inpaintRefined(base: StableDiffusionXLPipeline, refiner: StableDiffusionXLPipeline, opts: InpaintOptions, r: RefinerSwitch): Promise<PipelineOutput> {
  if (opts.paddingMaskCrop !== undefined) {
    const c = cropAroundMask(opts.image, opts.maskImage, opts.paddingMaskCrop);
    const out = await inpaintRefined(base, refiner, { ...opts, paddingMaskCrop: undefined, image: c.image, maskImage: c.mask }, r);
    return opts.outputType === "latent" ? out : { ...out, images: overlayCrop(c, out.images) };
  }
  const at = switchFraction(base, opts, r);
  const baseSteps = stepsBefore(base, opts, at, opts.strength ?? 0.9999);
  if (baseSteps === "all") return base.inpaint(opts);
  const { maskImage } = opts;
  if (baseSteps === 0) return refiner.inpaint({ ...refinerCall(opts, r), image: opts.image, maskImage, strength: opts.strength, latentFill: opts.latentFill });
  const first = await base.inpaint({ ...opts, denoisingEnd: at, outputType: "latent" });
  await r.onSwitch?.();
  return joined(first, await refiner.inpaint({ ...refinerCall(opts, r), image: first.latents, maskImage, denoisingStart: at, promptEditingFirstCall: first.timesteps.length }));
}

const steps = (opts: GenerateOptions | Img2ImgOptions) => opts.numInferenceSteps ?? DEFAULT_STEPS;

/** The refiner's pass from the base's latents; the output lists both passes' timesteps and the base's seed. */
async function finish(refiner: StableDiffusionXLPipeline, opts: GenerateOptions | Img2ImgOptions, first: PipelineOutput, at: number, r: RefinerSwitch): Promise<PipelineOutput> {
  await r.onSwitch?.();
  // A1111's refiner takes over within one sampler run: prompt editing counts on from the base's calls
  return joined(first, await refiner.img2img({ ...refinerCall(opts, r), image: first.latents, denoisingStart: at, promptEditingFirstCall: first.timesteps.length }));
}

/** The refiner's output listing both passes' timesteps, with the base's seed. */
function joined(first: PipelineOutput, out: PipelineOutput): PipelineOutput {
  return { ...out, timesteps: [...first.timesteps, ...out.timesteps], seed: first.seed, ...(first.seeds ? { seeds: first.seeds } : {}) };
}

/** The call's options for the refiner: its own scheduler of the same kind, none of the base-only inputs. */
function refinerCall(opts: GenerateOptions | Img2ImgOptions | InpaintOptions, r: RefinerSwitch): Omit<Img2ImgOptions, "image"> {
  const call: Record<string, unknown> = { ...opts };
  for (const key of BASE_ONLY) delete call[key];
  const scheduler = typeof opts.scheduler === "object" ? fresh(opts.scheduler) : opts.scheduler;
  return { ...(call as Omit<Img2ImgOptions, "image">), scheduler, aestheticScore: r.aestheticScore, negativeAestheticScore: r.negativeAestheticScore };
}

/**
 * What only the base's call takes: its size, initial latents or image (and inpainting's mask, crop and fill), ControlNets, its own window,
 * FreeU and PAG (patches of the base's UNet, as diffusers' enable_freeu / PAG pipeline for the base and ComfyUI's nodes on the base's MODEL).
 */
const BASE_ONLY = ["width", "height", "latents", "image", "maskImage", "paddingMaskCrop", "latentFill", "strength", "controlnets", "guessMode", "denoisingStart", "denoisingEnd", "freeu", "pagScale", "pagAdaptiveScale", "pagAppliedLayers"] as const;

function fresh(s: Scheduler): Scheduler { return createScheduler(s.className, s.config as Record<string, unknown>); }

/** The timesteps the base will run (after the strength's cut for img2img), on a scratch scheduler. */
function baseSchedule(base: StableDiffusionXLPipeline, opts: GenerateOptions, strength?: number): { scheduler: Scheduler; timesteps: number[] } {
  const s = typeof opts.scheduler === "object" ? fresh(opts.scheduler) : base.createScheduler(opts.scheduler);
  s.setTimesteps(steps(opts));
  return { scheduler: s, timesteps: strength === undefined ? Array.from(s.timesteps) : Array.from(img2imgTimesteps(s, steps(opts), strength).timesteps) };
}

/** switchAt as given, or the fraction whose cutoff falls between the base's step switchStep - 1 and switchStep. */
function switchFraction(base: StableDiffusionXLPipeline, opts: GenerateOptions, r: RefinerSwitch): number {
  if ((r.switchAt === undefined) === (r.switchStep === undefined)) throw new PipelineInputError("give the refiner switch as one of switchAt (a fraction) and switchStep (a step count)");
  if (r.switchAt !== undefined) {
    if (!(r.switchAt > 0 && r.switchAt < 1)) throw new PipelineInputError(`the refiner switch must be a fraction in (0, 1), got ${r.switchAt}`);
    return r.switchAt;
  }
  const k = r.switchStep!, n = steps(opts);
  if (!Number.isInteger(k) || k < 1 || k >= n) throw new PipelineInputError(`the refiner switch step must be a whole number from 1 to ${n - 1} (of ${n} steps), got ${k}`);
  const { scheduler, timesteps } = baseSchedule(base, opts);
  const unique = [...new Set(timesteps)];
  // the integer cutoff c with t[k] < c <= t[k-1]: the base keeps t >= c (k steps), the refiner t < c
  const cutoff = Math.floor(unique[k]) + 1;
  if (!(cutoff <= unique[k - 1])) throw new PipelineInputError(`this schedule's timesteps ${unique[k - 1]} and ${unique[k]} are too close to switch models between them; switch at another step`);
  const T = scheduler.config.num_train_timesteps;
  return (T - cutoff) / T;
}

/** How many of the base's steps come before the switch: 0, some, or "all" (then no refiner runs). */
function stepsBefore(base: StableDiffusionXLPipeline, opts: GenerateOptions, at: number, strength?: number): number | "all" {
  const { scheduler, timesteps } = baseSchedule(base, opts, strength);
  const kept = denoisingEndTimesteps(scheduler, timesteps, at).length;
  return kept === timesteps.length ? "all" : kept;
}
