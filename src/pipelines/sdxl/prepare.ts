/**
 * The steps before the loop, as diffusers' pipelines order them: check the call, build the scheduler
 * and the generator, encode the prompts, then the initial latents: randn for text-to-image, the noised
 * VAE encode of the init image for image-to-image (inpainting adds its mask in inpaint.ts).
 */
import { randomInt } from "node:crypto";
import { PerImageGenerator, TorchGenerator } from "../../random/index.js";
import { variationNoise } from "../../random/variation-noise.js";
import { seedResizedNoise } from "../../random/seed-resize.js";
import { denoisingEndTimesteps, img2imgTimesteps, type NoiseGenerator, type Scheduler } from "../../schedulers/index.js";
import { isRgbImage, rgbToTensor, type FloatTensor } from "../../image/image.js";
import type { RgbImage } from "../../image/png.js";
import { encodeInitImage } from "../vae-io.js";
import type { PromptEmbeddings } from "../prompt-encoding.js";
import { PipelineInputError } from "../errors.js";
import { checkPipelineLimits } from "../limits.js";
import { UNetConditioning } from "./conditioning.js";
import { checkUnits } from "./controlnet.js";
import type { SdxlComponents } from "./components.js";
import type { CommonOptions } from "./options.js";
import { checkFreeU, type FreeUOptions } from "../freeu.js";
import { checkPag, type PagSettings } from "../pag.js";
import { embedsAt, encodeEdited, type ScheduledEmbeddings } from "./prompt-editing.js";
import { expandComposable, firstBlockNegatives } from "./composable.js";

/** diffusers' num_inference_steps default. */
export const DEFAULT_STEPS = 50;

/** What every entry point has once the call is checked and the prompts are encoded. */
export interface Prepared {
  scheduler: Scheduler;
  generator: NoiseGenerator;
  seed?: number | bigint;
  seeds?: (number | bigint)[];
  steps: number;
  /** Classifier-free guidance: the [negative, positive] UNet batch (never for LCM UNets). */
  guidance: boolean;
  guidanceScale: number;
  embeds: PromptEmbeddings;
  /** A1111's AND: the weights of the k positive blocks (`embeds` then holds k·batch positive rows, block by block). */
  composable?: number[];
  /** A1111's prompt editing: the embeddings of each part of the run (`embeds` is the first's). */
  embedsSchedule?: ScheduledEmbeddings[];
  /** Images in the batch (prompts x images per prompt). */
  batch: number;
  /** A1111 variation seeds, one per image, and their strength (absent: none). */
  variation?: { seeds: (number | bigint)[]; strength: number };
  /** A1111's tiling: the UNet and VAE with circular conv padding. */
  tiling?: boolean;
  /** FreeU, checked (absent: off, or values diffusers runs as off). */
  freeu?: Required<FreeUOptions>;
  /** Perturbed-attention guidance, checked (absent: off): the perturbed block after the others. */
  pag?: PagSettings;
  /** A1111's resize seed from: the latent size each image's seed noise is drawn at, with the image seeds. */
  seedResize?: { height: number; width: number; seeds: (number | bigint)[] };
}

/** Checks the shared arguments, builds the scheduler and the generator, encodes the prompts. */
export async function prepare(c: SdxlComponents, opts: CommonOptions, createScheduler: (name?: string) => Scheduler): Promise<Prepared> {
  if (opts.fastDecode) c.requireTaesd("fastDecode");
  if (opts.controlnets) checkUnits(opts.controlnets);
  const freeu = checkFreeU(opts.freeu);
  const pag = checkPag(opts, c.unet.config, opts.guessMode === true && !!opts.controlnets?.length);
  const steps = opts.numInferenceSteps ?? DEFAULT_STEPS;
  if (!Number.isInteger(steps) || steps < 1) throw new PipelineInputError(`the number of steps must be a positive integer, got ${steps}`);
  const prompts = Array.isArray(opts.prompt) ? opts.prompt.length : 1;
  checkPipelineLimits({ steps, images: prompts * (opts.numImagesPerPrompt ?? 1) });
  const guidanceScale = opts.guidanceScale ?? 5;
  if (!Number.isFinite(guidanceScale)) throw new PipelineInputError(`guidance scale must be a number, got ${guidanceScale}`);
  const rescale = opts.guidanceRescale ?? 0;
  if (!(rescale >= 0 && rescale <= 1)) throw new PipelineInputError(`guidance rescale must be in [0, 1], got ${rescale}`);
  const scheduler = typeof opts.scheduler === "object" ? opts.scheduler : createScheduler(opts.scheduler);
  const { generator, seed, seeds } = makeGenerator(opts);
  // diffusers: do_classifier_free_guidance = guidance_scale > 1 and time_cond_proj_dim is None
  const guidance = guidanceScale > 1 && !c.unet.config.timeCondProjDim;
  opts.signal?.throwIfAborted();
  // A1111's AND: k positive blocks against one negative
  const composed = expandComposable(opts, opts.promptSyntax ?? c.promptEncoder.promptSyntax);
  if (composed) checkComposable(opts, guidance, pag);
  const edited = await encodeEdited(c.promptEncoder, { ...(composed?.opts ?? opts), doClassifierFreeGuidance: guidance }, steps, opts.promptEditingBaseSteps);
  const firstNegatives = composed && firstBlockNegatives(composed.weights.length);
  const embeds = firstNegatives ? firstNegatives(edited.embeds) : edited.embeds;
  const schedule = firstNegatives ? edited.schedule?.map((e) => ({ endAt: e.endAt, embeds: firstNegatives(e.embeds) })) : edited.schedule;
  await c.afterEncode();
  const batch = embeds.promptEmbeds.shape[0] / (composed?.weights.length ?? 1);
  if (generator instanceof PerImageGenerator && generator.generators.length !== batch) {
    throw new PipelineInputError(`${generator.generators.length} generators (or seeds) were passed for ${batch} images; pass one per image`);
  }
  return { scheduler, generator, seed, seeds, steps, guidance, guidanceScale, embeds, batch, variation: variationOf(opts, batch), tiling: opts.tiling === true, ...(freeu ? { freeu } : {}), ...(pag ? { pag } : {}), ...(schedule ? { embedsSchedule: schedule } : {}), ...(composed ? { composable: composed.weights } : {}), seedResize: seedResizeOf(c, opts, seed, seeds, batch) };
}

function variationOf(opts: CommonOptions, batch: number): Prepared["variation"] {
  const strength = opts.variationStrength ?? 0;
  if (!(strength >= 0 && strength <= 1)) throw new PipelineInputError(`variationStrength must be in [0, 1], got ${strength}`);
  if (strength === 0) return undefined;
  const s = opts.variationSeed;
  if (s === undefined) throw new PipelineInputError("variationStrength needs a variationSeed");
  if (Array.isArray(s)) {
    if (s.length !== batch) throw new PipelineInputError(`${s.length} variation seeds for ${batch} images; pass one per image`);
    return { seeds: [...s], strength };
  }
  const one = s as number | bigint;
  return { seeds: Array.from({ length: batch }, (_, i) => (typeof one === "bigint" ? one + BigInt(i) : one + i)), strength };
}

/** seedResizeFrom in pixels -> the latent size (A1111: pixels // 8, here // the VAE factor) and each image's seed. */
function seedResizeOf(c: SdxlComponents, opts: CommonOptions, seed: number | bigint | undefined, seeds: (number | bigint)[] | undefined, batch: number): Prepared["seedResize"] {
  const r = opts.seedResizeFrom;
  if (!r) return undefined;
  if (!(Number.isInteger(r.width) && Number.isInteger(r.height) && r.width > 0 && r.height > 0)) throw new PipelineInputError(`seedResizeFrom must be positive whole numbers, got ${r.width}x${r.height}`);
  const f = c.vaeScaleFactor;
  if (r.width < f || r.height < f) throw new PipelineInputError(`seedResizeFrom ${r.width}x${r.height} is smaller than one latent pixel (${f})`);
  // the other-size noise is drawn from each image's own seed: one generator per image, or one image
  const perImage = seeds ?? (seed !== undefined && batch === 1 ? [seed] : undefined);
  if (!perImage) throw new PipelineInputError("seedResizeFrom needs `seeds` (one per image) or one image with `seed`");
  return { height: Math.floor(r.height / f), width: Math.floor(r.width / f), seeds: perImage };
}

/**
 * The initial noise randn(shape) from the generator, slerped towards the variation seeds' noise if
 * asked; with seedResize, the seeds' noise at the other size centred in it (seed-resize.ts).
 */
export function initialNoise(p: Prepared, shape: number[]): Float32Array {
  const noise = p.generator.randn(shape);
  if (p.seedResize) return seedResizedNoise(noise, shape, p.seedResize.seeds, p.seedResize, p.variation);
  return p.variation ? variationNoise(noise, shape, p.variation.seeds, p.variation.strength) : noise;
}

/** The UNet conditioning of a prepared call with its time ids (`embeds`: another part of a prompt-edited run's). */
export function conditioningOf(c: SdxlComponents, p: Prepared, opts: CommonOptions, timeIds: Float32Array, embeds = p.embeds): UNetConditioning {
  return UNetConditioning.of(embeds, timeIds, {
    guidance: p.guidance, guidanceScale: p.guidanceScale, guidanceRescale: opts.guidanceRescale ?? 0,
    timeCondProjDim: c.unet.config.timeCondProjDim, ...(p.pag ? { pag: { scale: p.pag.scale, adaptiveScale: p.pag.adaptiveScale } } : {}),
    ...(p.composable ? { composable: p.composable } : {}),
  });
}

/** Positive blocks after the first in the UNet batch: PAG's perturbed one, A1111's AND sub-prompts. */
export function extraPositiveBlocks(p: Prepared): number {
  return (p.pag ? 1 : 0) + (p.composable ? p.composable.length - 1 : 0);
}

/** What A1111's AND is not combined with here. */
function checkComposable(opts: CommonOptions, guidance: boolean, pag: PagSettings | undefined): void {
  if (!guidance) throw new PipelineInputError("AND (composable prompts) needs classifier-free guidance: a guidance scale above 1 and a UNet without LCM's guidance embedding");
  if (pag) throw new PipelineInputError("AND (composable prompts) is not combined with PAG here");
  if ((opts.guidanceRescale ?? 0) > 0) throw new PipelineInputError("AND (composable prompts) is not combined with guidance rescale here (A1111 has none)");
  if (opts.guessMode && opts.controlnets?.length) throw new PipelineInputError("AND (composable prompts) is not combined with ControlNet's guess mode here");
}

/** With prompt editing, the conditioning of model call i (A1111's step counter); undefined without. */
export function conditioningScheduleOf(c: SdxlComponents, p: Prepared, opts: CommonOptions, timeIds: Float32Array): ((call: number) => UNetConditioning) | undefined {
  const schedule = p.embedsSchedule;
  if (!schedule) return undefined;
  const made = new Map<PromptEmbeddings, UNetConditioning>();
  const first = opts.promptEditingFirstCall ?? 0;
  return (call) => {
    const { embeds } = embedsAt(schedule, first + call);
    let cond = made.get(embeds);
    if (!cond) made.set(embeds, cond = conditioningOf(c, p, opts, timeIds, embeds));
    return cond;
  };
}

/** Width and height: positive multiples of the VAE factor (at least 8) within the pipeline limits. */
export function checkSize(c: SdxlComponents, width: number, height: number, what = "the image"): void {
  for (const [name, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new PipelineInputError(`${what} ${name} must be a positive integer, got ${v}`);
    checkPipelineLimits({ [name]: v }, { [name]: `${what} ${name}` });
    const m = Math.max(8, c.vaeScaleFactor);
    if (v % m !== 0) throw new PipelineInputError(`${what} ${name} ${v} is not a multiple of ${m} (try ${Math.max(m, Math.round(v / m) * m)})`);
  }
}

/** Text-to-image: randn([B, C, h, w]) (or the given latents) times init_noise_sigma, from the first timestep. */
export function txt2imgLatents(p: Prepared, shape: number[], given?: Float32Array): Float32Array {
  const n = shape.reduce((x, y) => x * y, 1);
  if (given && given.length !== n) throw new PipelineInputError(`latents have ${given.length} values, expected [${shape}]`);
  setTimesteps(p.scheduler, p.steps);
  const sigma = Math.fround(p.scheduler.initNoiseSigma);
  p.scheduler.setBeginIndex(0);
  return (given ?? initialNoise(p, shape)).map((v) => v * sigma);
}

/** An init image as [M, 3, H, W] floats in [0, 1], or init latents [M, C, h, w], checked. */
export interface InitInput { tensor: FloatTensor; given: "image" | "latents"; height: number; width: number }

export function initInput(c: SdxlComponents, image: FloatTensor | RgbImage): InitInput {
  const tensor = isRgbImage(image) ? rgbToTensor(image) : image;
  const ch = c.vae.config.latentChannels, f = c.vaeScaleFactor;
  const given = tensor.shape.length === 4 && tensor.shape[1] === ch && ch !== 3 ? "latents" : "image";
  if (given === "image" && (tensor.shape.length !== 4 || tensor.shape[1] !== 3)) throw new PipelineInputError(`the init image must be [M, 3, H, W] (or latents [M, ${ch}, h, w]), got [${tensor.shape}]`);
  const [height, width] = given === "latents" ? [tensor.shape[2] * f, tensor.shape[3] * f] : [tensor.shape[2], tensor.shape[3]];
  if (tensor.data.length !== tensor.shape.reduce((x, y) => x * y, 1)) throw new PipelineInputError(`the init ${given} hold ${tensor.data.length} values, expected [${tensor.shape}]`);
  checkSize(c, width, height, given === "latents" ? "the init latents (x VAE scale)" : "the init image");
  return { tensor, given, height, width };
}

/** strength in (0, 1] (or denoisingStart in (0, 1)) and the timesteps it leaves (get_timesteps), at least one. */
export function strengthTimesteps(p: Prepared, strength: number, denoisingStart?: number): number[] {
  if (!(strength > 0 && strength <= 1)) throw new PipelineInputError(`strength must be in (0, 1], got ${strength}`);
  if (denoisingStart !== undefined) checkDenoisingFraction("denoisingStart", denoisingStart);
  setTimesteps(p.scheduler, p.steps);
  const { timesteps } = img2imgTimesteps(p.scheduler, p.steps, strength, denoisingStart);
  if (timesteps.length === 0) {
    throw new PipelineInputError(denoisingStart === undefined
      ? `strength ${strength} x ${p.steps} steps leaves no denoising step; raise the steps or the strength`
      : `denoisingStart ${denoisingStart} leaves none of the ${p.steps} steps' timesteps to run; lower it or raise the steps`);
  }
  return Array.from(timesteps);
}

/** denoising_start / denoising_end: a fraction strictly between 0 and 1. */
export function checkDenoisingFraction(name: string, v: number): void {
  if (!(typeof v === "number" && v > 0 && v < 1)) throw new PipelineInputError(`${name} must be a fraction in (0, 1), got ${v}`);
}

/**
 * denoising_end: the timesteps cut where that fraction of the schedule is done (after
 * denoisingStart when both are given, which must then be smaller), at least one.
 */
export function denoisingEndCut(p: Prepared, timesteps: number[], denoisingEnd: number | undefined, denoisingStart?: number): number[] {
  if (denoisingEnd === undefined) return timesteps;
  checkDenoisingFraction("denoisingEnd", denoisingEnd);
  if (denoisingStart !== undefined && denoisingStart >= denoisingEnd) {
    throw new PipelineInputError(`denoisingStart ${denoisingStart} must be smaller than denoisingEnd ${denoisingEnd}`);
  }
  const kept = denoisingEndTimesteps(p.scheduler, timesteps, denoisingEnd);
  if (kept.length === 0) throw new PipelineInputError(`denoisingEnd ${denoisingEnd} ends before the first of the ${p.steps} steps; raise it or the steps`);
  return kept;
}

/**
 * The init image's latents for the batch: VAE posterior samples (drawn first, as diffusers does; with
 * one generator per image the init images are tiled to the batch and sampled each on its own), or
 * given latents tiled.
 */
export async function imageLatents(c: SdxlComponents, p: Prepared, init: InitInput): Promise<FloatTensor> {
  const m = init.tensor.shape[0];
  if (p.batch % m !== 0) throw new PipelineInputError(`${m} init images cannot be spread over ${p.batch} images`);
  if (init.given === "latents") return tileImages(init.tensor, p.batch);
  const perImage = p.generator instanceof PerImageGenerator && m < p.batch;
  return encodeInitImage(c.vae, perImage ? tileImages(init.tensor, p.batch) : init.tensor, p.batch, p.generator, p.tiling);
}

/** seed / seeds / generator(s) as one NoiseGenerator; a random seed (reported) when none is given. */
export function makeGenerator(opts: CommonOptions): { generator: NoiseGenerator; seed?: number | bigint; seeds?: (number | bigint)[] } {
  const given = [opts.seed !== undefined, opts.seeds !== undefined, opts.generator !== undefined].filter(Boolean).length;
  if (given > 1) throw new PipelineInputError("pass one of seed, seeds and generator");
  if (opts.seeds) {
    if (opts.seeds.length === 0) throw new PipelineInputError("seeds must hold one seed per image");
    return { generator: new PerImageGenerator(opts.seeds.map((s) => new TorchGenerator(s))), seeds: [...opts.seeds] };
  }
  if (Array.isArray(opts.generator)) {
    if (opts.generator.length === 0) throw new PipelineInputError("a list of generators must hold one per image");
    return { generator: new PerImageGenerator(opts.generator) };
  }
  if (opts.generator) return { generator: opts.generator as NoiseGenerator };
  const seed = opts.seed ?? randomInt(0, 2 ** 32 - 1);
  return { generator: new TorchGenerator(seed), seed };
}

/** [M, C, H, W] init images (or latents) repeated as a whole to `batch` (torch.cat([image] * (batch / M))). */
export function tileImages(image: FloatTensor, batch: number): FloatTensor {
  const [m, c, h, w] = image.shape;
  const data = new Float32Array(batch * c * h * w);
  for (let k = 0; k < batch / m; k++) data.set(image.data, k * image.data.length);
  return { data, shape: [batch, c, h, w] };
}

/** scheduler.setTimesteps with the scheduler's complaints (LCM: more steps than original_inference_steps) as input errors. */
export function setTimesteps(scheduler: Scheduler, steps: number): void {
  try {
    scheduler.setTimesteps(steps);
  } catch (e) {
    throw new PipelineInputError((e as Error).message);
  }
}
