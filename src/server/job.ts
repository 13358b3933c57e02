/**
 * A generation job as the front end sees it: what to make (JobSpec, plain JSON so it can travel
 * through Redis), its state, step-by-step progress events, its result or error, and how to cancel it.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { cancelledError, type CancelReason, type HttpError } from "./errors.js";
import type { ControlNetSpec } from "./controlnet-spec.js";
import type { ClipSkip, PromptSyntax } from "../pipelines/prompt-encoding.js";
import type { MicroConditioning } from "../pipelines/micro-conditioning.js";
import type { FreeUOptions } from "../pipelines/freeu.js";
import type { PagSpec } from "./pag-request.js";

/** A1111's hires fix (txt2img with enable_hr): the second pass's settings (see recipes/hires-fix.ts). */
export interface HiresSpec {
  scale?: number;
  width?: number;
  height?: number;
  /** A latent mode, Lanczos, Nearest, None, or the name of an --upscaler-dir model (then upscalerPath). */
  upscaler: string;
  upscalerPath?: string;
  steps?: number;
  strength: number;
  scheduler?: string;
  prompt?: string;
  negativePrompt?: string;
  /** The second pass's seed (ComfyUI's second KSampler); absent: the first pass's, as A1111. */
  seed?: number;
  /** ComfyUI's image nodes as the pixel upscaler (upscaler "ComfyUI image nodes"): they make exactly width x height. */
  imageOps?: ImageOpSpec[];
}

/**
 * A1111 inpainting (img2img with a mask): the mask and A1111's settings, passed as they are to
 * recipes/a1111-inpaint.ts. The mask is a base64 PNG of the init image's size (already resized).
 */
export interface InpaintSpec {
  /** White = repaint (before invertMask). */
  mask: string;
  invertMask: boolean;
  maskBlurX: number;
  maskBlurY: number;
  /** 0 fill, 1 original, 2 latent noise, 3 latent nothing. */
  inpaintingFill: 0 | 1 | 2 | 3;
  inpaintFullRes: boolean;
  inpaintFullResPadding: number;
}

/**
 * ComfyUI's noise mask (VAEEncodeForInpaint, SetLatentNoiseMask): the pipeline's inpaint as it is
 * (diffusers' algorithm, the mask binarized at 0.5, no blur and no paste of the original over the
 * result), with initImage and strength.
 */
export interface NoiseMaskSpec {
  /** Grey PNG (base64) of initImage's size: white = repaint. */
  mask: string;
  /** VAEEncodeForInpaint: these pixels (white) are set to 0.5 grey before the image is encoded. */
  greyOut?: string;
  /** InpaintModelConditioning's noise_mask false: the mask is an inpainting UNet's input only (a 4-channel UNet runs img2img). */
  concatOnly?: true;
}

/** The resize methods of ComfyUI's ImageScale / ImageScaleBy run here (torch's interpolate, PIL's Lanczos). */
export type ImageResizeMethod = "nearest-exact" | "bilinear" | "bicubic" | "lanczos";

/**
 * One step on each decoded image before it is saved (ComfyUI's image nodes between VAEDecode and
 * SaveImage; image-ops.ts): an --upscaler-dir model at its own scale (ImageUpscaleWithModel), or a
 * resize by a factor (ImageScaleBy) or to a size (ImageScale; a side of 0 keeps the aspect ratio).
 */
export type ImageOpSpec =
  | { op: "upscale-model"; name: string; path: string }
  /** ImageCompositeMasked: the image laid at (x, y) onto `destination` (an RGB PNG of width x height) where `mask` (a grey PNG, scaled to the image; absent: everywhere) is white. */
  | { op: "composite"; destination: string; width: number; height: number; x: number; y: number; mask?: string }
  | { op: "resize"; method: ImageResizeMethod; scaleBy: number }
  | { op: "resize"; method: ImageResizeMethod; width: number; height: number; crop: "disabled" | "center" };

/** An upscale or resize of an uploaded init image before it is encoded (ComfyUI's ImageUpscaleWithModel, ImageScale, ImageScaleBy before VAEEncode). */
export type InitImageOp = Extract<ImageOpSpec, { op: "resize" | "upscale-model" }>;

/** What to generate; every field already checked, the seed already drawn. */
export interface JobSpec {
  prompt: string;
  /** Absent (or empty): zero negative embeddings, as the CLI without --negative-prompt. */
  negativePrompt?: string;
  steps: number;
  guidanceScale: number;
  /**
   * The seed of the first iteration (iteration k uses seed + k, a batch shares it); with
   * perImageSeeds the seed of the first image (image j of the job, across batch and iterations, uses seed + j).
   */
  seed: number;
  /** A1111: every image draws its noise from its own seed (seed + j), so it equals a run of one image with that seed. */
  perImageSeeds?: boolean;
  /**
   * A1111's variation seeds (subseed, subseed_strength > 0): image j of the job (across batch and
   * iterations) has its noise slerped towards randn(variationSeed + j) by variationStrength, and every
   * image then keeps `seed` itself (A1111's all_seeds do not count up when subseed_strength > 0).
   */
  variationSeed?: number;
  variationStrength?: number;
  /** A1111's seed_resize_from_w / _h (pixels): each image's seed noise drawn at this size, centred. */
  seedResizeFrom?: { width: number; height: number };
  /** The served model to run on (its name; serve with several models); absent: the loaded one. */
  model?: string;
  /** A1111's tiling: circular padding in every UNet and VAE conv (seamless images). */
  tiling?: boolean;
  /** FreeU on the (base) UNet: diffusers' enable_freeu, ComfyUI's FreeU / FreeU_V2 with `variant`. */
  freeu?: FreeUOptions;
  /** Perturbed-attention guidance on the (base) UNet (pag-request.ts). */
  pag?: PagSpec;
  /** Sub-prompts in place of the prompt (ComfyUI's ConditioningCombine); `prompt` then names them for the infotext. */
  subPrompts?: { prompt: string; prompt2?: string; weight: number }[];
  /** diffusers' prompt_2 / negative_prompt_2: text_encoder_2's (CLIP-G's) own prompts (ComfyUI's text_g); absent: the prompts. */
  prompt2?: string;
  negativePrompt2?: string;
  /** SDXL's size conditioning (diffusers' original_size, crops_coords_top_left, target_size and negative_*); absent: the image size. */
  microConditioning?: MicroConditioning;
  /** diffusers' clip_skip (both text encoders), or per encoder (A1111's sdxl_clip_l_skip: text_encoder only); see clip-skip-request.ts. */
  clipSkip?: ClipSkip;
  /** A1111's "Clip skip: N" of the infotext, as the request asked for it (N > 1). */
  clipSkipInfo?: number;
  /** txt2img size; absent: the model's default. */
  width?: number;
  height?: number;
  /** A1111 sampler name or diffusers class; absent: the model's scheduler. */
  scheduler?: string;
  /** diffusers config options on top of the scheduler's (A1111's UniPC settings: solver_type, solver_order, lower_order_final). */
  schedulerOverrides?: Record<string, unknown>;
  /** Images made together from one seed (diffusers' num_images_per_prompt, the CLI's --num-images). */
  batchSize: number;
  /** A1111 n_iter: batches one after another, seed + k. */
  iterations: number;
  /** img2img: the init image as base64 PNG. */
  initImage?: string;
  strength?: number;
  /** img2img with a mask: inpainting (initImage set too). */
  inpaint?: InpaintSpec;
  /** The prompts' syntax; absent: the server's (--prompt-syntax). The ComfyUI API's jobs take ComfyUI's. */
  promptSyntax?: PromptSyntax;
  /** A --vae-dir VAE encoding and decoding in place of the model's (A1111's sd_vae, ComfyUI's VAELoader). */
  vae?: { name: string; path: string };
  /** Resizes of initImage (as uploaded) before it is cropped to multiples of 8 about its centre and encoded. */
  initImageOps?: InitImageOp[];
  /** Steps run on each decoded image before it is saved, in order (see ImageOpSpec). */
  imageOps?: ImageOpSpec[];
  /** img2img with ComfyUI's noise mask (see NoiseMaskSpec); not with `inpaint`. */
  noiseMask?: NoiseMaskSpec;
  /** txt2img with the hires fix: width / height are the first pass's size. */
  hires?: HiresSpec;
  /**
   * LoRAs from --lora-dir to stack on the loaded model (names resolved by whoever runs the job), merged
   * and sorted by name; absent: none. The prompts keep their `<lora:...>` tags (for the PNG text), and
   * LoRAs asked for in a request's `loras` field are appended to the prompt as tags too.
   */
  loras?: { name: string; weight: number; textEncoderWeight?: number }[];
  /**
   * "fast" (servers and workers started with --fast): the LCM-LoRA on top of `loras` and TAESD
   * decoding; steps, guidanceScale and scheduler already hold the preset's values (see fast-request.ts).
   */
  preset?: "fast";
  /** ControlNets of --controlnet-dir with their control images (see controlnet-spec.ts); absent: none. */
  controlnets?: ControlNetSpec[];
  /** ControlNet guess mode (diffusers' guess_mode; A1111's "ControlNet is more important"). */
  guessMode?: boolean;
  /**
   * A1111's refiner_checkpoint / refiner_switch_at (ComfyUI's base + refiner samplers): another served
   * model finishes the run from the switch, a schedule fraction or a step count (recipes/refiner.ts).
   */
  refiner?: RefinerSpec;
}

export interface RefinerSpec {
  /** The served model that refines (its name). */
  model: string;
  /** The fraction of the schedule the base runs, or instead the steps it runs. */
  switchAt?: number;
  switchStep?: number;
  /** The refiner's aesthetic-score conditioning (ComfyUI's CLIPTextEncodeSDXLRefiner ascore); absent: 6 and 2.5. */
  aestheticScore?: number;
  negativeAestheticScore?: number;
}

/** What a job made. */
export interface JobOutput {
  /** PNG files with the A1111 "parameters" text. */
  images: Buffer[];
  /** The seed of each image. */
  seeds: number[];
  /** The A1111 parameters text of each image. */
  infotexts: string[];
  width: number;
  height: number;
  /** A1111 label of the scheduler that ran. */
  sampler: string;
  /** The model's name. */
  model: string;
  /** Seconds spent generating (not waiting). */
  seconds: number;
  /** The UNet took the mask and masked image as input (a 9-channel inpainting UNet; A1111's is_using_inpainting_conditioning). */
  inpaintingConditioning?: boolean;
}

/** An output as JSON (images base64), for Redis. */
export type JobOutputJson = Omit<JobOutput, "images"> & { images: string[] };
export const outputToJson = (o: JobOutput): JobOutputJson => ({ ...o, images: o.images.map((b) => b.toString("base64")) });
export const outputFromJson = (o: JobOutputJson): JobOutput => ({ ...o, images: o.images.map((s) => Buffer.from(s, "base64")) });

/** One step done, as the runner reports it. */
export interface StepReport {
  /** Steps done in the whole job (all iterations), 1-based. */
  step: number;
  totalSteps: number;
  /** A preview of the current latents as a small PNG, made on demand (undefined when none). */
  preview: () => Buffer | undefined;
}

export type JobStatus = "queued" | "running" | "done" | "failed";

/**
 * A1111's interrupt and skip: not a cancel (the job still succeeds). Interrupt ends the denoising of
 * the current batch, which is decoded as it stands, and runs no further iteration; skip does the same
 * to the current batch only and goes on with the next iteration.
 */
export type StopAction = "interrupt" | "skip";

export type JobEvent =
  | { type: "queued"; position: number }
  | { type: "started" }
  | { type: "step"; step: number; totalSteps: number; etaSeconds: number; preview: () => Buffer | undefined }
  | { type: "done"; output: JobOutput }
  | { type: "failed"; error: HttpError };

export function newJobId(): string {
  return randomUUID().replace(/-/g, "").slice(0, 20);
}

export class Job {
  readonly createdAt = Date.now();
  status: JobStatus = "queued";
  startedAt?: number;
  finishedAt?: number;
  /** Steps done (whole job) and in all; totalSteps is 0 until the first step. */
  step = 0;
  totalSteps = 0;
  /** When the first step of the current run ended (the rate leaves out compile time). */
  private firstStepAt?: number;
  /** The latest preview maker. */
  preview?: () => Buffer | undefined;
  output?: JobOutput;
  /** The file-store names of the output images. */
  files: string[] = [];
  error?: HttpError;
  cancelReason?: CancelReason;
  /** Resolves with the output; rejects with an HttpError (never unhandled). */
  readonly done: Promise<JobOutput>;
  private readonly emitter = new EventEmitter();
  private settle!: { resolve: (o: JobOutput) => void; reject: (e: HttpError) => void };
  /** Set by the queue: stops the job wherever it is. */
  onCancel: (reason: CancelReason) => void = () => {};
  /** Set by the queue: passes an interrupt or skip to whoever runs the job. */
  onStop: (action: StopAction) => void = () => {};
  /** An interrupt was asked for (the output then holds what was made until then). */
  interrupted = false;
  /** Skips asked for (A1111's progress shows the flag). */
  skips = 0;

  constructor(readonly id: string, readonly spec: JobSpec) {
    this.emitter.setMaxListeners(0);
    this.done = new Promise<JobOutput>((resolve, reject) => { this.settle = { resolve, reject }; });
    this.done.catch(() => {});
  }

  get finished(): boolean { return this.status === "done" || this.status === "failed"; }

  /** Number of images the job makes. */
  get imageCount(): number { return this.spec.batchSize * this.spec.iterations; }

  subscribe(listener: (e: JobEvent) => void): () => void {
    this.emitter.on("event", listener);
    return () => this.emitter.off("event", listener);
  }

  private emit(e: JobEvent): void { this.emitter.emit("event", e); }

  queued(position: number): void { this.emit({ type: "queued", position }); }

  /** (Re)starts: a job recovered from a dead worker starts over. */
  started(): void {
    if (this.finished) return;
    this.status = "running";
    this.startedAt = Date.now();
    this.step = 0;
    this.firstStepAt = undefined;
    this.emit({ type: "started" });
  }

  progress(step: number, totalSteps: number, preview: () => Buffer | undefined): void {
    if (this.finished) return;
    if (this.status === "queued") this.started();
    const now = Date.now();
    if (this.firstStepAt === undefined || step <= 1) this.firstStepAt = now;
    this.step = step;
    this.totalSteps = totalSteps;
    this.preview = preview;
    this.emit({ type: "step", step, totalSteps, etaSeconds: this.etaSeconds(), preview });
  }

  /** Seconds left, from the rate of the steps after the first (which also compiles the model). */
  etaSeconds(now = Date.now()): number {
    if (this.status !== "running" || !this.startedAt || this.step === 0) return 0;
    const secs = this.step > 1 && this.firstStepAt ? (now - this.firstStepAt) / 1000 / (this.step - 1) : (now - this.startedAt) / 1000 / this.step;
    return Math.max(0, secs * (this.totalSteps - this.step));
  }

  /** 0..1 */
  get fraction(): number {
    if (this.status === "done") return 1;
    return this.totalSteps ? this.step / this.totalSteps : 0;
  }

  succeed(output: JobOutput): void {
    if (this.finished) return;
    this.status = "done";
    this.finishedAt = Date.now();
    this.output = output;
    this.step = this.totalSteps;
    this.preview = undefined;
    this.settle.resolve(output);
    this.emit({ type: "done", output });
  }

  fail(error: HttpError): void {
    if (this.finished) return;
    this.status = "failed";
    this.finishedAt = Date.now();
    this.preview = undefined;
    this.error = this.cancelReason ? cancelledError(this.cancelReason) : error;
    this.settle.reject(this.error);
    this.emit({ type: "failed", error: this.error });
  }

  /** A1111 interrupt / skip of a running job (see StopAction). */
  stop(action: StopAction): void {
    if (this.status !== "running" || this.interrupted) return;
    if (action === "interrupt") this.interrupted = true;
    else this.skips++;
    this.onStop(action);
  }

  /** Stops the job: a queued one never runs, a running one stops after its current step. */
  cancel(reason: CancelReason): void {
    if (this.finished || this.cancelReason) return;
    this.cancelReason = reason;
    this.onCancel(reason);
  }
}
