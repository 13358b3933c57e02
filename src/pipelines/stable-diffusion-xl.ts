/**
 * diffusers' StableDiffusionXLPipeline and StableDiffusionXLImg2ImgPipeline for the SDXL family
 * (SDXL base, SSD-1B, Vega): the same steps, in the same order, drawing the same random numbers.
 *
 *   const pipe = await StableDiffusionXLPipeline.fromPretrained("segmind/SSD-1B", { variant: "fp16" });
 *   const { images } = await pipe.generate({ prompt: "an astronaut riding a horse", seed: 42 });
 *
 * The checkpoints people have: a diffusers folder or HF cache repo id, or an original single-file
 * `.safetensors` (`{ config: dir }` for non-built-in architectures and tokenizers); LoRA / LoCon files
 * (`{ loras: [{ file, weight }] }`, folded into the weights at session creation); another VAE
 * (`{ vae: dir }`); a TAESD for previews and fast decoding (`{ taesd }`, `fastDecode`, `previewDecode`);
 * LCM UNets (time_cond_proj_dim: guidance embedding, no CFG batch); A1111 prompts (`promptSyntax: "a1111"`).
 */
import { randomInt } from "node:crypto";
import { existsSync } from "node:fs";
import type { ModelFolder } from "../loaders/model-folder.js";
import type { Variant } from "../loaders/component.js";
import { MissingTokenizersError, openModelSource, TOKENIZER_REPOS, type ModelSource } from "../loaders/model-source.js";
import { hubCacheDir } from "../loaders/model-folder.js";
import { addLoraDeltas, emptyLoraDeltaSet, LoraError, LoraTargets, readLora, type LoraDeltaSet, type LoraFile } from "../loaders/lora.js";
import type { SessionOptions } from "../runtime/session.js";
import { PerImageGenerator, TorchGenerator } from "../random/index.js";
import { createScheduler, img2imgTimesteps, type NoiseGenerator, type Scheduler } from "../schedulers/index.js";
import { rgbToTensor, type FloatTensor } from "../image/image.js";
import type { RgbImage } from "../image/png.js";
import { PromptEncoder, type EncodePromptOptions, type PromptEmbeddings, type PromptSyntax } from "./prompt-encoding.js";
import { checkTimeIdsFit, img2imgTimeIds, txt2imgTimeIds, type MicroConditioning } from "./micro-conditioning.js";
import { UNetRunner, VaeRunner } from "./sessions.js";
import { denoise, type StepCallback } from "./denoise.js";
import { decodeLatents, encodeInitImage } from "./vae-io.js";
import { PipelineInputError } from "./errors.js";
import { checkPipelineLimits } from "./limits.js";
import { TaesdRunner, checkTaesdFits } from "./taesd-runner.js";
import { guidanceScaleEmbedding } from "./guidance.js";
import { ensureLocal, hubSettings, snapshotDownload, type HubOptions } from "../hub/index.js";
import { architectureOfUnetConfig } from "../loaders/single-file.js";
import { FAST_CALL_DEFAULTS, FAST_TAESD, LCM_LORAS, fastPreset, type Preset } from "./presets.js";

export interface PipelineLoadOptions {
  /**
   * How Hub repo ids (model, vae, taesd, LoRAs) that are not in the cache are downloaded: endpoint,
   * token, offline, progress callback (default: HF_* variables; see src/hub).
   */
  hub?: HubOptions;
  /**
   * "fast": the model's LCM-LoRA, the LCM scheduler, 4 steps, guidance 1 and TAESD decoding, about 10x
   * less work than the defaults (see presets.ts); generate / img2img options still override each part.
   */
  preset?: Preset;
  /** Weight files: "fp16" for *.fp16.safetensors, "fp32"; default fp32 if present, else fp16. */
  variant?: Variant;
  /** onnxruntime execution provider and threads. */
  session?: SessionOptions;
  /** Told about prompts cut at 77 tokens and the like (default: silent). */
  onWarning?: (message: string) => void;
  /** Where to look for the Hugging Face cache (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * LoRA / LoCon files (PEFT/diffusers or kohya .safetensors) applied to the UNet and both text
   * encoders at `weight` (the strength; 1 = as trained). They stack. A tensor that matches no module
   * of this model is an error (LoraError) naming it.
   */
  loras?: { file: string; weight: number }[];
  /**
   * Single-file checkpoints: a diffusers folder whose configs describe the checkpoint (instead of the
   * built-in ones of the detected architecture) and whose tokenizer/, tokenizer_2/ are used.
   */
  config?: string;
  /**
   * Keep only the session in use: text encoders are dropped after prompt encoding and the UNet before
   * VAE decoding, and compiled again when next needed. Peak memory is then the largest single
   * component instead of all of them (for one-shot use such as the CLI; a server keeps them loaded).
   */
  lowMemory?: boolean;
  /** A diffusers AutoencoderKL folder (or repo id in the HF cache, e.g. madebyollin/sdxl-vae-fp16-fix) used instead of the model's VAE. */
  vae?: string;
  /** Default prompt syntax of generate / img2img / encodePrompt calls ("diffusers" unless set). */
  promptSyntax?: PromptSyntax;
  /**
   * A TAESD (diffusers AutoencoderTiny) for previewDecode and fastDecode: its folder, a repo id in the
   * HF cache (madebyollin/taesdxl) or a taesdxl_decoder.safetensors file.
   */
  taesd?: string;
  /**
   * The VAE decoder's arithmetic. "float16" as diffusers runs an fp16 VAE; an overflowing decode (NaN
   * or infinity, as the original SDXL VAE gives) is redone in float32 and told through onWarning.
   * "auto" (default): float16 on WebGPU for a VAE whose config says force_upcast: false (e.g.
   * madebyollin/sdxl-vae-fp16-fix), float32 otherwise — onnxruntime's CPU provider computes most of
   * an fp16 graph in float32 anyway, so half precision gains nothing there.
   */
  vaePrecision?: "float32" | "float16" | "auto";
}

export interface CommonOptions extends Omit<EncodePromptOptions, "doClassifierFreeGuidance">, MicroConditioning {
  /** Default 50, as in diffusers. */
  numInferenceSteps?: number;
  /** Classifier-free guidance scale; guidance is off at <= 1. Default 5. */
  guidanceScale?: number;
  /** guidance_rescale (0 = off). */
  guidanceRescale?: number;
  /** torch.Generator('cpu').manual_seed(seed); random (and reported in the output) when absent. */
  seed?: number | bigint;
  /**
   * One seed per image (A1111's seed + i): image i draws all its noise from torch.Generator().manual_seed(seeds[i]),
   * as diffusers does with a list of generators; so it equals a batch of one with that seed. Instead of `seed`.
   */
  seeds?: readonly (number | bigint)[];
  /**
   * Instead of a seed: any source of torch-order randn; a list draws image i from generator i
   * (diffusers' list of generators, one per image of the batch).
   */
  generator?: NoiseGenerator | readonly NoiseGenerator[];
  /** A scheduler name (A1111 "Euler a", "DPM++ 2M Karras", or a diffusers class) built from the model's scheduler config, or an instance. */
  scheduler?: string | Scheduler;
  /** "latent" skips the VAE decode. */
  outputType?: "np" | "latent";
  onStep?: StepCallback;
  signal?: AbortSignal;
  /**
   * Ends the denoising early without an error (A1111's interrupt and skip): the latents as the last
   * finished step left them are decoded and returned (`timesteps` then lists only the steps that ran).
   */
  stopEarly?: AbortSignal;
  /** Decode the final latents with the loaded TAESD instead of the VAE (much faster, a little less detail). */
  fastDecode?: boolean;
}

export interface GenerateOptions extends CommonOptions {
  /** Default: UNet sample_size * VAE scale factor (1024 for SDXL / SSD-1B). */
  width?: number;
  height?: number;
  /** Initial latents [B, C, h, w] instead of randn (still multiplied by init_noise_sigma). */
  latents?: Float32Array;
}

export interface Img2ImgOptions extends CommonOptions {
  /**
   * Init image(s): [M, 3, H, W] floats in [0, 1] (M divides the batch), or 8-bit RGB; or, as diffusers
   * takes them, init latents [M, C, h, w] with the UNet's C channels (4), used as they are (no VAE
   * encode, so no posterior sample is drawn): e.g. upscaled first-pass latents for the hires fix.
   */
  image: FloatTensor | RgbImage;
  /** Fraction of the schedule to run, in (0, 1]. Default 0.3, as in diffusers. */
  strength?: number;
}

export interface PipelineOutput {
  /** [N, H, W, 3] in [0, 1] (empty with outputType "latent"). */
  images: FloatTensor;
  /** The final latents [N, C, h, w], what the VAE decoded. */
  latents: FloatTensor;
  /** The seed used (absent when a generator or seeds were passed). */
  seed?: number | bigint;
  /** The per-image seeds, when `seeds` was passed. */
  seeds?: (number | bigint)[];
  /** The timesteps that ran. */
  timesteps: number[];
  /** The scheduler that ran (its className and config). */
  scheduler: Scheduler;
}

interface Prepared {
  scheduler: Scheduler;
  generator: NoiseGenerator;
  seed?: number | bigint;
  seeds?: (number | bigint)[];
  steps: number;
  /** Classifier-free guidance: the [negative, positive] UNet batch (never for LCM UNets). */
  guidance: boolean;
  guidanceScale: number;
  embeds: PromptEmbeddings;
  batch: number;
}

/** PipelineLoadOptions.vaePrecision resolved for a VAE config. */
function vaePrecision(opts: PipelineLoadOptions, vaeConfig: Record<string, unknown>): "float32" | "float16" {
  const p = opts.vaePrecision ?? "auto";
  if (p !== "auto" && p !== "float32" && p !== "float16") throw new PipelineInputError(`vaePrecision must be float32, float16 or auto, got "${p}"`);
  if (p !== "auto") return p;
  return opts.session?.device === "webgpu" && vaeConfig.force_upcast === false ? "float16" : "float32";
}

const isRgb = (x: FloatTensor | RgbImage): x is RgbImage => (x as RgbImage).width !== undefined;

export class StableDiffusionXLPipeline {
  private constructor(
    readonly model: ModelFolder,
    /** model_index.json (empty when absent). */
    readonly modelIndex: Record<string, unknown>,
    readonly promptEncoder: PromptEncoder,
    readonly unet: UNetRunner,
    readonly vae: VaeRunner,
    readonly schedulerConfig: Record<string, unknown>,
    /** Where the weights came from: diffusers folder or single file, configs, tokenizers. */
    readonly source: ModelSource,
    /** The LoRAs applied, as read (format, per-component deltas). */
    readonly loras: readonly LoraFile[],
    /** See PipelineLoadOptions.lowMemory. */
    readonly lowMemory = false,
  ) {}

  /** fromPretrained's session options and warning sink, reused by withLoras and loadTaesd. */
  private loadSettings: { session?: SessionOptions; onWarning?: (message: string) => void } = {};
  /** What a preset changes in every call unless the call sets it. */
  private callDefaults: Partial<CommonOptions> = {};
  /** Sessions a withLoras variant shares with the pipeline it came from: its release() leaves them. */
  private borrowed = { promptEncoder: false, vae: false, taesd: false };

  /**
   * Opens a diffusers folder, a Hugging Face cache repo id or a single-file checkpoint (`.safetensors`);
   * reads the LoRAs against the model; compiles the text encoders now, the UNet and VAE per shape on first use.
   */
  static async fromPretrained(dirOrRepoId: string, loadOpts: PipelineLoadOptions = {}): Promise<StableDiffusionXLPipeline> {
    const hub: HubOptions & { variant?: Variant; notes?: (m: string) => void } = { env: loadOpts.env, ...loadOpts.hub, variant: loadOpts.variant, notes: loadOpts.onWarning };
    const local = (spec: string | undefined, role: "vae" | "taesd") => (spec === undefined ? undefined : ensureLocal(spec, role, hub));
    const opts: PipelineLoadOptions = {
      ...loadOpts, vae: await local(loadOpts.vae, "vae"), taesd: await local(loadOpts.taesd, "taesd"),
      loras: loadOpts.loras && await Promise.all(loadOpts.loras.map(async (l) => ({ ...l, file: await ensureLocal(l.file, "lora", hub) }))),
    };
    const modelPath = await ensureLocal(dirOrRepoId, "model", hub);
    const open = () => openModelSource(modelPath, { variant: opts.variant, config: opts.config, vae: opts.vae, env: opts.env });
    let source: ModelSource;
    try {
      source = open();
    } catch (e) {
      if (!(e instanceof MissingTokenizersError) || hubSettings(hub).offline) throw e;
      await fetchSingleFileTokenizers(opts, hub);
      source = open();
    }
    const { model, modelIndex } = source;
    for (const note of source.notes) opts.onWarning?.(note);
    if (opts.preset) Object.assign(opts, await presetLoadOptions(opts, source, hub));
    if (modelIndex.requires_aesthetics_score === true) {
      throw new PipelineInputError(`${model.dir}: requires_aesthetics_score (an SDXL refiner) is not supported; use an SDXL-base-style model`);
    }
    const loras: LoraFile[] = [];
    let deltas: LoraDeltaSet | undefined;
    if (opts.loras?.length) {
      const targets = new LoraTargets({ unet: source.unet.config, textEncoder: source.textEncoder.config, textEncoder2: source.textEncoder2.config });
      deltas = emptyLoraDeltaSet();
      for (const { file, weight } of opts.loras) {
        if (!existsSync(file)) throw new LoraError(`LoRA file not found: ${file}`);
        const lora = readLora(file, weight, targets);
        addLoraDeltas(lora, deltas);
        loras.push(lora);
      }
    }
    // Low-memory mode also gives activations back to the system as soon as they are freed.
    const base = opts.onWarning && !opts.session?.onWarning ? { ...opts.session, onWarning: opts.onWarning } : opts.session;
    const session = opts.lowMemory ? { memoryArena: false, ...base } : base;
    const unet = UNetRunner.fromWeights(source.unet, session, deltas?.unet);
    const vae = VaeRunner.fromWeights(source.vae, session, { precision: vaePrecision(opts, source.vae.config), onFallback: opts.onWarning });
    const taesd = opts.taesd ? TaesdRunner.open(opts.taesd, { variant: opts.variant, session, env: opts.env }) : undefined;
    if (taesd) checkTaesdFits(taesd, unet.config.inChannels, vae.scaleFactor);
    const promptEncoder = await PromptEncoder.fromWeights(source.tokenizers, source, {
      session, warn: opts.onWarning, promptSyntax: opts.promptSyntax,
      forceZerosForEmptyPrompt: modelIndex.force_zeros_for_empty_prompt !== false,
      deltas: deltas && { textEncoder: deltas.textEncoder, textEncoder2: deltas.textEncoder2 },
    });
    const { hidden, pooled } = promptEncoder.dims;
    try {
      if (unet.config.crossAttentionDim.some((d) => d !== hidden)) {
        throw new PipelineInputError(`${model.dir}: the UNet's cross_attention_dim ${unet.config.crossAttentionDim[0]} differs from the two text encoders' hidden sizes together (${hidden})`);
      }
      checkTimeIdsFit(unet.config, pooled);
    } catch (e) {
      await promptEncoder.release();
      throw e;
    }
    const pipe = new StableDiffusionXLPipeline(model, modelIndex, promptEncoder, unet, vae, source.schedulerConfig, source, loras, opts.lowMemory);
    pipe.loadSettings = { session, onWarning: opts.onWarning };
    pipe.taesdRunner = taesd;
    if (opts.preset) pipe.callDefaults = FAST_CALL_DEFAULTS;
    return pipe;
  }

  /**
   * This pipeline with more LoRAs stacked on its own (load-time ones stay): new UNet sessions and,
   * when an added LoRA touches the text encoders, new text-encoder sessions, all compiled with the
   * combined deltas; the VAE, TAESD, tokenizers, configs and weight files are shared. Releasing the variant
   * frees only its own sessions (the server keeps a few variants for per-request LoRAs).
   */
  async withLoras(loras: readonly { file: string; weight: number }[]): Promise<StableDiffusionXLPipeline> {
    const { source } = this;
    const targets = new LoraTargets({ unet: source.unet.config, textEncoder: source.textEncoder.config, textEncoder2: source.textEncoder2.config });
    const added = loras.map(({ file, weight }) => {
      if (!existsSync(file)) throw new LoraError(`LoRA file not found: ${file}`);
      return readLora(file, weight, targets);
    });
    const all = [...this.loras, ...added];
    const deltas = emptyLoraDeltaSet();
    for (const lora of all) addLoraDeltas(lora, deltas);
    const touchesText = added.some((l) => l.deltas.textEncoder.length + l.deltas.textEncoder2.length > 0);
    const { session, onWarning } = this.loadSettings;
    const pe = this.promptEncoder;
    const promptEncoder = !touchesText ? pe : await PromptEncoder.fromWeights(pe.tokenizers, source, {
      session, warn: onWarning, promptSyntax: pe.promptSyntax, forceZerosForEmptyPrompt: pe.forceZerosForEmptyPrompt,
      deltas: { textEncoder: deltas.textEncoder, textEncoder2: deltas.textEncoder2 },
    });
    const unet = UNetRunner.fromWeights(source.unet, session, deltas.unet);
    const variant = new StableDiffusionXLPipeline(this.model, this.modelIndex, promptEncoder, unet, this.vae, this.schedulerConfig, source, all, this.lowMemory);
    variant.loadSettings = this.loadSettings;
    // a preset pipeline's variants keep its call defaults (LCM, 4 steps, ...)
    variant.callDefaults = this.callDefaults;
    variant.taesdOwner = this;
    variant.borrowed = { promptEncoder: !touchesText, vae: true, taesd: true };
    return variant;
  }

  private withCallDefaults<T extends CommonOptions>(opts: T): T {
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    return { ...this.callDefaults, ...given } as T;
  }

  /** LCM UNets (time_cond_proj_dim) take the guidance scale as an embedding instead of a CFG batch. */
  get timeCondProjDim(): number | null { return this.unet.config.timeCondProjDim ?? null; }

  /** The execution device the sessions were loaded for (default cpu), e.g. for an upscaler run beside them. */
  get device(): SessionOptions["device"] { return this.loadSettings.session?.device; }

  /** Pixels per latent pixel (8 for SDXL). */
  get vaeScaleFactor(): number { return this.vae.scaleFactor; }

  /** The default image size: UNet sample_size * VAE scale factor. */
  get defaultSize(): number { return this.unet.config.sampleSize * this.vaeScaleFactor; }

  /** A fresh scheduler: by name (A1111 or diffusers class) from the model's scheduler config, default the model's own class. */
  createScheduler(name?: string): Scheduler {
    const cls = name ?? String(this.schedulerConfig._class_name ?? "EulerDiscreteScheduler");
    try {
      return createScheduler(cls, this.schedulerConfig);
    } catch (e) {
      throw new PipelineInputError((e as Error).message);
    }
  }

  /** encode_prompt: embeddings for each prompt, repeated numImagesPerPrompt times. */
  encodePrompt(opts: EncodePromptOptions): Promise<PromptEmbeddings> {
    return this.promptEncoder.encode(opts);
  }

  /** Text to image (StableDiffusionXLPipeline.__call__). */
  async generate(callOpts: GenerateOptions): Promise<PipelineOutput> {
    const opts = this.withCallDefaults(callOpts);
    const height = opts.height ?? this.defaultSize, width = opts.width ?? this.defaultSize;
    this.checkSize(width, height);
    const p = await this.prepare(opts);
    const { scheduler, generator, batch } = p;
    setTimesteps(scheduler, p.steps);
    const f = this.vaeScaleFactor;
    const shape = [batch, this.unet.config.inChannels, height / f, width / f];
    const n = shape.reduce((x, y) => x * y, 1);
    if (opts.latents && opts.latents.length !== n) throw new PipelineInputError(`latents have ${opts.latents.length} values, expected [${shape}]`);
    const sigma = Math.fround(scheduler.initNoiseSigma);
    const latents = (opts.latents ?? generator.randn(shape)).map((v) => v * sigma);
    scheduler.setBeginIndex(0);
    const timeIds = txt2imgTimeIds(opts, height, width, batch, p.guidance);
    return this.finish(p, opts, Array.from(scheduler.timesteps), latents, shape, timeIds);
  }

  /** Image to image (StableDiffusionXLImg2ImgPipeline.__call__). */
  async img2img(callOpts: Img2ImgOptions): Promise<PipelineOutput> {
    const opts = this.withCallDefaults(callOpts);
    const strength = opts.strength ?? 0.3;
    if (!(strength > 0 && strength <= 1)) throw new PipelineInputError(`strength must be in (0, 1], got ${strength}`);
    const image = isRgb(opts.image) ? rgbToTensor(opts.image) : opts.image;
    const c = this.unet.config.inChannels, f = this.vaeScaleFactor;
    const given = image.shape.length === 4 && image.shape[1] === c && c !== 3 ? "latents" : "image";
    if (given === "image" && (image.shape.length !== 4 || image.shape[1] !== 3)) throw new PipelineInputError(`the init image must be [M, 3, H, W] (or latents [M, ${c}, h, w]), got [${image.shape}]`);
    const m = image.shape[0];
    const [height, width] = given === "latents" ? [image.shape[2] * f, image.shape[3] * f] : [image.shape[2], image.shape[3]];
    if (image.data.length !== image.shape.reduce((x, y) => x * y, 1)) throw new PipelineInputError(`the init ${given} hold ${image.data.length} values, expected [${image.shape}]`);
    this.checkSize(width, height, given === "latents" ? "the init latents (x VAE scale)" : "the init image");
    const p = await this.prepare(opts);
    const { scheduler, generator, batch } = p;
    if (batch % m !== 0) throw new PipelineInputError(`${m} init images cannot be spread over ${batch} images`);
    setTimesteps(scheduler, p.steps);
    const { timesteps } = img2imgTimesteps(scheduler, p.steps, strength);
    if (timesteps.length === 0) {
      throw new PipelineInputError(`strength ${strength} x ${p.steps} steps leaves no denoising step; raise the steps or the strength`);
    }
    // Random numbers in diffusers' order: the posterior sample first, then the noise. With one
    // generator per image diffusers tiles the init images to the batch and samples each on its own.
    const perImage = generator instanceof PerImageGenerator && m < batch;
    const init = given === "latents" ? tileImages(image, batch)
      : await encodeInitImage(this.vae, perImage ? tileImages(image, batch) : image, batch, generator);
    const noise = generator.randn(init.shape);
    const latents = scheduler.addNoise(init.data, noise, timesteps[0]);
    const timeIds = img2imgTimeIds(opts, height, width, batch, p.guidance);
    return this.finish(p, opts, Array.from(timesteps), latents, init.shape, timeIds);
  }

  /** The TAESD loaded with { taesd } or loadTaesd, if any. */
  get taesd(): TaesdRunner | undefined { return this.taesdOwner ? this.taesdOwner.taesd : this.taesdRunner; }
  private taesdRunner?: TaesdRunner;
  /** A withLoras variant uses its base's TAESD, also one loaded into the base later. */
  private taesdOwner?: StableDiffusionXLPipeline;

  /**
   * Loads a TAESD (folder, HF cache repo id or decoder file) for previewDecode and fastDecode, replacing
   * any loaded one; its session uses the pipeline's session options unless `opts.session` is given.
   */
  async loadTaesd(spec: string, opts: { variant?: Variant; session?: SessionOptions; env?: NodeJS.ProcessEnv } = {}): Promise<TaesdRunner> {
    if (this.taesdOwner) return this.taesdOwner.loadTaesd(spec, opts);
    const taesd = TaesdRunner.open(spec, { ...opts, session: opts.session ?? this.loadSettings.session });
    checkTaesdFits(taesd, this.unet.config.inChannels, this.vaeScaleFactor);
    await this.taesdRunner?.release();
    this.taesdRunner = taesd;
    return taesd;
  }

  /**
   * A preview of image `index` of latents [B, C, h, w] as the denoising loop leaves them (StepInfo's
   * latents and shape): the TAESD decode at full resolution, as 8-bit RGB. Needs a loaded TAESD.
   */
  async previewDecode(latents: Float32Array, shape: readonly number[], index = 0): Promise<RgbImage> {
    return this.requireTaesd("previewDecode").previewImage(latents, shape, index);
  }

  private requireTaesd(what: string): TaesdRunner {
    const taesd = this.taesd;
    if (!taesd) throw new PipelineInputError(`${what} needs a TAESD: load one with { taesd: "madebyollin/taesdxl" } (a folder, cached repo id or taesdxl_decoder.safetensors; CLI --taesd) or pipe.loadTaesd(...)`);
    return taesd;
  }

  async release(): Promise<void> {
    if (!this.borrowed.taesd) await this.taesdRunner?.release();
    if (!this.borrowed.promptEncoder) await this.promptEncoder.release();
    await this.unet.release();
    if (!this.borrowed.vae) await this.vae.release();
  }

  private checkSize(width: number, height: number, what = "the image"): void {
    for (const [name, v] of [["width", width], ["height", height]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new PipelineInputError(`${what} ${name} must be a positive integer, got ${v}`);
      checkPipelineLimits({ [name]: v }, { [name]: `${what} ${name}` });
      const m = Math.max(8, this.vaeScaleFactor);
      if (v % m !== 0) throw new PipelineInputError(`${what} ${name} ${v} is not a multiple of ${m} (try ${Math.max(m, Math.round(v / m) * m)})`);
    }
  }

  /** Checks the shared arguments, builds the scheduler and the generator, encodes the prompts. */
  private async prepare(opts: CommonOptions): Promise<Prepared> {
    if (opts.fastDecode) this.requireTaesd("fastDecode");
    const steps = opts.numInferenceSteps ?? 50;
    if (!Number.isInteger(steps) || steps < 1) throw new PipelineInputError(`the number of steps must be a positive integer, got ${steps}`);
    const prompts = Array.isArray(opts.prompt) ? opts.prompt.length : 1;
    checkPipelineLimits({ steps, images: prompts * (opts.numImagesPerPrompt ?? 1) });
    const guidanceScale = opts.guidanceScale ?? 5;
    if (!Number.isFinite(guidanceScale)) throw new PipelineInputError(`guidance scale must be a number, got ${guidanceScale}`);
    const rescale = opts.guidanceRescale ?? 0;
    if (!(rescale >= 0 && rescale <= 1)) throw new PipelineInputError(`guidance rescale must be in [0, 1], got ${rescale}`);
    const scheduler = typeof opts.scheduler === "object" ? opts.scheduler : this.createScheduler(opts.scheduler);
    const { generator, seed, seeds } = makeGenerator(opts);
    // diffusers: do_classifier_free_guidance = guidance_scale > 1 and time_cond_proj_dim is None
    const guidance = guidanceScale > 1 && !this.timeCondProjDim;
    opts.signal?.throwIfAborted();
    const embeds = await this.encodePrompt({ ...opts, doClassifierFreeGuidance: guidance });
    if (this.lowMemory) await this.promptEncoder.release();
    const batch = embeds.promptEmbeds.shape[0];
    if (generator instanceof PerImageGenerator && generator.generators.length !== batch) {
      throw new PipelineInputError(`${generator.generators.length} generators (or seeds) were passed for ${batch} images; pass one per image`);
    }
    return { scheduler, generator, seed, seeds, steps, guidance, guidanceScale, embeds, batch };
  }

  /** LCM UNets: get_guidance_scale_embedding(guidance_scale - 1, time_cond_proj_dim) for each image; else none. */
  private timestepCond(p: Prepared): Float32Array | undefined {
    const dim = this.timeCondProjDim;
    if (!dim) return undefined;
    const one = guidanceScaleEmbedding(p.guidanceScale - 1, dim);
    const out = new Float32Array(p.batch * dim);
    for (let b = 0; b < p.batch; b++) out.set(one, b * dim);
    return out;
  }

  /** Assembles the UNet conditioning ([negative, positive] under guidance), denoises, decodes. */
  private async finish(p: Prepared, opts: CommonOptions, timesteps: number[], latents: Float32Array, shape: number[], timeIds: Float32Array): Promise<PipelineOutput> {
    const e = p.embeds;
    const cat = (a: Float32Array | undefined, b: Float32Array) => {
      if (!p.guidance) return b;
      const out = new Float32Array(2 * b.length);
      out.set(a!);
      out.set(b, b.length);
      return out;
    };
    const final = await denoise({
      unet: this.unet, scheduler: p.scheduler, timesteps, latents, shape,
      encoderHiddenStates: cat(e.negativePromptEmbeds?.data, e.promptEmbeds.data),
      textEmbeds: cat(e.negativePooledPromptEmbeds?.data, e.pooledPromptEmbeds.data),
      timeIds, guidance: p.guidance, guidanceScale: p.guidanceScale, guidanceRescale: opts.guidanceRescale ?? 0,
      timestepCond: this.timestepCond(p),
      generator: p.generator, onStep: opts.onStep, signal: opts.signal, stopEarly: opts.stopEarly,
    });
    const out = { data: final.latents, shape };
    opts.signal?.throwIfAborted();
    if (this.lowMemory) await this.unet.release();
    const images = opts.outputType === "latent" ? { data: new Float32Array(0), shape: [0, 0, 0, 3] }
      : opts.fastDecode ? await this.requireTaesd("fastDecode").decodeLatents(out, opts.signal)
        : await decodeLatents(this.vae, out, opts.signal);
    if (this.lowMemory) { await this.vae.release(); await this.taesd?.release(); }
    const ran = final.stepsDone < timesteps.length ? timesteps.slice(0, final.stepsDone) : timesteps;
    return { images, latents: out, seed: p.seed, ...(p.seeds ? { seeds: p.seeds } : {}), timesteps: ran, scheduler: p.scheduler };
  }
}

/** seed / seeds / generator(s) as one NoiseGenerator; a random seed (reported) when none is given. */
function makeGenerator(opts: CommonOptions): { generator: NoiseGenerator; seed?: number | bigint; seeds?: (number | bigint)[] } {
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
function tileImages(image: FloatTensor, batch: number): FloatTensor {
  const [m, c, h, w] = image.shape;
  const data = new Float32Array(batch * c * h * w);
  for (let k = 0; k < batch / m; k++) data.set(image.data, k * image.data.length);
  return { data, shape: [batch, c, h, w] };
}

/** scheduler.setTimesteps with the scheduler's complaints (LCM: more steps than original_inference_steps) as input errors. */
function setTimesteps(scheduler: Scheduler, steps: number): void {
  try {
    scheduler.setTimesteps(steps);
  } catch (e) {
    throw new PipelineInputError((e as Error).message);
  }
}

/**
 * The LCM-LoRA repo id made for this model's architecture (LCM_LORAS); for any other model a
 * PipelineInputError that ends with `otherwise` (how the caller can name one).
 */
export function lcmLoraFor(source: ModelSource, otherwise: string): string {
  const arch = source.architecture ?? architectureOfUnetConfig(source.unet.config);
  const spec = arch && LCM_LORAS[arch as keyof typeof LCM_LORAS];
  if (!spec) throw new PipelineInputError(`the fast preset needs an LCM-LoRA made for this model; ${source.model.dir} is none of ${Object.keys(LCM_LORAS).join(", ")}: ${otherwise}`);
  return spec;
}

/** The fast preset's LoRA and TAESD for this model, downloaded on first use. */
async function presetLoadOptions(opts: PipelineLoadOptions, source: ModelSource, hub: HubOptions & { variant?: Variant }): Promise<Pick<PipelineLoadOptions, "loras" | "taesd">> {
  const preset = fastPreset(opts.preset!);
  if (preset.name !== "fast") throw new PipelineInputError(`unknown preset "${preset.name}" (known: fast)`);
  const lora = await ensureLocal(preset.lcmLora ?? lcmLoraFor(source, `pass { preset: { name: "fast", lcmLora } } (CLI: --lora FILE with --scheduler LCM --steps 4 --guidance 1)`), "lora", hub);
  return {
    loras: [...(opts.loras ?? []), { file: lora, weight: 1 }],
    taesd: opts.taesd ?? await ensureLocal(preset.taesd ?? FAST_TAESD, "taesd", hub),
  };
}

/**
 * A single-file checkpoint carries no tokenizer: when none was found, SSD-1B's two tokenizer folders
 * (the SDXL family shares them, 3 MB) are fetched into the Hugging Face cache where the loader looks.
 */
async function fetchSingleFileTokenizers(opts: PipelineLoadOptions, hub: HubOptions): Promise<void> {
  await snapshotDownload({ repoId: TOKENIZER_REPOS[0], kind: "files", include: ["tokenizer/*", "tokenizer_2/*"] },
    { ...hub, cacheDir: hubCacheDir(opts.env ?? process.env) });
}
