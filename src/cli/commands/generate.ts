import { existsSync, mkdirSync } from "node:fs";
import { writeFileAtomically } from "../../util/atomic-write.js";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { randomInt } from "node:crypto";
import { StableDiffusionXLPipeline, type CommonOptions, type PipelineLoadOptions, type PipelineOutput } from "../../pipelines/sdxl/index.js";
import { PROMPT_SYNTAXES, type PromptSyntax } from "../../pipelines/prompt-encoding.js";
import { parseLoraArg, type LoraSpec } from "../../loaders/lora.js";
import { scanEmbeddingsFolder, TextualInversionError, type EmbeddingsFolder } from "../../loaders/textual-inversion.js";
import { PipelineInputError } from "../../pipelines/errors.js";
import { checkPipelineLimits } from "../../pipelines/limits.js";
import type { StepInfo } from "../../pipelines/sdxl/index.js";
import { createScheduler } from "../../schedulers/index.js";
import { encodePng } from "../../image/png.js";
import { toRgb8 } from "../../image/image.js";
import { formatInfotext, samplerLabel, type GenerationInfo } from "../../image/infotext.js";
import { Upscaler } from "../../pipelines/upscaler.js";
import { generateRefined, img2imgRefined } from "../../recipes/refiner.js";
import { builtinPixelUpscale, checkLatentMode, esrganPixelUpscale, generateHires, isLatentMode, type HiresOptions } from "../../recipes/hires-fix.js";
import { UsageError } from "../usage-error.js";
import { UNET_WEIGHTS, type UNetWeights } from "../../pipelines/sessions.js";
import { checkTileSize } from "../../pipelines/vae-tiling.js";
import { parseDevice, resolveDevice, type DeviceChoice } from "../../runtime/device.js";
import { HUB_HELP, HUB_OPTIONS, hubOptionsFrom } from "../hub-flags.js";
import { parseRepoSpec } from "../../hub/index.js";
import { REFINER_HELP, REFINER_OPTIONS, parseRefiner, refinerInfo, withRefiner } from "../refiner-flags.js";
import { FREEU_HELP, FREEU_OPTIONS, parseFreeU } from "../freeu-flags.js";
import { freeuInfoFields } from "../../pipelines/freeu.js";
import { PAG_HELP, PAG_OPTIONS, parsePag } from "../pag-flags.js";
import { pagInfoFields } from "../../pipelines/pag.js";
import { CONTROLNET_HELP, CONTROLNET_OPTIONS, openControlNets, parseControlNets, type ParsedControlNets } from "../controlnet-flags.js";
import { drawStepBar, stepBarLine } from "../../util/step-bar.js";

const COMMON_HELP = `  --model M            diffusers folder, Hugging Face repo id (downloaded into the HF cache on first use),
                       or an original single-file checkpoint FILE.safetensors (SGM / AUTOMATIC1111 /
                       ComfyUI; also REPO_ID/FILE.safetensors); default segmind/SSD-1B
  --fast               the fast preset for CPUs: the model's LCM-LoRA (latent-consistency/lcm-lora-ssd-1b
                       for SSD-1B), the LCM scheduler, 4 steps, guidance 1 and TAESD decoding
                       (madebyollin/taesdxl), about 10x less work; --steps etc. still override
  --config DIR         with a single file: a diffusers folder with the model's configs (and tokenizer/,
                       tokenizer_2/); default: the built-in configs of the detected SDXL / SSD-1B / Vega, and
                       tokenizers from a diffusers folder next to the file or the HF cache (SSD-1B, SDXL base)
  --vae DIR|FILE       a diffusers AutoencoderKL folder or cached repo id, or a .safetensors VAE file (A1111 / ComfyUI
                       models/VAE, e.g. sdxl_vae.safetensors), used instead of the model's VAE
                       (e.g. madebyollin/sdxl-vae-fp16-fix); its latent channels must match the UNet
  --vae-precision P    fp16|fp32|auto: the VAE decoder's arithmetic; an fp16 decode that overflows (NaN) is
                       redone in fp32 with a warning (default auto: fp16 on webgpu for a VAE with
                       force_upcast false such as the fp16-fix VAE, else fp32)
  --vae-tiling         VAE-decode (and encode) images larger than the tile in overlapping tiles, blended as
                       diffusers' enable_vae_tiling does: the VAE then needs the memory of one tile (on cpu
                       a 1024x1024 decode peaks at 5.5 GiB) whatever the image size; seams are softened
  --vae-tile-size PX   the tile's side in pixels, a multiple of 32 (implies --vae-tiling; default: the VAE
                       config's sample_size, 1024 for the SDXL VAE; 512: a 1024x1024 decode in 1.6 GiB, 1.6x the time)
  --unet-precision P   fp16|fp32|auto: the UNet's arithmetic (fp16: GroupNorm, softmax and the timestep
                       sinusoids stay fp32; default auto: fp16 on webgpu, fp32 on cpu)
  --unet-weights W     float|q8: q8 holds the UNet's Linear layers (most of its weights) in 8 bits, made in
                       memory (stable-diffusion.cpp's q8_0): a UNet session ~2 GiB (SSD-1B) / ~3.9 GiB (SDXL)
                       smaller, 4-17 % slower a step on cpu, an error near fp16's (default float)
  --text-encoder-weights W
                       float|q8: the same for the two text encoders: their sessions 1.9 GiB smaller, a
                       prompt's encoding 2-3x slower on cpu (seconds), embeddings within ~1e-2 (default float)
  --taesd DIR|FILE     a TAESD (tiny autoencoder): a diffusers AutoencoderTiny folder, a cached repo id
                       (madebyollin/taesdxl) or a taesdxl_decoder.safetensors file; used by --fast-decode
  --fast-decode        decode the final latents with the TAESD instead of the VAE: several times faster,
                       a little less fine detail (needs --taesd)
  --lora FILE[:W]      a LoRA / LoCon .safetensors (PEFT/diffusers or kohya; or a Hub REPO_ID[/FILE]) at strength W (default 1;
                       FILE:TE:UNET gives the text encoders and the UNet their own, as A1111's tag);
                       repeat to stack several. Tensors matching no module of the model are an error
  --embedding FILE     an SDXL textual inversion (.safetensors with clip_l and clip_g), named in prompts by its file
                       name without extension (as diffusers' added token; A1111's name with --prompt-syntax a1111;
                       embedding:NAME with comfyui); or diffusers' trained pair (learned_embeds.safetensors and
                       learned_embeds_2.safetensors: either file or their folder), named by its placeholder token;
                       repeat for several
  --embeddings-dir DIR every SDXL embedding under DIR, as A1111's embeddings folder (other files are skipped)
  --prompt TEXT        what to draw (required); repeat for several prompts (one image each, times
                       --num-images), as diffusers' list prompts
  --negative-prompt T  what to avoid (default none: zero embeddings, as diffusers); once for all prompts
                       or once per --prompt
  --original-size H,W  SDXL micro-conditioning: the size the model should think the training image had
                       (default the output size); --crops-coords-top-left T,L (default 0,0) and
                       --target-size H,W (default the output size) likewise
  --prompt-syntax S    diffusers (default: plain text, cut at 77 tokens), a1111: (emphasis), [less],
                       (word:1.3), BREAK, prompt editing ([from:to:when], [to:when], [from::when], [a|b]), AND,
                       and prompts longer than 75 tokens in 77-token chunks, or comfyui:
                       ComfyUI's (word), (word:1.3) and word-wise chunks
  --clip-skip N        diffusers' clip_skip: both text encoders' hidden states N layers before SDXL's
                       penultimate one (default 0; A1111's and ComfyUI's "clip skip N + 2")
  --steps N            denoising steps (default 25)
  --guidance G         classifier-free guidance scale, off at <= 1 (default 5); for LCM UNets
                       (time_cond_proj_dim) the scale is embedded instead and there is no CFG batch
  --seed S             torch CPU generator seed (default random; always reported)
  --variation-seed V, --variation-strength X  AUTOMATIC1111's variation seeds: image i's initial noise
                       is slerped towards the noise of seed V + i by X in [0, 1]
  --scheduler NAME     A1111 sampler ("Euler", "Euler a", "LMS", "DPM2 a", "DPM++ 3M SDE", "PLMS", "LCM", ...),
                       optionally with an A1111 schedule type ("DPM++ 2M Karras", "Euler SGM Uniform",
                       "LMS Exponential", "DPM2 Beta"), or a diffusers class (default: the model's)
  --seed-resize-from W,H  AUTOMATIC1111's resize seed from: the seed's noise as at W x H pixels, centred
                       (keeps a seed's composition at another size; one image)
  --tiling             AUTOMATIC1111's tiling: circular padding in every UNet and VAE conv, so the image
                       tiles seamlessly (left edge continues the right, top the bottom)
${FREEU_HELP}
${PAG_HELP}
  --num-images N       images for the prompt (default 1)
  --output FILE.png    where to write (several images: FILE-0.png, FILE-1.png, ...; default ssd1b-SEED.png)
  --variant fp16|fp32  which weight files to load (default fp32 when present, else fp16)
  --device cpu|webgpu|auto  onnxruntime execution provider (default cpu; auto: webgpu on a hardware
                       GPU with a Vulkan driver, else cpu)
${CONTROLNET_HELP}
${HUB_HELP}`;

export const generateUsage = `ssd1b generate --prompt TEXT [--model M] [--width W --height H] [options]
  Text to image, equal to diffusers' StableDiffusionXLPipeline. Writes PNGs with AUTOMATIC1111 "parameters".
${COMMON_HELP}
  --width W, --height H  multiples of 8 (default UNet sample_size x VAE scale, 1024 for SSD-1B)
  --hires-scale S      AUTOMATIC1111's hires fix: generate at --width x --height, upscale by S (the size
                       rounded down to a multiple of 8), then img2img at that size with the same seed
                       (any --hires-* flag turns it on; default scale 2)
  --hires-upscaler U   Latent (bilinear, default), "Latent (bicubic)", "Latent (nearest)", "Latent (nearest-exact)"
                       on the latents; Lanczos, Nearest on the decoded image; or an ESRGAN FILE.safetensors
  --hires-steps N      the second pass's steps before the strength cut (default: --steps)
  --hires-strength D   the second pass's denoising strength in (0, 1] (default 0.7)
${REFINER_HELP}; with --hires-*
                       the refiner takes over in the second pass (A1111's hires_fix_refiner_pass "second pass")`;

/** parseArgs declarations of the model-loading flags (see parseModelLoad). */
export const MODEL_LOAD_OPTIONS = {
  ...HUB_OPTIONS,
  config: { type: "string" },
  vae: { type: "string" },
  taesd: { type: "string" },
  "vae-precision": { type: "string" },
  "vae-tiling": { type: "boolean" },
  "vae-tile-size": { type: "string" },
  "unet-precision": { type: "string" },
  "unet-weights": { type: "string" },
  "text-encoder-weights": { type: "string" },
  lora: { type: "string", multiple: true },
  embedding: { type: "string", multiple: true },
  "embeddings-dir": { type: "string" },
  "prompt-syntax": { type: "string" },
} as const;

export const COMMON_OPTIONS = {
  model: { type: "string", default: "segmind/SSD-1B" },
  ...MODEL_LOAD_OPTIONS,
  prompt: { type: "string", multiple: true },
  "negative-prompt": { type: "string", multiple: true },
  "original-size": { type: "string" },
  "crops-coords-top-left": { type: "string" },
  "target-size": { type: "string" },
  "variation-seed": { type: "string" },
  "variation-strength": { type: "string" },
  "seed-resize-from": { type: "string" },
  "clip-skip": { type: "string" },
  steps: { type: "string" },
  guidance: { type: "string" },
  fast: { type: "boolean" },
  seed: { type: "string" },
  scheduler: { type: "string" },
  "fast-decode": { type: "boolean" },
  tiling: { type: "boolean" },
  ...FREEU_OPTIONS,
  ...PAG_OPTIONS,
  "num-images": { type: "string", default: "1" },
  output: { type: "string" },
  variant: { type: "string" },
  device: { type: "string", default: "cpu" },
  ...CONTROLNET_OPTIONS,
} as const;

export type Values = Record<string, string | string[] | boolean | undefined>;

/** A flag given once as text (undefined when absent). */
export function stringFlag(values: Values, name: string): string | undefined {
  const raw = values[name];
  if (raw === undefined || typeof raw === "string") return raw;
  throw new UsageError(`--${name} takes one value`);
}

/** A whole number from a flag, with the flag named in the error. */
export function intFlag(values: Values, name: string, min: number): number | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(v)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  if (v < min) throw new UsageError(`--${name} must be at least ${min}, got ${v}`);
  return v;
}

export function numberFlag(values: Values, name: string): number | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
  return v;
}

/** Everything generate and img2img share, checked before any model is loaded. */
export interface ParsedCommon {
  model: string;
  /** Single-file configs folder, VAE override, TAESD and LoRAs: what fromPretrained takes besides the model. */
  load: Pick<PipelineLoadOptions, "config" | "vae" | "taesd" | "loras" | "hub" | "preset">;
  options: CommonOptions & { seed: number | bigint; numInferenceSteps: number; guidanceScale: number };
  output?: string;
  variant?: "fp16" | "fp32";
  device: DeviceChoice;
  controlnets: ParsedControlNets;
}

/** `--lora FILE[:WEIGHT]` arguments, checked (the file exists, the weight is a number). */
export function parseLoras(args: string[] | undefined): LoraSpec[] | undefined {
  if (!args?.length) return undefined;
  return args.map((arg) => {
    const spec = parseLoraArg(arg);
    if (!Number.isFinite(spec.weight) || !Number.isFinite(spec.textEncoderWeight ?? 0)) throw new UsageError(`--lora ${arg}: the weight must be a number`);
    if (!existsSync(spec.file) && !parseRepoSpec(spec.file)) throw new UsageError(`--lora ${arg}: file not found: ${spec.file}`);
    return spec;
  });
}

/** --vae-precision / --unet-precision: fp16|fp32|auto as the load option's name for it. */
function precisionFlag(values: Values, flag: string): "float16" | "float32" | "auto" | undefined {
  const precision = stringFlag(values, flag);
  const p = precision === undefined ? undefined : ({ fp16: "float16", fp32: "float32", auto: "auto" } as const)[precision];
  if (precision !== undefined && !p) throw new UsageError(`--${flag} must be fp16, fp32 or auto, got "${precision}"`);
  return p;
}

/** --unet-weights / --text-encoder-weights: float or q8. */
function weightsFlag(values: Values, name: string): UNetWeights | undefined {
  const w = stringFlag(values, name);
  if (w !== undefined && !(UNET_WEIGHTS as readonly string[]).includes(w)) throw new UsageError(`--${name} must be ${UNET_WEIGHTS.join(" or ")}, got "${w}"`);
  return w as UNetWeights | undefined;
}

/**
 * The model-loading flags shared by generate, img2img, serve and worker: --config, --vae, --taesd, --vae-precision,
 * --vae-tiling, --vae-tile-size, --unet-precision, --unet-weights, --text-encoder-weights, --lora, --embedding,
 * --embeddings-dir, --prompt-syntax.
 */
export function parseModelLoad(values: Values): Pick<PipelineLoadOptions, "config" | "vae" | "taesd" | "loras" | "textualInversions" | "promptSyntax" | "vaePrecision" | "unetPrecision" | "unetWeights" | "textEncoderWeights" | "vaeTiling" | "hub"> {
  const vaePrecision = precisionFlag(values, "vae-precision");
  const unetPrecision = precisionFlag(values, "unet-precision");
  const unetWeights = weightsFlag(values, "unet-weights");
  const textEncoderWeights = weightsFlag(values, "text-encoder-weights");
  const tileSize = intFlag(values, "vae-tile-size", 1);
  // Checked before the model loads, for the SDXL family's VAE (scale factor 8); the pipeline checks it again for the VAE it loads.
  try {
    if (tileSize !== undefined) checkTileSize(tileSize, 8, "--vae-tile-size");
  } catch (e) {
    throw e instanceof PipelineInputError ? new UsageError(e.message) : e;
  }
  const vaeTiling = tileSize !== undefined ? { tileSize } : values["vae-tiling"] === true ? true : undefined;
  const promptSyntax = stringFlag(values, "prompt-syntax");
  if (promptSyntax !== undefined && !(PROMPT_SYNTAXES as readonly string[]).includes(promptSyntax)) {
    throw new UsageError(`--prompt-syntax must be ${PROMPT_SYNTAXES.slice(0, -1).join(", ")} or ${PROMPT_SYNTAXES.at(-1)}, got "${promptSyntax}"`);
  }
  const config = stringFlag(values, "config"), vae = stringFlag(values, "vae"), taesd = stringFlag(values, "taesd");
  if (config !== undefined && !existsSync(config)) throw new UsageError(`--config folder not found: ${config}`);
  const lora = values.lora;
  return {
    config, vae, taesd, vaePrecision, unetPrecision, unetWeights, textEncoderWeights, vaeTiling, promptSyntax: promptSyntax as PromptSyntax | undefined, hub: hubOptionsFrom(values),
    loras: parseLoras(typeof lora === "string" ? [lora] : Array.isArray(lora) ? lora : undefined),
    textualInversions: embeddingsOf(values).textualInversions,
  };
}

/** --embedding files and the embeddings of --embeddings-dir (scanned here; the pipeline reads and checks them against the model). */
export function embeddingsOf(values: Values): { textualInversions?: { file: string }[]; embeddingsFolder?: EmbeddingsFolder } {
  const raw = values.embedding, files = typeof raw === "string" ? [raw] : Array.isArray(raw) ? raw : [];
  for (const f of files) if (!existsSync(f)) throw new UsageError(`--embedding ${f}: file not found`);
  const dir = stringFlag(values, "embeddings-dir");
  const embeddingsFolder = dir === undefined ? undefined : (() => {
    try { return scanEmbeddingsFolder(dir); } catch (e) { if (e instanceof TextualInversionError) throw new UsageError(`--embeddings-dir ${e.message}`); throw e; }
  })();
  const all = [...files.map((file) => ({ file })), ...(embeddingsFolder?.loaded ?? []).map((e) => ({ file: e.file }))];
  return { ...(all.length ? { textualInversions: all } : {}), ...(embeddingsFolder ? { embeddingsFolder } : {}) };
}

/** The pipeline's input limits as usage errors (exit 2). */
export function limitsAsUsage(o: Parameters<typeof checkPipelineLimits>[0]): void {
  try {
    checkPipelineLimits(o, { width: "--width", height: "--height", steps: "--steps", images: "--num-images" });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** "H,W"-style pairs of the micro-conditioning flags. */
function pairFlag(values: Values, name: string): readonly [number, number] | undefined {
  const raw = stringFlag(values, name);
  if (raw === undefined) return undefined;
  const parts = raw.split(",").map((v) => v.trim());
  const nums = parts.map(Number);
  if (parts.length !== 2 || parts.some((v) => v === "") || !nums.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new UsageError(`--${name} takes two whole numbers as A,B, got "${raw}"`);
  }
  return [nums[0], nums[1]];
}

/** A1111's infotext fields of image i's variation seed. */
function variationInfo(o: CommonOptions, i: number): { variationSeed?: number; variationStrength?: number } {
  if (!o.variationStrength || typeof o.variationSeed !== "number") return {};
  return { variationSeed: o.variationSeed + i, variationStrength: o.variationStrength };
}

/** --seed-resize-from W,H: A1111's resize seed from (one image: the noise comes from its own seed). */
function seedResizeFlag(values: Values, images: number | undefined): { seedResizeFrom?: { width: number; height: number } } {
  const pair = pairFlag(values, "seed-resize-from");
  if (!pair) return {};
  if ((images ?? 1) > 1) throw new UsageError("--seed-resize-from takes one image (--num-images 1)");
  if (pair[0] < 8 || pair[1] < 8) throw new UsageError(`--seed-resize-from ${pair[0]},${pair[1]} is below 8 pixels`);
  return { seedResizeFrom: { width: pair[0], height: pair[1] } };
}

/** --variation-seed and --variation-strength (both or neither). */
function variationFlags(values: Values): { variationSeed?: number; variationStrength?: number } {
  const seed = intFlag(values, "variation-seed", 0), strength = numberFlag(values, "variation-strength");
  if ((seed === undefined) !== (strength === undefined)) throw new UsageError("--variation-seed and --variation-strength go together");
  if (strength !== undefined && !(strength >= 0 && strength <= 1)) throw new UsageError(`--variation-strength must be in [0, 1], got ${strength}`);
  return seed === undefined ? {} : { variationSeed: seed, variationStrength: strength };
}

/** --prompt (repeatable) and --negative-prompt (once, or once per prompt). */
function promptFlags(values: Values): { prompt: string | string[]; negativePrompt?: string | string[] } {
  const list = (name: string) => { const v = values[name]; return v === undefined ? [] : Array.isArray(v) ? v : [String(v)]; };
  const prompts = list("prompt"), negatives = list("negative-prompt");
  if (prompts.length === 0) throw new UsageError("--prompt is required");
  if (negatives.length > 1 && negatives.length !== prompts.length) {
    throw new UsageError(`${negatives.length} --negative-prompt for ${prompts.length} --prompt: give one for all, or one per prompt`);
  }
  const one = (l: string[]) => (l.length === 1 ? l[0] : l);
  return { prompt: one(prompts), negativePrompt: negatives.length ? one(negatives) : undefined };
}

/** `tokens`: parseArgs' tokens (`tokens: true`), for the order of the ControlNet flags. */
export function parseCommon(values: Values, tokens: Parameters<typeof parseControlNets>[0] = []): ParsedCommon {
  const { prompt, negativePrompt } = promptFlags(values);
  const fast = values.fast === true;
  const steps = intFlag(values, "steps", 1) ?? (fast ? 4 : 25);
  const guidance = numberFlag(values, "guidance") ?? (fast ? 1 : 5);
  let seed: number | bigint = randomInt(0, 2 ** 32 - 1);
  const seedFlag = stringFlag(values, "seed");
  if (seedFlag !== undefined) {
    if (!/^-?\d+$/.test(seedFlag.trim())) throw new UsageError(`--seed must be a whole number, got "${seedFlag}"`);
    const big = BigInt(seedFlag.trim());
    if (big < -(1n << 63n) || big >= 1n << 64n) throw new UsageError(`--seed must be in [-2^63, 2^64), got ${big}`);
    seed = Number.isSafeInteger(Number(big)) ? Number(big) : big;
  }
  const schedulerFlag = stringFlag(values, "scheduler");
  if (schedulerFlag !== undefined) {
    try {
      createScheduler(schedulerFlag);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const variant = stringFlag(values, "variant");
  if (variant !== undefined && variant !== "fp16" && variant !== "fp32") throw new UsageError(`--variant must be fp16 or fp32, got "${variant}"`);
  const device = parseDevice(stringFlag(values, "device"));
  if (!device) throw new UsageError(`--device must be cpu, webgpu or auto, got "${stringFlag(values, "device")}"`);
  const numImagesPerPrompt = intFlag(values, "num-images", 1);
  // before the model loads
  limitsAsUsage({ steps, images: (Array.isArray(prompt) ? prompt.length : 1) * (numImagesPerPrompt ?? 1) });
  const { promptSyntax, ...load } = parseModelLoad(values);
  const fastDecode = values["fast-decode"] === true || fast;
  const freeu = parseFreeU(values), pag = parsePag(values);
  if (fastDecode && load.taesd === undefined && !fast) throw new UsageError("--fast-decode needs --taesd DIR|FILE (e.g. --taesd madebyollin/taesdxl)");
  return {
    model: stringFlag(values, "model")!,
    load: fast ? { ...load, preset: "fast" } : load,
    output: stringFlag(values, "output"),
    variant, device, controlnets: parseControlNets(tokens, values),
    options: {
      prompt, negativePrompt, numInferenceSteps: steps, guidanceScale: guidance, seed,
      ...variationFlags(values), ...seedResizeFlag(values, numImagesPerPrompt),
      originalSize: pairFlag(values, "original-size"), cropsCoordsTopLeft: pairFlag(values, "crops-coords-top-left"), targetSize: pairFlag(values, "target-size"),
      scheduler: stringFlag(values, "scheduler") ?? (fast ? "LCM" : undefined), numImagesPerPrompt,
      promptSyntax, fastDecode, ...(values.tiling === true ? { tiling: true } : {}), ...(freeu ? { freeu } : {}), ...pag,
      ...(values["clip-skip"] !== undefined ? { clipSkip: intFlag(values, "clip-skip", 0) } : {}),
    },
  };
}

/** "step 3/25 |######      | 1.52 it/s" on stderr: redrawn in place on a terminal, one line per step otherwise. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): (info: StepInfo) => void {
  const created = performance.now();
  let firstDone = created;
  return ({ step, totalSteps }) => {
    const now = performance.now();
    if (step === 0) firstDone = now;
    const done = step + 1;
    // the first step also compiles the UNet session: the rate comes from the steps after it when there are some
    const secs = done > 1 ? (now - firstDone) / 1000 / (done - 1) : (now - created) / 1000;
    drawStepBar(stream, stepBarLine(done, totalSteps, secs), done === totalSteps);
  };
}

/** FILE.png for one image; FILE-0.png, FILE-1.png, ... for several. */
export function outputNames(output: string, count: number): string[] {
  if (count === 1) return [output];
  const base = output.replace(/\.png$/i, "");
  return Array.from({ length: count }, (_, i) => `${base}-${i}.png`);
}

/** Loads the model, runs `call` with a progress bar, writes the PNGs with their parameters. */
export async function runAndSave(
  parsed: ParsedCommon,
  call: (pipe: StableDiffusionXLPipeline, onStep: (s: StepInfo) => void, signal: AbortSignal) => Promise<PipelineOutput>,
  /** Read after `call` (it may fill it in): fields of the infotext beyond the run's own. */
  extraInfo: Partial<GenerationInfo> = {},
): Promise<string[]> {
  const log = (m: string) => process.stderr.write(m + "\n");
  const { options } = parsed;
  log(`seed: ${options.seed}`);
  const t0 = performance.now();
  const device = await resolveDevice(parsed.device, log);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(parsed.model, {
    // One image run per process: hold one model component in memory at a time.
    lowMemory: true,
    ...parsed.load, variant: parsed.variant, session: { device }, onWarning: (m) => log(`warning: ${m}`),
  });
  for (const l of pipe.loras) log(`lora ${l.file} (${l.format}) at ${l.weight}`);
  if (pipe.taesd) log(`taesd ${pipe.taesd.taesd.where}${options.fastDecode ? " (fast decode)" : ""}`);
  const ac = new AbortController();
  const onSigint = () => { log("interrupted: stopping after this step"); ac.abort(); };
  process.once("SIGINT", onSigint);
  let out: PipelineOutput;
  let releaseNets = async () => {};
  try {
    const src = pipe.source;
    const what = src.format === "single-file" ? ` (single file${src.architecture ? `, ${src.architecture}` : ""}; tokenizers from ${src.tokenizersFrom})` : "";
    log(`loaded ${pipe.model.dir}${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const nets = await openControlNets(pipe, parsed.controlnets, parsed.variant);
    releaseNets = nets.release;
    for (const u of nets.units) log(`controlnet ${u.controlnet.weights.where}`);
    if (nets.units.length) Object.assign(options, { controlnets: nets.units, guessMode: parsed.controlnets.guessMode });
    out = await call(pipe, progressBar(), ac.signal);
  } catch (e) {
    if (e instanceof PipelineInputError) throw new UsageError(e.message);
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
    await releaseNets();
    await pipe.release();
  }
  const [n, height, width] = out.images.shape;
  const output = parsed.output ?? `ssd1b-${options.seed}.png`;
  const names = outputNames(output, n);
  // image i comes from prompt floor(i / numImagesPerPrompt), as diffusers orders a list-prompt batch
  const per = options.numImagesPerPrompt ?? 1;
  const pick = (p: string | string[] | undefined, i: number) => (Array.isArray(p) ? p[Math.floor(i / per)] : p);
  names.forEach((name, i) => {
    const parameters = formatInfotext({
      prompt: pick(options.prompt, i)!, negativePrompt: pick(options.negativePrompt, i),
      steps: options.numInferenceSteps, sampler: samplerLabel(out.scheduler.className, out.scheduler.config as Record<string, unknown>),
      cfgScale: options.guidanceScale, seed: options.seed, width, height, model: pipe.model.name, ...extraInfo,
      ...variationInfo(options, i), tiling: options.tiling, seedResizeFrom: options.seedResizeFrom,
      clipSkip: typeof options.clipSkip === "number" ? options.clipSkip + 2 : undefined,
      ...(options.freeu || options.pagScale ? { extra: { ...extraInfo.extra, ...(options.freeu ? freeuInfoFields(options.freeu) : {}), ...pagInfoFields(options) } } : {}),
    });
    mkdirSync(dirname(name), { recursive: true });
    writeFileAtomically(name, encodePng(toRgb8(out.images, i), { parameters }));
    log(`wrote ${name} (${width}x${height})`);
  });
  log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return names;
}

export async function generateCommand(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({
    args: argv, allowPositionals: true, tokens: true,
    options: {
      ...COMMON_OPTIONS, width: { type: "string" }, height: { type: "string" },
      "hires-scale": { type: "string" }, "hires-steps": { type: "string" }, "hires-strength": { type: "string" }, "hires-upscaler": { type: "string" },
      ...REFINER_OPTIONS,
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (put the prompt in --prompt "...")`);
  const parsed = parseCommon(values, tokens);
  const size = (name: string) => {
    const v = intFlag(values, name, 8);
    if (v !== undefined && v % 8 !== 0) throw new UsageError(`--${name} ${v} is not a multiple of 8 (try ${Math.round(v / 8) * 8})`);
    return v;
  };
  const width = size("width"), height = size("height");
  limitsAsUsage({ width, height });
  const hires = parseHires(values);
  const refiner = parseRefiner(values, parsed);
  if (!hires && !refiner) {
    await runAndSave(parsed, (pipe, onStep, signal) => pipe.generate({ ...parsed.options, width, height, onStep, signal }));
    return;
  }
  // the infotext as A1111 writes it: Size is the first pass's, the Hires fields give the rest
  const info: Partial<GenerationInfo> = { extra: refiner ? refinerInfo(refiner) : {} };
  await runAndSave(parsed, async (pipe, onStep, signal) => {
    const call = { ...parsed.options, width, height, onStep, signal };
    if (!hires) return withRefiner(refiner!, parsed, pipe, (r, at) => generateRefined(pipe, r, call, at));
    const esrgan = hires.file ? await Upscaler.fromFile(hires.file, { session: { device: await resolveDevice(parsed.device, () => {}) } }) : undefined;
    try {
      // with the hires fix the refiner takes over in the second pass, as A1111's default hires_fix_refiner_pass
      const run = (secondPass?: HiresOptions["secondPass"]) => generateHires(pipe, call, { ...hires.options, upscaler: esrgan ? esrganPixelUpscale(esrgan) : hires.options.upscaler, secondPass });
      const out = refiner ? await withRefiner(refiner, parsed, pipe, (r, at) => run((o) => img2imgRefined(pipe, r, o, at))) : await run();
      Object.assign(info, {
        width: width ?? pipe.defaultSize, height: height ?? pipe.defaultSize, denoisingStrength: out.strength,
        extra: { "Hires upscale": hires.options.scale ?? 2, ...(hires.options.steps ? { "Hires steps": hires.options.steps } : {}), "Hires upscaler": hires.name, ...info.extra },
      });
      return out;
    } finally {
      await esrgan?.release();
    }
  }, info);
}

/** The --hires-* flags (undefined when none is given), checked before the model loads. */
function parseHires(values: Values): { options: HiresOptions; name: string; file?: string } | undefined {
  if (!["hires-scale", "hires-steps", "hires-strength", "hires-upscaler"].some((k) => values[k] !== undefined)) return undefined;
  const scale = numberFlag(values, "hires-scale"), steps = intFlag(values, "hires-steps", 0), strength = numberFlag(values, "hires-strength");
  if (scale !== undefined && !(scale > 0)) throw new UsageError(`--hires-scale must be above 0, got ${scale}`);
  if (strength !== undefined && !(strength > 0 && strength <= 1)) throw new UsageError(`--hires-strength must be in (0, 1], got ${strength}`);
  const name = stringFlag(values, "hires-upscaler") ?? "Latent";
  const options: HiresOptions = { scale, steps, strength };
  if (/\.safetensors$/i.test(name)) {
    if (!existsSync(name)) throw new UsageError(`--hires-upscaler ${name}: file not found`);
    return { options, name: basename(name).replace(/\.safetensors$/i, ""), file: name };
  }
  try {
    if (isLatentMode(name)) checkLatentMode(name);
    else builtinPixelUpscale(name);
  } catch (e) {
    throw new UsageError(`--hires-upscaler: ${(e as Error).message}`);
  }
  return { options: { ...options, upscaler: name }, name };
}
