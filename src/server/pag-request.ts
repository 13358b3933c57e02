/**
 * Perturbed-attention guidance in a job: the native API's pag_scale, pag_adaptive_scale and
 * pag_applied_layers (diffusers' names), ComfyUI's PerturbedAttentionGuidance node; checked against
 * the model when the job runs (the served model decides which layers exist).
 */
import type { PagOptions } from "../pipelines/pag.js";
import type { JobSpec } from "./job.js";
import { invalid } from "./errors.js";
import type { Fields } from "./validation.js";

/** A job's PAG. `optional`: layers matching nothing turn it off instead of failing (ComfyUI's node on SSD-1B's attention-free mid block). */
export interface PagSpec {
  scale: number;
  adaptiveScale?: number;
  layers?: string[];
  optional?: boolean;
}

/** ComfyUI's and the native API's bound on the scale. */
export const PAG_SCALE_MAX = 100;

export function readNativePag(f: Fields, spec: JobSpec): void {
  const scale = f.number("pag_scale", 0, PAG_SCALE_MAX) ?? 0;
  const adaptiveScale = f.number("pag_adaptive_scale", 0, 1) ?? 0;
  const raw = f.raw("pag_applied_layers");
  let layers: string[] | undefined;
  if (raw !== undefined) {
    const list = typeof raw === "string" ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0 || !list.every((l) => typeof l === "string")) {
      throw invalid("pag_applied_layers must be a layer pattern or a list of them (e.g. \"mid\", [\"down_blocks.2\", \"up_blocks.0\"])", "invalid_type", "pag_applied_layers");
    }
    layers = list as string[];
  }
  if (scale === 0) return;
  spec.pag = { scale, ...(adaptiveScale ? { adaptiveScale } : {}), ...(layers ? { layers } : {}) };
}

/** The library's options of a job's PAG. */
export function pagOptions(p: PagSpec | undefined): PagOptions {
  return p ? { pagScale: p.scale, pagAdaptiveScale: p.adaptiveScale, pagAppliedLayers: p.layers } : {};
}

