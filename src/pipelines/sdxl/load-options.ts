/**
 * Load-time choices made from the options and the model: the UNet's and VAE decoder's precision, the fast
 * preset's LCM-LoRA and TAESD, and the tokenizers a single-file checkpoint lacks.
 */
import type { Variant } from "../../loaders/component.js";
import { TOKENIZER_REPOS, type ModelSource } from "../../loaders/model-source.js";
import { hubCacheDir } from "../../loaders/model-folder.js";
import { architectureOfUnetConfig } from "../../loaders/single-file.js";
import { ensureLocal, snapshotDownload, type HubOptions } from "../../hub/index.js";
import { PipelineInputError } from "../errors.js";
import { FAST_TAESD, LCM_LORAS, fastPreset } from "../presets.js";
import type { PipelineLoadOptions } from "./options.js";
import { UNET_WEIGHTS, type TextEncoderWeights, type UNetWeights } from "../sessions.js";

/** PipelineLoadOptions.vaePrecision resolved for a VAE config. */
export function vaePrecision(opts: PipelineLoadOptions, vaeConfig: Record<string, unknown>): "float32" | "float16" {
  const p = opts.vaePrecision ?? "auto";
  if (p !== "auto" && p !== "float32" && p !== "float16") throw new PipelineInputError(`vaePrecision must be float32, float16 or auto, got "${p}"`);
  if (p !== "auto") return p;
  return opts.session?.device === "webgpu" && vaeConfig.force_upcast === false ? "float16" : "float32";
}

/** PipelineLoadOptions.unetPrecision resolved: "auto" is float16 on WebGPU, float32 on the CPU. */
export function unetPrecision(opts: PipelineLoadOptions): "float32" | "float16" {
  const p = opts.unetPrecision ?? "auto";
  if (p !== "auto" && p !== "float32" && p !== "float16") throw new PipelineInputError(`unetPrecision must be float32, float16 or auto, got "${p}"`);
  if (p !== "auto") return p;
  return opts.session?.device === "webgpu" ? "float16" : "float32";
}

/** PipelineLoadOptions.unetWeights checked; undefined when unset (as stored, unless a developer override says otherwise). */
export function unetWeights(opts: PipelineLoadOptions): UNetWeights | undefined {
  return weightsOption(opts, "unetWeights");
}

/** PipelineLoadOptions.textEncoderWeights checked; undefined when unset (as stored). */
export function textEncoderWeights(opts: PipelineLoadOptions): TextEncoderWeights | undefined {
  return weightsOption(opts, "textEncoderWeights");
}

function weightsOption(opts: PipelineLoadOptions, name: "unetWeights" | "textEncoderWeights"): UNetWeights | undefined {
  const w = opts[name];
  if (w !== undefined && !UNET_WEIGHTS.includes(w)) throw new PipelineInputError(`${name} must be ${UNET_WEIGHTS.join(" or ")}, got "${w}"`);
  return w;
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
export async function presetLoadOptions(opts: PipelineLoadOptions, source: ModelSource, hub: HubOptions & { variant?: Variant }): Promise<Pick<PipelineLoadOptions, "loras" | "taesd">> {
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
export async function fetchSingleFileTokenizers(opts: PipelineLoadOptions, hub: HubOptions): Promise<void> {
  await snapshotDownload({ repoId: TOKENIZER_REPOS[0], kind: "files", include: ["tokenizer/*", "tokenizer_2/*"] },
    { ...hub, cacheDir: hubCacheDir(opts.env ?? process.env) });
}
