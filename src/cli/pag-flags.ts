/** `--pag-scale S`, `--pag-adaptive-scale A` and `--pag-layers L,...` of generate, img2img and inpaint (diffusers' PAG). */
import type { PagOptions } from "../pipelines/pag.js";
import { numberFlag, stringFlag, type Values } from "./commands/generate.js";
import { UsageError } from "./usage-error.js";

export const PAG_OPTIONS = { "pag-scale": { type: "string" }, "pag-adaptive-scale": { type: "string" }, "pag-layers": { type: "string" } } as const;

export const PAG_HELP = `  --pag-scale S        perturbed-attention guidance (diffusers' PAG pipelines' pag_scale; they default to 3):
                       a third UNet batch whose self-attention maps in --pag-layers are the identity
  --pag-adaptive-scale A  the PAG scale falls by A per timestep below 1000 (default 0)
  --pag-layers L,...   self-attention layers by name pattern (default mid: SDXL's mid block; SSD-1B and Vega
                       have none there: e.g. down_blocks.2 or up_blocks.0)`;

/** The call's PAG options (checked against the model when it loads); none without --pag-scale. */
export function parsePag(values: Values): PagOptions {
  const scale = numberFlag(values, "pag-scale"), adaptive = numberFlag(values, "pag-adaptive-scale"), layers = stringFlag(values, "pag-layers");
  if (scale === undefined) {
    if (adaptive !== undefined || layers !== undefined) throw new UsageError("--pag-adaptive-scale and --pag-layers need --pag-scale");
    return {};
  }
  if (!(scale >= 0)) throw new UsageError(`--pag-scale must be a number >= 0, got ${scale}`);
  if (adaptive !== undefined && !(adaptive >= 0)) throw new UsageError(`--pag-adaptive-scale must be a number >= 0, got ${adaptive}`);
  return { pagScale: scale, ...(adaptive !== undefined ? { pagAdaptiveScale: adaptive } : {}), ...(layers !== undefined ? { pagAppliedLayers: layers.split(",").map((l) => l.trim()) } : {}) };
}

