/**
 * Perturbed-attention guidance settings of a call (diffusers' StableDiffusionXLPAGPipeline: pag_scale,
 * pag_adaptive_scale, pag_applied_layers; ComfyUI's PerturbedAttentionGuidance node), checked here:
 * the UNet's half is models/unet/pag.ts, the batch layout and guidance conditioning.ts and guidance.ts.
 */
import { PAG_DEFAULT_LAYERS, PagLayerError, pagTargets, type UNetConfig } from "../models/unet/index.js";
import { PipelineInputError } from "./errors.js";

export interface PagOptions {
  /** diffusers' pag_scale: 0 (default) is off; its PAG pipelines default to 3. */
  pagScale?: number;
  /** diffusers' pag_adaptive_scale: the scale falls by this per timestep below 1000 (default 0: constant). */
  pagAdaptiveScale?: number;
  /** diffusers' pag_applied_layers: patterns searched in the self-attention layers' names (default ["mid"]). */
  pagAppliedLayers?: string | readonly string[];
}

export interface PagSettings { scale: number; adaptiveScale: number; layers: readonly string[] }

/** Layer patterns per call, and their length: module names are short, and patterns come from requests too. */
const MAX_LAYERS = 32, MAX_LAYER_CHARS = 200;

/** The call's PAG, checked against the UNet; undefined when off (a scale of 0, as diffusers). */
export function checkPag(o: PagOptions, unet: UNetConfig, guessMode: boolean): PagSettings | undefined {
  const scale = o.pagScale ?? 0, adaptiveScale = o.pagAdaptiveScale ?? 0;
  for (const [name, v] of [["PAG scale", scale], ["PAG adaptive scale", adaptiveScale]] as const) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new PipelineInputError(`${name} must be a number >= 0, got ${v}`);
  }
  if (scale === 0) return undefined;
  const layers = o.pagAppliedLayers === undefined ? PAG_DEFAULT_LAYERS : typeof o.pagAppliedLayers === "string" ? [o.pagAppliedLayers] : o.pagAppliedLayers;
  if (!Array.isArray(layers) || layers.length > MAX_LAYERS) throw new PipelineInputError(`PAG layers must be a list of at most ${MAX_LAYERS} patterns`);
  for (const id of layers) {
    if (typeof id !== "string" || id.length === 0 || id.length > MAX_LAYER_CHARS) throw new PipelineInputError(`a PAG layer must be a pattern of 1 to ${MAX_LAYER_CHARS} characters, got ${JSON.stringify(id)}`);
    // no repetition: a pattern stays linear-time against any name (requests send them)
    if (/[*+?{}]/.test(id)) throw new PipelineInputError(`PAG layer ${JSON.stringify(id)}: patterns here take no repetition (*, +, ?, {n}); name blocks as "mid", "down_blocks.2", "up_blocks.0.attentions.(0|1)"`);
  }
  if (guessMode) throw new PipelineInputError("PAG is not combined with ControlNet's guess mode here");
  try {
    pagTargets(unet, layers);
  } catch (e) {
    if (e instanceof PagLayerError) throw new PipelineInputError(e.message);
    throw e;
  }
  return { scale, adaptiveScale, layers: [...layers] };
}

/** The infotext fields of a run with PAG (none when it is off). */
export function pagInfoFields(o: PagOptions): Record<string, string | number> {
  if (!o.pagScale) return {};
  const layers = typeof o.pagAppliedLayers === "string" ? [o.pagAppliedLayers] : o.pagAppliedLayers;
  return { "PAG scale": o.pagScale, ...(o.pagAdaptiveScale ? { "PAG adaptive scale": o.pagAdaptiveScale } : {}), ...(layers ? { "PAG layers": layers.join(" ") } : {}) };
}
