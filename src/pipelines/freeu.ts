/**
 * FreeU settings of a call (diffusers' pipe.enable_freeu(s1, s2, b1, b2), ComfyUI's FreeU and
 * FreeU_V2 nodes): checked here, run by the UNet session with the `freeu` input (models/unet/freeu.ts).
 */
import { FREEU_VARIANTS, type FreeUVariant } from "../models/unet/index.js";
import { PipelineInputError } from "./errors.js";

export interface FreeUOptions {
  /** Backbone scales of the first and second up stage (the first half of the channels). */
  b1: number;
  b2: number;
  /** Skip-state scales of their lowest frequencies. */
  s1: number;
  s2: number;
  /** Where and how FreeU applies: "diffusers" (default), "comfyui" (its FreeU node), "comfyui-v2" (FreeU_V2). */
  variant?: FreeUVariant;
}

/** The FreeU authors' values for SDXL, which diffusers' guide gives for SDXL pipelines. */
export const FREEU_SDXL: Readonly<FreeUOptions> = { b1: 1.1, b2: 1.2, s1: 0.6, s2: 0.4 };

/** ComfyUI's input range of each scale. */
export const FREEU_MAX = 10;

/** Checks `f`; undefined when it does nothing (diffusers runs the plain UNet when any of the four is 0). */
export function checkFreeU(f: FreeUOptions | undefined): Required<FreeUOptions> | undefined {
  if (f === undefined) return undefined;
  const variant = f.variant ?? "diffusers";
  if (!FREEU_VARIANTS.includes(variant)) throw new PipelineInputError(`FreeU variant ${JSON.stringify(variant)} is not one of ${FREEU_VARIANTS.join(", ")}`);
  for (const k of ["b1", "b2", "s1", "s2"] as const) {
    const v = f[k];
    if (typeof v !== "number" || !(v >= 0 && v <= FREEU_MAX)) throw new PipelineInputError(`FreeU ${k} must be a number in [0, ${FREEU_MAX}], got ${v}`);
  }
  if (variant === "diffusers" && (f.b1 === 0 || f.b2 === 0 || f.s1 === 0 || f.s2 === 0)) return undefined;
  return { b1: f.b1, b2: f.b2, s1: f.s1, s2: f.s2, variant };
}

/** The infotext fields of a FreeU run (Forge's FreeU keys, and the variant). */
export function freeuInfoFields(f: FreeUOptions): Record<string, string | number> {
  return { freeu_enabled: "True", freeu_b1: f.b1, freeu_b2: f.b2, freeu_s1: f.s1, freeu_s2: f.s2, freeu_variant: f.variant ?? "diffusers" };
}
