/**
 * Presets: a few load options and call defaults under one name. "fast" is for CPUs, where a 25-step
 * 1024x1024 SSD-1B image takes ~20 minutes: the model's LCM-LoRA with the LCM scheduler, 4 steps,
 * guidance 1 (so no CFG batch: one UNet pass per step instead of two) and TAESD decoding, about 10x
 * less work. The LoRA and the TAESD are downloaded on first use, like the model.
 */
import type { Architecture } from "../loaders/builtin-configs/index.js";

export interface FastPreset {
  name: "fast";
  /** The LCM-LoRA (a repo id, repo/FILE or a file); default: the one made for the model's architecture. */
  lcmLora?: string;
  /** Default madebyollin/taesdxl. */
  taesd?: string;
}

export type Preset = "fast" | FastPreset;

/** The LCM-LoRAs latent-consistency and Segmind publish for each architecture. */
export const LCM_LORAS: Partial<Record<Architecture, string>> = {
  "ssd-1b": "latent-consistency/lcm-lora-ssd-1b",
  "sdxl": "latent-consistency/lcm-lora-sdxl",
  "vega": "segmind/Segmind-VegaRT",
};

export const FAST_TAESD = "madebyollin/taesdxl";

/** What the fast preset changes in each generate / img2img call, unless the call says otherwise. */
export const FAST_CALL_DEFAULTS = { scheduler: "LCM", numInferenceSteps: 4, guidanceScale: 1, fastDecode: true } as const;

export function fastPreset(preset: Preset): FastPreset {
  return typeof preset === "string" ? { name: preset } : preset;
}
