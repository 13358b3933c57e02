/**
 * Built-in diffusers configs for the SDXL-family architectures a single-file (SGM / AUTOMATIC1111)
 * checkpoint can hold: such files carry weights only, so the configs come from here (or `--config DIR`).
 */
import { SDXL_REFINER_UNET, SDXL_UNET, SSD1B_UNET, VEGA_UNET } from "./unet.js";
import { SDXL_VAE } from "./vae.js";
import { SDXL_SCHEDULER } from "./scheduler.js";
import { CLIP_G_TEXT, CLIP_L_TEXT } from "./text-encoders.js";

export { SDXL_TOKENIZER, SDXL_TOKENIZER_2, type TokenizerSpecials } from "./tokenizers.js";

export type Architecture = "sdxl" | "ssd-1b" | "vega" | "sdxl-refiner";
export const ARCHITECTURES: readonly Architecture[] = ["sdxl", "ssd-1b", "vega", "sdxl-refiner"];

/** The configs of a diffusers SDXL pipeline folder, one per component (`scheduler` is scheduler_config.json). */
export interface PipelineConfigs {
  unet: Record<string, any>;
  vae: Record<string, any>;
  /** Absent for an SDXL refiner (CLIP-G alone). */
  textEncoder?: Record<string, any>;
  textEncoder2: Record<string, any>;
  scheduler: Record<string, any>;
}

const UNETS: Record<Architecture, Readonly<Record<string, unknown>>> = { "sdxl": SDXL_UNET, "ssd-1b": SSD1B_UNET, "vega": VEGA_UNET, "sdxl-refiner": SDXL_REFINER_UNET };

/** Fresh copies (callers may edit them) of the configs of a built-in architecture. */
export function builtinConfigs(arch: Architecture): PipelineConfigs {
  const unet = UNETS[arch];
  if (!unet) throw new Error(`no built-in configs for architecture "${arch}" (known: ${ARCHITECTURES.join(", ")})`);
  const textEncoder = arch === "sdxl-refiner" ? {} : { textEncoder: CLIP_L_TEXT };
  return structuredClone({ unet, vae: SDXL_VAE, ...textEncoder, textEncoder2: CLIP_G_TEXT, scheduler: SDXL_SCHEDULER }) as PipelineConfigs;
}
