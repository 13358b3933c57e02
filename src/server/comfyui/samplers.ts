/**
 * ComfyUI's KSampler names (sampler_name, scheduler) as the A1111 sampler and schedule type of the
 * same algorithm, which the rest of the server already turns into a diffusers scheduler
 * (schedulers/a1111-names.ts). A1111 1.9 took its schedule types from ComfyUI, so each ComfyUI
 * scheduler has its A1111 twin; ComfyUI's ddim_uniform is A1111's "DDIM" schedule (every
 * (1000 // n)-th timestep from 1: diffusers' "leading" with steps_offset 1, the SDXL default).
 * Only names with a working counterpart are listed in /object_info; the others are a 400 naming them.
 */
import { checkSampler } from "../validation.js";

interface SamplerName {
  a1111: string;
  /** diffusers options on top of the A1111 sampler's (UniPC's variant). */
  overrides?: Record<string, unknown>;
}

/** In ComfyUI's order (comfy/samplers.py SAMPLER_NAMES). The _gpu variants differ only in where ComfyUI draws the SDE noise. */
const SAMPLERS: ReadonlyArray<readonly [string, SamplerName]> = [
  ["euler", { a1111: "Euler" }],
  ["euler_ancestral", { a1111: "Euler a" }],
  ["heun", { a1111: "Heun" }],
  ["dpm_2", { a1111: "DPM2" }],
  ["dpm_2_ancestral", { a1111: "DPM2 a" }],
  ["lms", { a1111: "LMS" }],
  ["dpmpp_2m", { a1111: "DPM++ 2M" }],
  ["dpmpp_2m_sde", { a1111: "DPM++ 2M SDE" }],
  ["dpmpp_2m_sde_gpu", { a1111: "DPM++ 2M SDE" }],
  ["dpmpp_3m_sde", { a1111: "DPM++ 3M SDE" }],
  ["dpmpp_3m_sde_gpu", { a1111: "DPM++ 3M SDE" }],
  ["ddpm", { a1111: "DDPM" }],
  ["lcm", { a1111: "LCM" }],
  ["ddim", { a1111: "DDIM" }],
  ["uni_pc", { a1111: "UniPC", overrides: { solver_type: "bh1" } }],
  ["uni_pc_bh2", { a1111: "UniPC", overrides: { solver_type: "bh2" } }],
];

/** Why the other ComfyUI samplers are refused. */
const NOT_AVAILABLE: Readonly<Record<string, string>> = {
  dpmpp_sde: "it needs torchsde's Brownian tree noise, which is not ported",
  dpmpp_sde_gpu: "it needs torchsde's Brownian tree noise, which is not ported",
  dpmpp_2s_ancestral: "diffusers has no ancestral single-step DPM-Solver",
};

/** In ComfyUI's order (SCHEDULER_NAMES), with the A1111 schedule type label of each. */
const SCHEDULERS: ReadonlyArray<readonly [string, string]> = [
  ["simple", "Simple"],
  ["sgm_uniform", "SGM Uniform"],
  ["karras", "Karras"],
  ["exponential", "Exponential"],
  ["ddim_uniform", "DDIM"],
  ["beta", "Beta"],
  ["normal", "Normal"],
  ["kl_optimal", "KL Optimal"],
];

export const COMFY_SAMPLER_NAMES: readonly string[] = SAMPLERS.map(([n]) => n);
export const COMFY_SCHEDULER_NAMES: readonly string[] = SCHEDULERS.map(([n]) => n);

export class ComfySamplerError extends Error {
  constructor(message: string, readonly input: "sampler_name" | "scheduler") { super(message); }
}

export interface ComfySampler {
  /** What JobSpec.scheduler takes ("Euler Karras"). */
  scheduler: string;
  overrides?: Record<string, unknown>;
}

/** The scheduler a KSampler's sampler_name and scheduler make, or a ComfySamplerError naming the input. */
export function comfySampler(samplerName: string, schedulerName: string): ComfySampler {
  const sampler = SAMPLERS.find(([n]) => n === samplerName)?.[1];
  if (!sampler) {
    const why = NOT_AVAILABLE[samplerName];
    throw new ComfySamplerError(`${why ? `sampler "${samplerName}" is not available here: ${why}` : `unknown sampler ${JSON.stringify(samplerName)}`}; the samplers are ${COMFY_SAMPLER_NAMES.join(", ")}`, "sampler_name");
  }
  const schedule = SCHEDULERS.find(([n]) => n === schedulerName)?.[1];
  if (!schedule) throw new ComfySamplerError(`unknown or unsupported scheduler ${JSON.stringify(schedulerName)}; the schedulers are ${COMFY_SCHEDULER_NAMES.join(", ")}`, "scheduler");
  let resolved: { scheduler?: string };
  try {
    resolved = checkSampler(sampler.a1111, schedule, "sampler_name", "scheduler");
  } catch (e) {
    // a pair diffusers cannot express (the message says which, in A1111's names)
    throw new ComfySamplerError(`sampler "${samplerName}" with scheduler "${schedulerName}": ${(e as Error).message}`, "scheduler");
  }
  return { scheduler: resolved.scheduler!, ...(sampler.overrides ? { overrides: sampler.overrides } : {}) };
}
