/** `--freeu [B1,B2,S1,S2|sdxl]` and `--freeu-variant V` of generate, img2img and inpaint. */
import { FREEU_SDXL, checkFreeU, type FreeUOptions } from "../pipelines/freeu.js";
import { PipelineInputError } from "../pipelines/errors.js";
import { FREEU_VARIANTS, type FreeUVariant } from "../models/unet/index.js";
import { stringFlag, type Values } from "./commands/generate.js";
import { UsageError } from "./usage-error.js";

export const FREEU_OPTIONS = { freeu: { type: "string" }, "freeu-variant": { type: "string" } } as const;

export const FREEU_HELP = `  --freeu B1,B2,S1,S2  FreeU (diffusers' enable_freeu): the UNet's up stages' backbone features times B1, B2 and
                       their skip features' lowest frequencies times S1, S2; "sdxl" for 1.1,1.2,0.6,0.4 (the
                       authors' SDXL values)
  --freeu-variant V    diffusers (default), comfyui (ComfyUI's FreeU node) or comfyui-v2 (FreeU_V2)`;

/** The call's FreeU, checked before the model loads; undefined without --freeu. */
export function parseFreeU(values: Values): FreeUOptions | undefined {
  const flag = stringFlag(values, "freeu"), variant = stringFlag(values, "freeu-variant");
  if (flag === undefined) {
    if (variant !== undefined) throw new UsageError("--freeu-variant needs --freeu");
    return undefined;
  }
  const parts = flag.split(",").map((p) => Number(p.trim()));
  if (flag !== "sdxl" && (parts.length !== 4 || parts.some((p) => !Number.isFinite(p)))) throw new UsageError(`--freeu takes B1,B2,S1,S2 (four numbers) or sdxl, got "${flag}"`);
  if (variant !== undefined && !(FREEU_VARIANTS as readonly string[]).includes(variant)) throw new UsageError(`--freeu-variant must be one of ${FREEU_VARIANTS.join(", ")}, got "${variant}"`);
  const [b1, b2, s1, s2] = parts;
  const freeu: FreeUOptions = { ...(flag === "sdxl" ? FREEU_SDXL : { b1, b2, s1, s2 }), ...(variant ? { variant: variant as FreeUVariant } : {}) };
  try {
    checkFreeU(freeu);
  } catch (e) {
    if (e instanceof PipelineInputError) throw new UsageError(`--freeu: ${e.message}`);
    throw e;
  }
  return freeu;
}
