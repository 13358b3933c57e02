/**
 * A KSampler's or KSamplerAdvanced's own settings, read and checked: seed, steps, cfg, the diffusers
 * scheduler its sampler_name and scheduler name, and how much of the schedule it runs (denoise, or
 * KSamplerAdvanced's start_at_step; it must run to the end here).
 */
import { NodeError, nodeFields, type GraphNode } from "./graph.js";
import { ComfySamplerError, comfySampler, type ComfySampler } from "./samplers.js";
import type { Limits } from "../validation.js";

/** Largest ComfyUI seed accepted: JSON numbers above 2^53 are not exact. */
const MAX_SEED = Number.MAX_SAFE_INTEGER;

export interface SamplerSettings {
  seed: number;
  steps: number;
  cfg: number;
  scheduler: ComfySampler;
  /** KSampler's denoise (1 for KSamplerAdvanced). */
  denoise: number;
  /** KSamplerAdvanced's start_at_step (0 for KSampler). */
  startAt: number;
  /** The base sampler of a base + refiner graph: its end_at_step, below steps (else absent: it runs to the end). */
  endAt?: number;
}

/** What a sampler is in its graph: the only or first one, the base of a refiner, or the refiner. */
export type SamplerRole = "whole" | "base" | "refiner";

/** KSampler's or KSamplerAdvanced's settings (the advanced one: the whole schedule, or its tail from start_at_step). */
export function readSampler(ks: GraphNode, limits: Limits, role: SamplerRole = "whole"): SamplerSettings {
  const f = nodeFields(ks);
  const advanced = ks.classType === "KSamplerAdvanced";
  const seed = f.int(advanced ? "noise_seed" : "seed", 0, MAX_SEED);
  const steps = f.int("steps", 1, limits.maxSteps);
  const cfg = f.number("cfg", 0, 100);
  let scheduler: ComfySampler;
  try {
    scheduler = comfySampler(f.string("sampler_name", 100), f.string("scheduler", 100));
  } catch (e) {
    if (e instanceof ComfySamplerError) throw new NodeError(ks, e.message, e.input);
    throw e;
  }
  if (!advanced) return { seed, steps, cfg, scheduler, denoise: f.optionalNumber("denoise", 0, 1) ?? 1, startAt: 0 };
  const addNoise = f.string("add_noise", 20);
  // a refiner continues the base's leftover noise; every other sampler starts from noise
  const wantNoise = role === "refiner" ? "disable" : "enable";
  if (addNoise !== wantNoise) {
    throw new NodeError(ks, role === "refiner" ? `add_noise "${addNoise}": the refiner continues the base's latents here (add_noise "disable")` : `add_noise "${addNoise}" is not run here: the sampler starts from noise (add_noise "enable")`, "add_noise");
  }
  const startAt = f.int("start_at_step", 0, 10000), endAt = f.int("end_at_step", 0, 10000);
  if (role === "base") {
    if (endAt < 1 || endAt >= steps) throw new NodeError(ks, `end_at_step ${endAt} must hand over to the refiner between step 1 and ${steps - 1} of ${steps}`, "end_at_step");
    // from an image the base may start later (img2img); from an EmptyLatentImage checkFullSchedule wants 0
    if (startAt >= endAt) throw new NodeError(ks, `start_at_step ${startAt} must come before end_at_step ${endAt}: the base runs some of the steps before the refiner`, "start_at_step");
    const leftover = f.string("return_with_leftover_noise", 20);
    if (leftover !== "enable") throw new NodeError(ks, `return_with_leftover_noise "${leftover}": the refiner continues the base's noisy latents (return_with_leftover_noise "enable")`, "return_with_leftover_noise");
    return { seed, steps, cfg, scheduler, denoise: 1, startAt, endAt };
  }
  if (endAt < steps) throw new NodeError(ks, `end_at_step ${endAt} stops before the last of ${steps} steps; here a sampler runs to the end (end_at_step >= steps), or hands over to a refiner's KSamplerAdvanced`, "end_at_step");
  return { seed, steps, cfg, scheduler, denoise: 1, startAt };
}

/** The strength whose trunc(n * strength) is `kept` (the plain quotient can fall an ulp short). */
export function keepLast(kept: number, n: number): number {
  let s = kept / n;
  while (Math.trunc(n * s) < kept) s += Number.EPSILON;
  return Math.min(1, s);
}

/**
 * What a sampler that starts from an image runs, as diffusers' img2img takes it: KSampler's steps s at
 * denoise d are the last s of a schedule of int(s / d) (ComfyUI's count); KSamplerAdvanced from
 * start_at_step k of s steps keeps the last s - k. diffusers runs trunc(n * strength) of n.
 */
export function partialSchedule(node: GraphNode, s: SamplerSettings, limits: Limits): { steps: number; strength: number } {
  if (node.classType === "KSamplerAdvanced") {
    if (s.startAt >= s.steps) throw new NodeError(node, `start_at_step ${s.startAt} leaves none of the ${s.steps} steps to run`, "start_at_step");
    return { steps: s.steps, strength: keepLast(s.steps - s.startAt, s.steps) };
  }
  if (s.denoise <= 0) throw new NodeError(node, "denoise must be above 0 for an image to change", "denoise");
  return { steps: Math.min(limits.maxSteps, Math.floor(s.steps / s.denoise)), strength: s.denoise };
}

/** A sampler that starts from noise must run the whole schedule. */
export function checkFullSchedule(node: GraphNode, s: SamplerSettings, what: string): void {
  if (s.denoise !== 1) throw new NodeError(node, `denoise ${s.denoise} needs ${what}; with an EmptyLatentImage use denoise 1`, "denoise");
  if (s.startAt) throw new NodeError(node, `start_at_step ${s.startAt} needs ${what}; with an EmptyLatentImage start at 0`, "start_at_step");
}
