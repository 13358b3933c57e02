/**
 * Runs one JobSpec on a loaded pipeline, exactly as `ssd1b generate` / `ssd1b img2img` would with
 * the same arguments, and returns PNGs carrying the A1111 "parameters" text (whose prompt keeps its
 * `<lora:...>` tags, as A1111's does). Shared by the in-process queue and the Redis worker; the pipe
 * is the one with the spec's LoRAs (LoraPipelines picks it; for the fast preset with the LCM-LoRA).
 */
import { freeuInfoFields } from "../pipelines/freeu.js";
import { pagOptions, type PagSpec } from "./pag-request.js";
import { pagInfoFields } from "../pipelines/pag.js";
import { PAG_DEFAULT_LAYERS, PagLayerError, pagTargets, type UNetConfig } from "../models/unet/index.js";
import type { StableDiffusionXLPipeline, InpaintOptions, PipelineOutput } from "../pipelines/sdxl/index.js";
import { encodePng } from "../image/png.js";
import { decodeImage, rgbToTensor } from "../image/image.js";
import { toRgb8 } from "../image/image.js";
import { formatInfotext, samplerLabel } from "../image/infotext.js";
import { stripLoraTags } from "../prompts/lora-tags.js";
import { StepPreviews } from "./step-previews.js";
import type { HiresSpec, InpaintSpec, JobOutput, JobSpec, RefinerSpec, StepReport, StopAction } from "./job.js";
import { generateRefined, img2imgRefined, inpaintRefined } from "../recipes/refiner.js";
import { noiseMaskInputs } from "./noise-mask.js";
import type { RgbImage } from "../image/png.js";
import { imageOpsUpscale, imageWithOps, openImageOpModels, planesToRgb8, runImageOps } from "./image-ops.js";
import { cropToEights } from "../image/raster.js";
import { Upscaler } from "../pipelines/upscaler.js";
import type { ControlNets } from "./controlnet-library.js";
import { controlNetInfoFields, controlNetUnits } from "./controlnet-units.js";
import { esrganPixelUpscale, generateHires, hiresTargetSize, type HiresOptions } from "../recipes/hires-fix.js";
import { a1111Inpaint, type A1111InpaintSettings } from "../recipes/a1111-inpaint.js";
import { inpaintInfoFields } from "./inpaint-info.js";
import { createScheduler, type Scheduler } from "../schedulers/index.js";

/** A1111's infotext fields of the hires fix ("Hires resize" when a size was asked for instead of a scale). */
export function hiresInfoFields(h: HiresSpec): Record<string, string | number> {
  return {
    ...(h.width || h.height ? { "Hires resize": `${h.width ?? 0}x${h.height ?? 0}` } : { "Hires upscale": h.scale ?? 2 }),
    ...(h.steps ? { "Hires steps": h.steps } : {}),
    "Hires upscaler": h.upscaler,
    ...(h.prompt ? { "Hires prompt": h.prompt } : {}),
    ...(h.negativePrompt ? { "Hires negative prompt": h.negativePrompt } : {}),
  };
}

/**
 * Progress over an iteration's denoising loops (the hires fix's two passes, a refiner's share of a
 * pass): a loop starts when the step count goes back; the total is the expected steps until the loops
 * run more, so the count never goes back.
 */
class LoopProgress {
  private done = 0;
  private last = -1;
  private lastTotal = 0;

  constructor(private readonly expected: number) {}

  step(step: number, totalSteps: number): { step: number; total: number } {
    if (step <= this.last) this.done += this.lastTotal;
    this.last = step;
    this.lastTotal = totalSteps;
    return { step: this.done + step + 1, total: Math.max(this.expected, this.done + totalSteps) };
  }
}

/** A1111's infotext fields of the refiner ("Refiner switch at" holds a step count's fraction for a switch by steps). */
export function refinerInfoFields(r: RefinerSpec): Record<string, string | number> {
  return { Refiner: r.model, ...(r.switchAt !== undefined ? { "Refiner switch at": r.switchAt } : { "Refiner switch step": r.switchStep! }) };
}

/**
 * A1111's interrupt and skip for one running job: each iteration denoises under a signal of its own,
 * which a skip fires (that batch ends where it is and is decoded); an interrupt fires it too and
 * lets no further iteration start.
 */
export class StopControl {
  private current = new AbortController();
  private stopped = false;

  get interrupted(): boolean { return this.stopped; }

  apply(action: StopAction): void {
    if (action === "interrupt") this.stopped = true;
    this.current.abort(action);
  }

  /** The signal the next iteration's denoising ends on (a fresh one unless interrupted). */
  nextIteration(): AbortSignal {
    if (!this.stopped && this.current.signal.aborted) this.current = new AbortController();
    return this.current.signal;
  }
}

/** The spec's scheduler name, or a fresh instance with its overrides (A1111's UniPC settings). */
function schedulerOf(pipe: StableDiffusionXLPipeline, spec: JobSpec): string | Scheduler | undefined {
  if (!spec.schedulerOverrides || !spec.scheduler) return spec.scheduler;
  return createScheduler(spec.scheduler, pipe.schedulerConfig, spec.schedulerOverrides);
}

/** Iteration k's variation seed (the library adds the image's index in the batch), or none. */
function variationOf(spec: JobSpec, k: number): { variationSeed: number; variationStrength: number } | undefined {
  if (!spec.variationStrength || spec.variationSeed === undefined) return undefined;
  return { variationSeed: spec.variationSeed + k * spec.batchSize, variationStrength: spec.variationStrength };
}

export interface RunOptions {
  /** Cancels: the job fails. */
  signal?: AbortSignal;
  /** Interrupt / skip: the job succeeds with what it made. */
  control?: StopControl;
  onStep?: (report: StepReport) => void;
  /** --controlnet-dir: the nets the spec's ControlNet names open (jobs with ControlNets fail without it). */
  controlnets?: ControlNets;
  /** Opens a served model as the job's refiner (jobs with a refiner fail without it); the job releases it. */
  openRefiner?: (name: string) => Promise<StableDiffusionXLPipeline>;
}

export async function runJob(pipe: StableDiffusionXLPipeline, spec: JobSpec, opts: RunOptions = {}): Promise<JobOutput> {
  // an --upscaler-dir model for the hires fix, and the refiner, are opened for this job only
  const esrgan = spec.hires?.upscalerPath ? await Upscaler.fromFile(spec.hires.upscalerPath, { session: { device: pipe.device } }) : undefined;
  const allOps = [...(spec.initImageOps ?? []), ...(spec.hires?.imageOps ?? []), ...(spec.imageOps ?? [])];
  const opModels = allOps.length ? await openImageOpModels(allOps, pipe.device) : undefined;
  let refiner: StableDiffusionXLPipeline | undefined, withVae: StableDiffusionXLPipeline | undefined, refinerWithVae: StableDiffusionXLPipeline | undefined;
  try {
    // A1111 skips a refiner that is the loaded checkpoint itself
    if (spec.refiner && spec.refiner.model !== pipe.model.name) {
      if (!opts.openRefiner) throw new Error(`this queue cannot open the refiner ${spec.refiner.model} (serve it beside the model, with --model or --models-dir, in-process)`);
      refiner = await opts.openRefiner(spec.refiner.model);
    }
    // a --vae-dir VAE encodes and decodes for the model and the refiner alike, as A1111's sd_vae
    if (spec.vae) {
      withVae = await pipe.withVae(spec.vae.path);
      refinerWithVae = await refiner?.withVae(spec.vae.path);
    }
    return await runJobWith(withVae ?? pipe, spec, opts, esrgan, refinerWithVae ?? refiner, opModels?.models);
  } finally {
    await opModels?.release();
    await refinerWithVae?.release();
    await withVae?.release();
    await esrgan?.release();
    await refiner?.release();
  }
}

/** The job's init image, upscaled or resized by its initImageOps first (then cut to multiples of 8 about its centre, as ComfyUI's VAEEncode). */
async function initImageOf(png: string, ops: JobSpec["initImageOps"], models: ReadonlyMap<string, Upscaler>, signal?: AbortSignal): Promise<RgbImage> {
  const image = decodeImage(Buffer.from(png, "base64"), "init image");
  if (!ops?.length) return image;
  return cropToEights(planesToRgb8(await runImageOps(rgbToTensor(image), ops, models, signal)));
}

/** The spec's A1111 settings as the recipe takes them (the mask itself goes separately). */
function inpaintSettings(s: InpaintSpec): A1111InpaintSettings {
  return {
    invertMask: s.invertMask, maskBlurX: s.maskBlurX, maskBlurY: s.maskBlurY, inpaintingFill: s.inpaintingFill,
    inpaintFullRes: s.inpaintFullRes, inpaintFullResPadding: s.inpaintFullResPadding,
  };
}

async function runJobWith(pipe: StableDiffusionXLPipeline, spec: JobSpec, opts: RunOptions, esrgan?: Upscaler, refiner?: StableDiffusionXLPipeline, opModels?: ReadonlyMap<string, Upscaler>): Promise<JobOutput> {
  const t0 = performance.now();
  const h = spec.hires;
  const hires: HiresOptions | undefined = h && {
    scale: h.scale, width: h.width, height: h.height, steps: h.steps, strength: h.strength, scheduler: h.scheduler,
    prompt: h.prompt && stripLoraTags(h.prompt), negativePrompt: h.negativePrompt && stripLoraTags(h.negativePrompt),
    upscaler: esrgan ? esrganPixelUpscale(esrgan) : h.imageOps ? imageOpsUpscale(h.imageOps, opModels ?? new Map()) : h.upscaler, seed: h.seed,
  };
  const init = spec.initImage !== undefined ? await initImageOf(spec.initImage, spec.initImageOps, opModels ?? new Map(), opts.signal) : undefined;
  const mask = spec.inpaint && init ? decodeImage(Buffer.from(spec.inpaint.mask, "base64"), "mask") : undefined;
  // a 4-channel UNet never sees a concat-only mask: plain img2img of the pixels
  const concatOnly = spec.noiseMask?.concatOnly && pipe.unet.config.inChannels === pipe.vae.config.latentChannels;
  const noiseMasked = spec.noiseMask && init && !concatOnly ? noiseMaskInputs(spec.noiseMask, init) : undefined;
  const previews = new StepPreviews(pipe.taesd);
  // with ControlNets too a txt2img job without a size takes the model's (not the control image's, as the library would)
  const cnTarget = init ? { width: init.width, height: init.height } : { width: spec.width ?? pipe.defaultSize, height: spec.height ?? pipe.defaultSize };
  const controlnets = spec.controlnets?.length ? await controlNetUnits(spec.controlnets, opts.controlnets, cnTarget) : undefined;
  // the size is known before any image (an interrupt may come before the first one)
  const target = hires && hiresTargetSize(spec.width ?? pipe.defaultSize, spec.height ?? pipe.defaultSize, hires);
  const width = init?.width ?? target?.width ?? spec.width ?? pipe.defaultSize, height = init?.height ?? target?.height ?? spec.height ?? pipe.defaultSize;
  const out: JobOutput = { images: [], seeds: [], infotexts: [], width, height, sampler: spec.scheduler ?? "", model: pipe.model.name, seconds: 0 };
  if (mask || noiseMasked) out.inpaintingConditioning = pipe.unet.config.inChannels !== pipe.vae.config.latentChannels;
  // the steps of all loops of one iteration, as far as they are known before they run
  const expectedSteps = (init ? Math.max(1, Math.floor(spec.steps * (spec.strength ?? 1))) : spec.steps) + (h ? Math.max(1, Math.floor((h.steps || spec.steps) * h.strength)) : 0);
  const pag = jobPag(spec.pag, pipe.unet.config);
  for (let k = 0; k < spec.iterations; k++) {
    if (opts.control?.interrupted) break;
    const stopEarly = opts.control?.nextIteration();
    const variation = variationOf(spec, k);
    // with variation seeds A1111 gives every image the same seed (only the variation seed counts up)
    const seed = variation ? spec.seed : spec.perImageSeeds ? spec.seed + k * spec.batchSize : spec.seed + k;
    // A1111: image j of the job has seed + j, each from its own generator
    const seeds = spec.perImageSeeds ? Array.from({ length: spec.batchSize }, (_, i) => (variation ? seed : seed + i)) : undefined;
    // the hires fix and the refiner run several loops: one progress over them all
    const progress = new LoopProgress(expectedSteps);
    const common = {
      // the <lora:...> tags were read by the front end (spec.loras); the text encoders see the rest
      prompt: stripLoraTags(spec.prompt), negativePrompt: (spec.negativePrompt && stripLoraTags(spec.negativePrompt)) || undefined, numInferenceSteps: spec.steps,
      prompt2: spec.prompt2 && stripLoraTags(spec.prompt2), negativePrompt2: spec.negativePrompt2 && stripLoraTags(spec.negativePrompt2), ...spec.microConditioning,
      guidanceScale: spec.guidanceScale, seed: seeds ? undefined : seed, seeds, scheduler: schedulerOf(pipe, spec), numImagesPerPrompt: spec.batchSize, promptSyntax: spec.promptSyntax,
      ...variation, tiling: spec.tiling, freeu: spec.freeu, ...pagOptions(pag), subPrompts: spec.subPrompts, clipSkip: spec.clipSkip, seedResizeFrom: spec.seedResizeFrom, signal: opts.signal, stopEarly, fastDecode: spec.preset === "fast" || undefined, controlnets, guessMode: spec.guessMode,
      onStep: opts.onStep && (({ step, totalSteps, latents, shape }: { step: number; totalSteps: number; latents: Float32Array; shape: number[] }) => {
        const at = progress.step(step, totalSteps);
        opts.onStep!({ step: k * at.total + at.step, totalSteps: spec.iterations * at.total, preview: previews.forStep(latents, shape) });
      }),
    };
    const image = init && { width: init.width, height: init.height, data: init.data };
    // the refiner's UNet takes over from the base's: one UNet session in memory at a time
    const switchOver = refiner && spec.refiner && { ...spec.refiner, onSwitch: () => pipe.unet.release() };
    const inpaint = (o: InpaintOptions) => (switchOver ? inpaintRefined(pipe, refiner!, o, switchOver) : pipe.inpaint(o));
    const result: PipelineOutput = image && mask && spec.inpaint
      ? await a1111Inpaint(pipe, { ...common, image, maskImage: mask, strength: spec.strength, settings: inpaintSettings(spec.inpaint) }, inpaint)
      : noiseMasked ? await inpaint({ ...common, ...noiseMasked, strength: spec.strength })
      : hires && switchOver && !image ? await generateHires(pipe, { ...common, width: spec.width, height: spec.height }, { ...hires, secondPass: (o) => img2imgRefined(pipe, refiner!, o, switchOver) })
      : switchOver ? await (image ? img2imgRefined(pipe, refiner, { ...common, image, strength: spec.strength }, switchOver)
        : generateRefined(pipe, refiner, { ...common, width: spec.width, height: spec.height }, switchOver))
      // ComfyUI's img2img before an upscale pass: the hires fix from the image
      : image && hires ? await generateHires(pipe, { ...common, width: image.width, height: image.height }, { ...hires, firstPass: ({ width: _w, height: _h, ...o }) => pipe.img2img({ ...o, image, strength: spec.strength }) })
      : image ? await pipe.img2img({ ...common, image, strength: spec.strength })
      : hires ? await generateHires(pipe, { ...common, width: spec.width, height: spec.height }, hires)
        : await pipe.generate({ ...common, width: spec.width ?? (controlnets && cnTarget.width), height: spec.height ?? (controlnets && cnTarget.height) });
    const [n, height, width] = result.images.shape;
    const ops = spec.imageOps ?? [];
    // ComfyUI's image nodes after VAEDecode, one image at a time
    let saved: RgbImage[] | undefined;
    if (ops.length) {
      saved = [];
      for (let i = 0; i < n; i++) saved.push(await imageWithOps(result.images, i, ops, opModels ?? new Map(), opts.signal));
    }
    out.width = saved?.[0].width ?? width;
    out.height = saved?.[0].height ?? height;
    out.sampler = samplerLabel(result.scheduler.className, result.scheduler.config as Record<string, unknown>);
    for (let i = 0; i < n; i++) {
      const imageSeed = seeds ? seeds[i] : seed;
      const parameters = formatInfotext({
        prompt: spec.prompt, negativePrompt: spec.negativePrompt || undefined, steps: spec.steps, sampler: out.sampler,
        // A1111's Size is the first pass's with the hires fix (its settings give the rest)
        cfgScale: spec.guidanceScale, seed: imageSeed, model: pipe.model.name, denoisingStrength: init ? spec.strength : h?.strength,
        ...(variation ? { variationSeed: variation.variationSeed + i, variationStrength: variation.variationStrength } : {}), tiling: spec.tiling, seedResizeFrom: spec.seedResizeFrom,
        clipSkip: spec.clipSkipInfo, ...(h ? { width: spec.width ?? pipe.defaultSize, height: spec.height ?? pipe.defaultSize } : { width, height }),
        extra: {
          ...(h ? hiresInfoFields(h) : spec.inpaint ? inpaintInfoFields(spec.inpaint) : {}), ...(spec.controlnets?.length ? controlNetInfoFields(spec.controlnets) : {}),
          ...(refiner && spec.refiner ? refinerInfoFields(spec.refiner) : {}), ...(spec.vae ? { VAE: spec.vae.name } : {}), ...(spec.freeu ? freeuInfoFields(spec.freeu) : {}), ...pagInfoFields(pagOptions(pag)),
        },
      });
      out.images.push(encodePng(saved?.[i] ?? toRgb8(result.images, i), { parameters }));
      out.seeds.push(imageSeed);
      out.infotexts.push(parameters);
    }
  }
  // a background preview decode must not outlive the job (the next job may swap the pipeline)
  await previews.settled();
  out.seconds = (performance.now() - t0) / 1000;
  return out;
}

/** The job's PAG on this model: an optional one (ComfyUI's node) whose layers this UNet lacks is off, as it changes nothing there. */
function jobPag(pag: PagSpec | undefined, unet: UNetConfig): PagSpec | undefined {
  if (!pag?.optional) return pag;
  try {
    pagTargets(unet, pag.layers ?? PAG_DEFAULT_LAYERS);
    return pag;
  } catch (e) {
    if (e instanceof PagLayerError) return undefined;
    throw e;
  }
}
