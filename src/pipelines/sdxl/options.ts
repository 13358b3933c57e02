/**
 * What the SDXL pipeline takes and gives: load options, the options shared by every entry point
 * (prompts, steps, guidance, seeds, scheduler, callbacks), each entry point's own, and the output.
 */
import type { Variant } from "../../loaders/component.js";
import type { LoraSpec } from "../../loaders/lora.js";
import type { SessionOptions } from "../../runtime/session.js";
import type { NoiseGenerator, Scheduler } from "../../schedulers/index.js";
import type { FloatTensor } from "../../image/image.js";
import type { RgbImage } from "../../image/png.js";
import type { HubOptions } from "../../hub/index.js";
import type { EncodePromptOptions, PromptSyntax } from "../prompt-encoding.js";
import type { MicroConditioning } from "../micro-conditioning.js";
import type { Preset } from "../presets.js";
import type { StepCallback } from "./denoise.js";
import type { LatentFill, MaskInput } from "./inpaint.js";
import type { ControlNetUnit } from "./controlnet.js";
import type { TextEncoderWeights, UNetWeights } from "../sessions.js";
import type { FreeUOptions } from "../freeu.js";
import type { PagOptions } from "../pag.js";
import type { SubPromptOption } from "./composable.js";

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
   * encoders at `weight` (the strength; 1 = as trained; `textEncoderWeight` for the text encoders
   * when they should differ, A1111's <lora:NAME:TE:UNET>). They stack. A tensor that matches no module
   * of this model is an error (LoraError) naming it.
   */
  loras?: LoraSpec[];
  /**
   * Textual inversions (SDXL embeddings: .safetensors with clip_l and clip_g, as A1111 and ComfyUI
   * keep them), named in prompts by `token` (default: the file name without extension): the exact
   * token as diffusers' load_textual_inversion adds it; with promptSyntax "a1111" the name as A1111
   * finds it; with "comfyui" `embedding:NAME`. The text encoders are compiled with their vectors.
   */
  textualInversions?: { file: string; token?: string }[];
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
  /** A diffusers AutoencoderKL folder (or repo id in the HF cache, e.g. madebyollin/sdxl-vae-fp16-fix), or a standalone .safetensors VAE file (sdxl_vae.safetensors; see loaders/vae-file.ts), used instead of the model's VAE. */
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
  /**
   * diffusers' enable_vae_tiling() at load: images larger than the tile (default: the VAE config's
   * sample_size; `{ tileSize }` in pixels, a multiple of 32) are VAE-decoded and encoded in tiles overlapping
   * by a quarter, blended as diffusers blends them, so the VAE needs the memory of one tile: on the CPU a
   * 1024x1024 SDXL VAE decode peaks at 5.5 GiB whole and 1.6 GiB in tiles of 512 (1.6x the time;
   * bench/results/vae-tiling-cpu.md), a whole one grows with the pixels. Tile seams are softened, not gone.
   * Default off, as in diffusers; pipe.enableVaeTiling() / disableVaeTiling() change it later.
   */
  vaeTiling?: boolean | { tileSize: number };
  /**
   * The UNet's arithmetic. "float16" as diffusers runs an fp16 UNet: fp16 weights (*.fp16.safetensors
   * as stored) and activations, GroupNorm statistics and softmax in float32 (unetFloat32Ops). "auto" (default):
   * float16 on WebGPU, float32 on the CPU, whose provider computes most of an fp16 graph in float32 anyway.
   */
  unetPrecision?: "float32" | "float16" | "auto";
  /**
   * How the UNet holds its Linear layers' weights (attention projections and feed-forwards: most of its
   * parameters). "q8": 8 bits a weight, quantized in memory when the session is made as
   * stable-diffusion.cpp's q8_0 (blocks of 32, one fp16 scale each; the files are not touched), for a
   * smaller UNet session a little slower than float on the CPU and an error near fp16's (UNetWeights in
   * src/pipelines/sessions.ts has the figures). A LoRA's deltas on those layers run beside the 8-bit product
   * (as diffusers' unfused PEFT LoRA), so the checkpoint's weights are what is quantized. "float" (default): as stored.
   */
  unetWeights?: UNetWeights;
  /**
   * How the two text encoders hold their Linear layers' weights: "q8" as unetWeights, for sessions 1.9 GiB
   * smaller (SDXL-family CLIP-L + CLIP-G) and encodes 2-3x slower on the CPU (seconds per prompt), with
   * embeddings within ~1e-2 relative L2 of float (TextEncoderWeights in src/pipelines/sessions.ts has the
   * figures). A LoRA's deltas on those layers run beside the product. "float" (default): as stored.
   */
  textEncoderWeights?: TextEncoderWeights;
}

export interface CommonOptions extends Omit<EncodePromptOptions, "doClassifierFreeGuidance">, MicroConditioning, PagOptions {
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
  /**
   * AUTOMATIC1111's variation seeds (subseed / subseed_strength): the initial noise of image i is
   * slerped towards the noise of variationSeed + i (or variationSeeds[i]) by variationStrength in [0, 1].
   */
  variationSeed?: number | bigint | readonly (number | bigint)[];
  variationStrength?: number;
  /**
   * AUTOMATIC1111's "resize seed from" (seed_resize_from_w / _h), in pixels: each image's noise is what
   * its seed gives at this size (centred; cut or surrounded by the real size's noise), so a seed keeps
   * its composition across sizes. Needs `seeds`, or one image with `seed`.
   */
  seedResizeFrom?: { width: number; height: number };
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
  /**
   * AUTOMATIC1111's tiling: every Conv2d of the UNet and the VAE pads circularly (torch's padding_mode
   * "circular"), so the image tiles seamlessly; compiles sessions of their own. TAESD and ControlNets
   * keep zero padding, as in A1111.
   */
  tiling?: boolean;
  /**
   * FreeU (diffusers' enable_freeu(s1, s2, b1, b2); ComfyUI's FreeU / FreeU_V2 with `variant`): the up
   * blocks' backbone features scaled by b1, b2 and their skip features' lowest frequencies by s1, s2
   * (FREEU_SDXL: the authors' values for SDXL). Compiles a UNet session of its own.
   */
  freeu?: FreeUOptions;
  /**
   * A1111's hires fix second pass: its prompt editing ([a:b:when], A1111 syntax) counts as A1111's does
   * there, integers from the end of a first pass of this many steps and fractions from 1 (generateHires sets it).
   */
  promptEditingBaseSteps?: number;
  /**
   * Sub-prompts in place of `prompt` (ComfyUI's ConditioningCombine: weights 1/n each), each a positive
   * block of the UNet batch guided uncond + cfg·Σ w·(cond_i - uncond) as A1111's AND is.
   */
  subPrompts?: readonly SubPromptOption[];
  /** Prompt editing: the loop's first model call counts as this one (a refiner going on from a base's calls, as in A1111's one sampler run). */
  promptEditingFirstCall?: number;
  /** Decode the final latents with the loaded TAESD instead of the VAE (much faster, a little less detail). */
  fastDecode?: boolean;
  /**
   * ControlNets with their control images, scales and step windows (several: residuals summed, as
   * diffusers' MultiControlNetModel); load nets with pipe.loadControlNet. Text-to-image takes its
   * default size from the first control image.
   */
  controlnets?: readonly ControlNetUnit[];
  /** ControlNet guess mode: the nets see only the conditional half, their residuals scaled down per layer. */
  guessMode?: boolean;
  /**
   * diffusers' denoising_end, in (0, 1): stop once this fraction of the noise schedule is done (the
   * timesteps at or above round(1000 - denoisingEnd * 1000) run), leaving noisy latents for another
   * model to finish with `img2img({ image: latents, denoisingStart })`: SDXL's base + refiner
   * ("ensemble of expert denoisers"), or any two SDXL-family models. Use with outputType "latent".
   */
  denoisingEnd?: number;
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
  /**
   * diffusers' denoising_start, in (0, 1): the image is latents partly denoised by another run (its
   * denoisingEnd), taken as they are (no noise added, strength ignored), and only the timesteps below
   * round(1000 - denoisingStart * 1000) run (one more for a second-order scheduler, so no step is cut
   * in half). The second half of a base + refiner pair.
   */
  denoisingStart?: number;
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

export interface InpaintOptions extends CommonOptions {
  /**
   * The image to repaint: 8-bit RGB, or [M, 3, H, W] floats in [0, 1]. Its size is the output size.
   * Or, with denoisingStart and a 4-channel UNet, another inpainting run's latents [M, C, h, w] (its
   * denoisingEnd output, whose known area is the clean image), as diffusers' refiner inpaints.
   */
  image: FloatTensor | RgbImage;
  /**
   * Where to repaint: white (>= 0.5 after grayscale) = repaint, black = keep; an RGB image of the
   * image's size (converted as PIL's convert("L")), or floats [H, W], [1, H, W], [M, 1, H, W] in [0, 1].
   */
  maskImage: MaskInput;
  /** Fraction of the schedule to run, in (0, 1]; 1 starts from pure noise. Default 0.9999, as in diffusers. */
  strength?: number;
  /**
   * padding_mask_crop: inpaint only the mask's bounding box grown by this many pixels (at the full
   * size, so with more detail) and paste it back over the original; needs 8-bit image and mask.
   */
  paddingMaskCrop?: number;
  /**
   * What the masked init latents start as when strength < 1 (A1111's inpainting_fill 2 "latent noise",
   * 3 "latent nothing"); default the image's own latents, as diffusers.
   */
  latentFill?: LatentFill;
  /**
   * denoising_start, as img2img's: the image latents are continued as they are (strength ignored),
   * from the timesteps below round(1000 - denoisingStart * 1000); the known area is blended back at
   * every step as usual. The second half of inpainting with a refiner.
   */
  denoisingStart?: number;
}
