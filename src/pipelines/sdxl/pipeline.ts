/**
 * diffusers' StableDiffusionXLPipeline, StableDiffusionXLImg2ImgPipeline and StableDiffusionXLInpaintPipeline for the SDXL family
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
import type { ModelFolder } from "../../loaders/model-folder.js";
import type { Variant } from "../../loaders/component.js";
import type { ModelSource } from "../../loaders/model-source.js";
import type { LoraFile, LoraSpec } from "../../loaders/lora.js";
import type { TextualInversion } from "../../loaders/textual-inversion.js";
import type { SessionOptions } from "../../runtime/session.js";
import { createScheduler, type Scheduler } from "../../schedulers/index.js";
import type { RgbImage } from "../../image/png.js";
import { isRgbImage } from "../../image/image.js";
import type { EncodePromptOptions, PromptEmbeddings, PromptEncoder } from "../prompt-encoding.js";
import { img2imgTimeIds, txt2imgTimeIds } from "../micro-conditioning.js";
import type { UNetRunner, VaeRunner } from "../sessions.js";
import type { TaesdRunner } from "../taesd-runner.js";
import { PipelineInputError } from "../errors.js";
import { FAST_CALL_DEFAULTS } from "../presets.js";
import { SdxlComponents } from "./components.js";
import { denoise, type DenoiseHook } from "./denoise.js";
import { decode } from "./decode.js";
import { checkSize, conditioningOf, conditioningScheduleOf, extraPositiveBlocks, denoisingEndCut, imageLatents, initInput, initialNoise, prepare, strengthTimesteps, txt2imgLatents, type Prepared } from "./prepare.js";
import { binarizeMask, prepareInpaint } from "./inpaint.js";
import { cropAroundMask, overlayCrop } from "./mask-crop.js";
import { controlImageTensor, controlNetHook } from "./controlnet.js";
import { ControlNetRunner, checkControlNetFits } from "../controlnet-runner.js";
import { ensureLocal, type HubOptions } from "../../hub/index.js";
import type { CommonOptions, GenerateOptions, Img2ImgOptions, InpaintOptions, PipelineLoadOptions, PipelineOutput } from "./options.js";

export class StableDiffusionXLPipeline {
  private constructor(
    /** The loaded components (runners, LoRAs, TAESD) and their lifetimes. */
    readonly components: SdxlComponents,
    /** What a preset changes in every call unless the call sets it. */
    private readonly callDefaults: Partial<CommonOptions> = {},
  ) {}

  /**
   * Opens a diffusers folder, a Hugging Face repo id (downloaded on first use) or a single-file
   * checkpoint (`.safetensors`); reads the LoRAs against the model; compiles the text encoders now,
   * the UNet and VAE per shape on first use.
   */
  static async fromPretrained(dirOrRepoId: string, opts: PipelineLoadOptions = {}): Promise<StableDiffusionXLPipeline> {
    return new StableDiffusionXLPipeline(await SdxlComponents.load(dirOrRepoId, opts), opts.preset ? FAST_CALL_DEFAULTS : {});
  }

  /**
   * This pipeline with another VAE (a diffusers AutoencoderKL folder, a repo id, or a .safetensors VAE
   * file such as sdxl_vae.safetensors) for encoding and decoding; the rest is shared, and its release()
   * frees only that VAE. A server's per-request VAE (A1111's sd_vae, ComfyUI's VAELoader).
   */
  async withVae(vae: string, opts: { variant?: Variant; hub?: HubOptions } = {}): Promise<StableDiffusionXLPipeline> {
    const local = await ensureLocal(vae, "vae", { ...opts.hub, variant: opts.variant });
    return new StableDiffusionXLPipeline(await this.components.withVae(local, { variant: opts.variant, env: opts.hub?.env }), this.callDefaults);
  }

  /**
   * This pipeline with more textual inversions (diffusers' load_textual_inversion, as a new pipeline):
   * new text encoder sessions holding them all; the UNet, VAE and TAESD are shared, and its release()
   * frees only those text encoders.
   */
  async withTextualInversions(added: readonly { file: string; token?: string }[]): Promise<StableDiffusionXLPipeline> {
    return new StableDiffusionXLPipeline(await this.components.withTextualInversions(added), this.callDefaults);
  }

  /**
   * This pipeline with more LoRAs stacked on its own (load-time ones stay): new UNet sessions and,
   * when an added LoRA touches the text encoders, new text-encoder sessions; the VAE, TAESD,
   * tokenizers, configs and weight files are shared. Releasing the variant frees only its own
   * sessions (the server keeps a few variants for per-request LoRAs). A preset's call defaults stay.
   */
  async withLoras(loras: readonly LoraSpec[]): Promise<StableDiffusionXLPipeline> {
    return new StableDiffusionXLPipeline(await this.components.withLoras(loras), this.callDefaults);
  }

  get model(): ModelFolder { return this.components.model; }
  /** model_index.json (empty when absent). */
  get modelIndex(): Record<string, unknown> { return this.components.source.modelIndex; }
  get promptEncoder(): PromptEncoder { return this.components.promptEncoder; }
  get unet(): UNetRunner { return this.components.unet; }
  get vae(): VaeRunner { return this.components.vae; }
  get schedulerConfig(): Record<string, unknown> { return this.components.source.schedulerConfig; }
  /** Where the weights came from: diffusers folder or single file, configs, tokenizers. */
  get source(): ModelSource { return this.components.source; }
  /** The LoRAs applied, as read (format, per-component deltas). */
  get loras(): readonly LoraFile[] { return this.components.loras; }
  /** The textual inversions the text encoders hold (PipelineLoadOptions.textualInversions). */
  get textualInversions(): readonly TextualInversion[] { return this.components.promptEncoder.textualInversions; }
  /** See PipelineLoadOptions.lowMemory. */
  get lowMemory(): boolean { return this.components.lowMemory; }
  /** An SDXL refiner (requires_aesthetics_score): aesthetic-score time ids, text_encoder_2 alone; img2img and inpaint only. */
  get requiresAestheticsScore(): boolean { return this.components.requiresAestheticsScore; }
  /** LCM UNets (time_cond_proj_dim) take the guidance scale as an embedding instead of a CFG batch. */
  get timeCondProjDim(): number | null { return this.unet.config.timeCondProjDim ?? null; }
  /** The execution device the sessions were loaded for (default cpu), e.g. for an upscaler run beside them. */
  get device(): SessionOptions["device"] { return this.components.settings.session?.device; }
  /** Pixels per latent pixel (8 for SDXL). */
  get vaeScaleFactor(): number { return this.components.vaeScaleFactor; }
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
    this.checkNotInpaintingUNet("generate");
    if (this.requiresAestheticsScore) throw new PipelineInputError("this model is an SDXL refiner (requires_aesthetics_score): it continues another model's run; use img2img (with denoisingStart on a base model's denoisingEnd latents, or strength on an image)");
    const [height, width] = this.txt2imgSize(opts);
    checkSize(this.components, width, height);
    const p = await this.prepare(opts);
    const f = this.vaeScaleFactor;
    const shape = [p.batch, this.unet.config.inChannels, height / f, width / f];
    const latents = txt2imgLatents(p, shape, opts.latents);
    const timeIds = txt2imgTimeIds(opts, height, width, p.batch, p.guidance, extraPositiveBlocks(p));
    const timesteps = denoisingEndCut(p, Array.from(p.scheduler.timesteps), opts.denoisingEnd);
    return this.run(p, opts, timesteps, latents, shape, timeIds);
  }

  /** Image to image (StableDiffusionXLImg2ImgPipeline.__call__). */
  async img2img(callOpts: Img2ImgOptions): Promise<PipelineOutput> {
    const opts = this.withCallDefaults(callOpts);
    this.checkNotInpaintingUNet("img2img");
    const strength = opts.strength ?? 0.3;
    if (!(strength > 0 && strength <= 1)) throw new PipelineInputError(`strength must be in (0, 1], got ${strength}`);
    const init = initInput(this.components, opts.image);
    const p = await this.prepare(opts);
    const start = opts.denoisingStart;
    const timesteps = denoisingEndCut(p, strengthTimesteps(p, strength, start), opts.denoisingEnd, start);
    const imageLats = await imageLatents(this.components, p, init);
    // denoising_start: the image is another run's partly denoised latents, continued as they are
    const latents = start !== undefined ? imageLats.data : p.scheduler.addNoise(imageLats.data, initialNoise(p, imageLats.shape), timesteps[0]);
    const timeIds = img2imgTimeIds(opts, init.height, init.width, p.batch, p.guidance, this.requiresAestheticsScore, extraPositiveBlocks(p));
    return this.run(p, opts, timesteps, latents, imageLats.shape, timeIds);
  }

  /**
   * Inpainting (StableDiffusionXLInpaintPipeline.__call__): repaints the mask's white area of the
   * image; a 4-channel UNet (SSD-1B, SDXL) keeps the rest by blending it back every step, a 9-channel
   * inpainting UNet is given the mask and the masked image. With denoisingEnd / denoisingStart the
   * run is split between two models (inpainting with a refiner: recipes/refiner.ts inpaintRefined).
   */
  async inpaint(callOpts: InpaintOptions): Promise<PipelineOutput> {
    const opts = this.withCallDefaults(callOpts);
    if (opts.paddingMaskCrop !== undefined) {
      const c = cropAroundMask(opts.image, opts.maskImage, opts.paddingMaskCrop);
      const out = await this.inpaint({ ...opts, paddingMaskCrop: undefined, image: c.image, maskImage: c.mask });
      return opts.outputType === "latent" ? out : { ...out, images: overlayCrop(c, out.images) };
    }
    const strength = opts.strength ?? 0.9999;
    if (!(strength > 0 && strength <= 1)) throw new PipelineInputError(`strength must be in (0, 1], got ${strength}`);
    const init = initInput(this.components, opts.image);
    const mask = binarizeMask(opts.maskImage, init);
    const p = await this.prepare(opts);
    const { denoisingStart } = opts;
    const timesteps = denoisingEndCut(p, strengthTimesteps(p, strength, denoisingStart), opts.denoisingEnd, denoisingStart);
    const start = await prepareInpaint(this.components, p, init, mask, strength, timesteps, { latentFill: opts.latentFill, denoisingStart });
    const timeIds = img2imgTimeIds(opts, init.height, init.width, p.batch, p.guidance, this.requiresAestheticsScore, extraPositiveBlocks(p));
    return this.run(p, opts, timesteps, start.latents, start.shape, timeIds, start.hooks);
  }

  /**
   * Opens a ControlNet (diffusers ControlNetModel folder, Hub repo id such as
   * diffusers/controlnet-canny-sdxl-1.0 (downloaded on first use), or a .safetensors file with
   * `config`) for `controlnets: [{ controlnet, image }]`, with the pipeline's session options; refused
   * when its configuration cannot drive this UNet. Release it with its own release().
   */
  async loadControlNet(spec: string, opts: { variant?: Variant; config?: string; hub?: HubOptions } = {}): Promise<ControlNetRunner> {
    const path = await ensureLocal(spec, "controlnet", { ...opts.hub, variant: opts.variant });
    const net = ControlNetRunner.open(path, { variant: opts.variant, config: opts.config, session: this.components.settings.session });
    checkControlNetFits(net.config, this.unet.config, this.vae.config.latentChannels);
    return net;
  }

  /** The TAESD loaded with { taesd } or loadTaesd, if any. */
  get taesd(): TaesdRunner | undefined { return this.components.taesd; }

  /**
   * Loads a TAESD (folder, HF cache repo id or decoder file) for previewDecode and fastDecode, replacing
   * any loaded one; its session uses the pipeline's session options unless `opts.session` is given.
   */
  loadTaesd(spec: string, opts: { variant?: Variant; session?: SessionOptions; env?: NodeJS.ProcessEnv } = {}): Promise<TaesdRunner> {
    return this.components.loadTaesd(spec, opts);
  }

  /**
   * A preview of image `index` of latents [B, C, h, w] as the denoising loop leaves them (StepInfo's
   * latents and shape): the TAESD decode at full resolution, as 8-bit RGB. Needs a loaded TAESD.
   */
  async previewDecode(latents: Float32Array, shape: readonly number[], index = 0): Promise<RgbImage> {
    return this.components.requireTaesd("previewDecode").previewImage(latents, shape, index);
  }

  /**
   * diffusers' enable_vae_tiling(): from now on images larger than `tileSize` pixels a side (default: the
   * VAE config's sample_size, 1024 for the SDXL VAE) are VAE-decoded and encoded in overlapping tiles, so the
   * VAE's memory is that of one tile whatever the image size (src/pipelines/vae-tiling.ts). Shared with
   * LoRA variants, which use this pipeline's VAE.
   */
  enableVaeTiling(tileSize?: number): void {
    this.vae.tiling = tileSize === undefined ? this.vae.defaultTiling : { tileSize };
  }

  /** diffusers' disable_vae_tiling(): the VAE decodes and encodes whole images again. */
  disableVaeTiling(): void { this.vae.tiling = undefined; }

  release(): Promise<void> { return this.components.release(); }

  private withCallDefaults<T extends CommonOptions>(opts: T): T {
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    return { ...this.callDefaults, ...given } as T;
  }

  /** A 9-channel inpainting UNet needs a mask and a masked image: only inpaint can feed it. */
  private checkNotInpaintingUNet(what: string): void {
    const c = this.unet.config.inChannels;
    if (c !== this.vae.config.latentChannels) throw new PipelineInputError(`this model's UNet is an inpainting UNet (${c} input channels: latents, mask, masked image); ${what} cannot drive it: use inpaint`);
  }

  private prepare(opts: CommonOptions): Promise<Prepared> {
    return prepare(this.components, opts, (name) => this.createScheduler(name));
  }

  /** Text-to-image size: as asked, else the first control image's (rounded down to the VAE factor), else the model's default. */
  private txt2imgSize(opts: GenerateOptions): [number, number] {
    const control = opts.controlnets?.[0]?.image;
    if (!control) return [opts.height ?? this.defaultSize, opts.width ?? this.defaultSize];
    const [h, w] = isRgbImage(control) ? [control.height, control.width] : control.shape.slice(-2);
    const m = Math.max(8, this.vaeScaleFactor);
    return [opts.height ?? Math.floor(h / m) * m, opts.width ?? Math.floor(w / m) * m];
  }

  /** The loop and the decode, shared by every entry point; `hooks` are what an entry point adds to the loop. */
  private async run(p: Prepared, opts: CommonOptions, timesteps: number[], latents: Float32Array, shape: number[], timeIds: Float32Array, hooks: DenoiseHook[] = []): Promise<PipelineOutput> {
    const conditioning = conditioningOf(this.components, p, opts, timeIds);
    if (opts.controlnets?.length) {
      const [, , h, w] = shape, f = this.vaeScaleFactor;
      const images = opts.controlnets.map((u, i) => controlImageTensor(u.image, h * f, w * f, `control image ${i + 1}`));
      hooks = [...hooks, controlNetHook(opts.controlnets, images, conditioning, opts.guessMode ?? false, [h, w])];
    }
    const final = await denoise({
      unet: this.unet, scheduler: p.scheduler, timesteps, latents, shape, conditioning,
      generator: p.generator, hooks, onStep: opts.onStep, signal: opts.signal, stopEarly: opts.stopEarly, tiling: p.tiling, freeu: p.freeu, pagLayers: p.pag?.layers,
      conditioningAt: conditioningScheduleOf(this.components, p, opts, timeIds),
    });
    const out = { data: final.latents, shape };
    const images = await decode(this.components, out, opts);
    const ran = final.stepsDone < timesteps.length ? timesteps.slice(0, final.stepsDone) : timesteps;
    return { images, latents: out, seed: p.seed, ...(p.seeds ? { seeds: p.seeds } : {}), timesteps: ran, scheduler: p.scheduler };
  }
}
