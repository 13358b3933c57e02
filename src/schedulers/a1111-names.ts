/**
 * AUTOMATIC1111 sampler names and schedule types (modules/sd_samplers_*.py, modules/sd_schedulers.py)
 * mapped to diffusers scheduler classes and config options, following diffusers' own table
 * (docs/source/en/api/schedulers/overview.md). Names are case-insensitive; a sampler name may carry
 * its schedule ("DPM++ 2M Karras", "LMS Karras", "DPM++ 3M SDE Exponential"), as A1111 still accepts.
 */

import type { CustomSigmaSchedule } from "./a1111-sigmas.js";

type Overrides = Record<string, unknown>;

/**
 * What a class's config can express: which sigma schedules it has, whether it has timestep_spacing,
 * and whether it takes custom sigmas (diffusers' set_timesteps(sigmas=...): Euler only).
 */
interface Capabilities {
  sigmas: readonly ("karras" | "exponential" | "beta")[];
  spacing: boolean;
  custom?: boolean;
}

const ALL_SIGMAS = ["karras", "exponential", "beta"] as const;
const CAPABILITIES: Record<string, Capabilities> = {
  EulerDiscreteScheduler: { sigmas: ALL_SIGMAS, spacing: true, custom: true },
  EulerAncestralDiscreteScheduler: { sigmas: [], spacing: true },
  HeunDiscreteScheduler: { sigmas: ALL_SIGMAS, spacing: true },
  LMSDiscreteScheduler: { sigmas: ALL_SIGMAS, spacing: true },
  KDPM2DiscreteScheduler: { sigmas: ALL_SIGMAS, spacing: true },
  KDPM2AncestralDiscreteScheduler: { sigmas: ALL_SIGMAS, spacing: true },
  DPMSolverMultistepScheduler: { sigmas: ALL_SIGMAS, spacing: true },
  UniPCMultistepScheduler: { sigmas: ALL_SIGMAS, spacing: true },
  DDIMScheduler: { sigmas: [], spacing: true },
  PNDMScheduler: { sigmas: [], spacing: true },
  DDPMScheduler: { sigmas: [], spacing: true },
  // LCM picks its own timesteps (original_inference_steps); only its default applies
  LCMScheduler: { sigmas: [], spacing: false },
};

export interface A1111Sampler {
  /** A1111's label, e.g. "DPM++ 2M". */
  name: string;
  /** A1111's aliases (k-diffusion function ids). */
  aliases: readonly string[];
  className: string;
  /** The diffusers options that make the class this sampler. */
  options: Overrides;
}

/** The A1111 samplers that have a diffusers scheduler here, in A1111's order. */
export const SAMPLERS: readonly A1111Sampler[] = [
  { name: "DPM++ 2M", aliases: ["k_dpmpp_2m"], className: "DPMSolverMultistepScheduler", options: { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: false } },
  { name: "DPM++ 2M SDE", aliases: ["k_dpmpp_2m_sde"], className: "DPMSolverMultistepScheduler", options: { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: false } },
  { name: "DPM++ 2M SDE Heun", aliases: ["k_dpmpp_2m_sde_heun"], className: "DPMSolverMultistepScheduler", options: { algorithm_type: "sde-dpmsolver++", solver_order: 2, solver_type: "heun" } },
  { name: "DPM++ 3M SDE", aliases: ["k_dpmpp_3m_sde"], className: "DPMSolverMultistepScheduler", options: { algorithm_type: "sde-dpmsolver++", solver_order: 3 } },
  { name: "Euler a", aliases: ["k_euler_a", "k_euler_ancestral"], className: "EulerAncestralDiscreteScheduler", options: {} },
  { name: "Euler", aliases: ["k_euler"], className: "EulerDiscreteScheduler", options: {} },
  { name: "LMS", aliases: ["k_lms"], className: "LMSDiscreteScheduler", options: {} },
  { name: "Heun", aliases: ["k_heun"], className: "HeunDiscreteScheduler", options: {} },
  { name: "DPM2", aliases: ["k_dpm_2"], className: "KDPM2DiscreteScheduler", options: {} },
  { name: "DPM2 a", aliases: ["k_dpm_2_a"], className: "KDPM2AncestralDiscreteScheduler", options: {} },
  { name: "DDIM", aliases: ["ddim"], className: "DDIMScheduler", options: {} },
  // PLMS is diffusers' PNDM without the Runge-Kutta warm-up; Segmind calls it "PNDM"
  { name: "PLMS", aliases: ["plms", "PNDM"], className: "PNDMScheduler", options: { skip_prk_steps: true } },
  { name: "UniPC", aliases: ["unipc"], className: "UniPCMultistepScheduler", options: {} },
  { name: "LCM", aliases: ["lcm"], className: "LCMScheduler", options: {} },
  // not an A1111 sampler, kept for the library's own users
  { name: "DDPM", aliases: ["ddpm"], className: "DDPMScheduler", options: {} },
];

/** A1111 samplers with no diffusers scheduler (or none ported), and why. */
export const UNSUPPORTED_SAMPLERS: Readonly<Record<string, string>> = {
  "DPM++ SDE": "needs torchsde's Brownian tree noise (diffusers DPMSolverSDEScheduler), which is not ported",
  "DPM++ 2S a": "diffusers has no ancestral single-step DPM-Solver",
  "DPM fast": "diffusers has no equivalent",
  "DPM adaptive": "diffusers has no equivalent",
  "Restart": "diffusers has no equivalent",
  "DDIM CFG++": "diffusers has no equivalent",
  "HeunPP2": "diffusers has no equivalent",
};

export interface A1111Schedule {
  /** A1111's name ("sgm_uniform") and label ("SGM Uniform"). */
  name: string;
  label: string;
  aliases: readonly string[] | null;
  default_rho: number;
  need_inner_model: boolean;
  /**
   * The diffusers option this is, or null where diffusers has none. `custom`: only diffusers' custom
   * sigmas express it (set_timesteps(sigmas=...) with A1111's list, a1111-sigmas.ts).
   */
  diffusers: { sigmas?: "karras" | "exponential" | "beta"; spacing?: "linspace" | "leading" | "trailing"; stepsOffset?: number; custom?: CustomSigmaSchedule } | null;
}

/** A1111's schedule types (modules/sd_schedulers.py), in its order, with their diffusers counterparts. */
export const SCHEDULES: readonly A1111Schedule[] = [
  { name: "automatic", label: "Automatic", aliases: null, default_rho: -1, need_inner_model: false, diffusers: {} },
  // k-diffusion's get_sigmas(n): n timesteps evenly from 999 to 0, as diffusers' "linspace"
  { name: "uniform", label: "Uniform", aliases: null, default_rho: -1, need_inner_model: true, diffusers: { spacing: "linspace" } },
  { name: "karras", label: "Karras", aliases: null, default_rho: 7, need_inner_model: false, diffusers: { sigmas: "karras" } },
  { name: "exponential", label: "Exponential", aliases: null, default_rho: -1, need_inner_model: false, diffusers: { sigmas: "exponential", spacing: "linspace" } },
  // the custom sigmas fix the schedule; "linspace" makes the initial noise sigma_max, as A1111's
  { name: "polyexponential", label: "Polyexponential", aliases: null, default_rho: 1, need_inner_model: false, diffusers: { custom: "polyexponential", spacing: "linspace" } },
  { name: "sgm_uniform", label: "SGM Uniform", aliases: ["SGMUniform"], default_rho: -1, need_inner_model: true, diffusers: { spacing: "trailing" } },
  { name: "kl_optimal", label: "KL Optimal", aliases: null, default_rho: -1, need_inner_model: false, diffusers: { custom: "kl_optimal", spacing: "linspace" } },
  { name: "align_your_steps", label: "Align Your Steps", aliases: null, default_rho: -1, need_inner_model: false, diffusers: { custom: "align_your_steps", spacing: "linspace" } },
  { name: "simple", label: "Simple", aliases: null, default_rho: -1, need_inner_model: true, diffusers: { spacing: "trailing" } },
  // normal_scheduler: linspace(t(sigma_max), t(sigma_min), n), the same timesteps as Uniform
  { name: "normal", label: "Normal", aliases: null, default_rho: -1, need_inner_model: true, diffusers: { spacing: "linspace" } },
  // ddim_scheduler: every (1000 // n)-th training sigma from index 1, as diffusers' "leading" with steps_offset 1
  { name: "ddim", label: "DDIM", aliases: null, default_rho: -1, need_inner_model: true, diffusers: { spacing: "leading", stepsOffset: 1 } },
  { name: "beta", label: "Beta", aliases: null, default_rho: -1, need_inner_model: true, diffusers: { sigmas: "beta", spacing: "linspace" } },
];

export interface Resolved {
  /** The A1111 sampler and schedule type (canonical spellings). */
  sampler: string;
  schedule: string;
  className: string;
  /** Config overrides for the class (sampler options, then the schedule's). */
  overrides: Overrides;
  /** One name that createScheduler resolves to the same: "DPM++ 2M", "DPM++ 2M Karras", "LMS SGM Uniform". */
  name: string;
}

const norm = (s: string) => s.trim().replace(/\s+/g, " ").toLowerCase();

function findSampler(name: string): A1111Sampler | undefined {
  const n = norm(name);
  return SAMPLERS.find((s) => norm(s.name) === n || s.aliases.some((a) => norm(a) === n));
}

function findSchedule(name: string): A1111Schedule | undefined {
  const n = norm(name);
  return SCHEDULES.find((s) => norm(s.name) === n || norm(s.label) === n || (s.aliases ?? []).some((a) => norm(a) === n));
}

/** Whether the class can express the schedule (the schedule must have a diffusers counterpart). */
function supports(className: string, schedule: A1111Schedule): boolean {
  const d = schedule.diffusers, cap = CAPABILITIES[className];
  if (!d || !cap) return false;
  if (d.sigmas && !cap.sigmas.includes(d.sigmas)) return false;
  if (d.custom && !cap.custom) return false;
  if ((d.spacing || d.stepsOffset !== undefined) && !cap.spacing) return false;
  return true;
}

/** The schedule types that work with a sampler (labels). */
export function schedulesFor(sampler: A1111Sampler): string[] {
  return SCHEDULES.filter((s) => supports(sampler.className, s)).map((s) => s.label);
}

/** The schedule types that work with at least one sampler. */
export const WORKING_SCHEDULES: readonly A1111Schedule[] = SCHEDULES.filter((s) => SAMPLERS.some((x) => supports(x.className, s)));

function scheduleOverrides(className: string, schedule: A1111Schedule): Overrides {
  const d = schedule.diffusers!, cap = CAPABILITIES[className];
  const out: Overrides = {};
  // a named schedule replaces whatever sigma schedule the model's config asked for
  if (schedule.name !== "automatic") for (const k of cap.sigmas) out[`use_${k}_sigmas`] = d.sigmas === k;
  if (schedule.name !== "automatic" && cap.custom) out.custom_sigmas = d.custom ?? null;
  if (d.spacing) out.timestep_spacing = d.spacing;
  if (d.stepsOffset !== undefined) out.steps_offset = d.stepsOffset;
  return out;
}

// A1111's aliases of its old "... Karras" / "... Exponential" samplers: k_lms_ka, k_dpmpp_2m_sde_heun_exp
const ALIAS_SUFFIXES: Record<string, string> = { ka: "karras", exp: "exponential" };

/** Splits "DPM++ 2M SDE Karras" into the longest sampler name it starts with and the schedule after it. */
function splitCombined(name: string): [A1111Sampler, A1111Schedule] | undefined {
  const n = norm(name);
  const names = SAMPLERS.flatMap((s) => [s.name, ...s.aliases].map((a) => [norm(a), s] as const)).sort((a, b) => b[0].length - a[0].length);
  for (const [prefix, sampler] of names) {
    if (!n.startsWith(`${prefix} `) && !n.startsWith(`${prefix}_`)) continue;
    const rest = n.slice(prefix.length + 1);
    const schedule = findSchedule(ALIAS_SUFFIXES[rest] ?? rest);
    if (schedule) return [sampler, schedule];
  }
  return undefined;
}

function list(names: readonly string[]): string {
  return names.map((n) => JSON.stringify(n)).join(", ");
}

/** True when `name` is an A1111 sampler name here, with or without a schedule in it. */
export function isA1111Name(name: string): boolean {
  return findSampler(name) !== undefined || splitCombined(name) !== undefined;
}

/**
 * An A1111 sampler name (optionally with its schedule, "DPM2 a Karras") and schedule type (name or
 * label; absent or "Automatic": the sampler's own) to a diffusers class and config overrides. Throws
 * an error naming the valid choices where there is no diffusers equivalent.
 */
export function resolve(samplerName: string, scheduleType?: string): Resolved {
  let sampler = findSampler(samplerName);
  let fromName: A1111Schedule | undefined;
  if (!sampler) {
    const split = splitCombined(samplerName);
    if (split) [sampler, fromName] = split;
  }
  if (!sampler) {
    const why = Object.entries(UNSUPPORTED_SAMPLERS).find(([k]) => norm(samplerName).startsWith(norm(k)) && (norm(samplerName) === norm(k) || findSchedule(norm(samplerName).slice(k.length + 1))));
    const head = why ? `sampler "${why[0]}" is not available: ${why[1]}` : `unknown sampler ${JSON.stringify(samplerName)}`;
    throw new Error(`${head}; the samplers are ${list(SAMPLERS.map((s) => s.name))}`);
  }
  let schedule = fromName ?? findSchedule("automatic")!;
  if (scheduleType !== undefined && scheduleType.trim() !== "") {
    const wanted = findSchedule(scheduleType);
    if (!wanted) throw new Error(`unknown schedule type ${JSON.stringify(scheduleType)}; the schedule types are ${list(WORKING_SCHEDULES.map((s) => s.label))}`);
    // "DPM++ 2M Karras" with schedule "Automatic" stays Karras; two different schedules conflict
    if (fromName && wanted.name !== "automatic" && wanted.name !== fromName.name) {
      throw new Error(`sampler ${JSON.stringify(samplerName)} already names the schedule "${fromName.label}", but schedule type "${wanted.label}" was asked for`);
    }
    if (wanted.name !== "automatic") schedule = wanted;
  }
  if (!supports(sampler.className, schedule)) {
    const reason = !schedule.diffusers ? `diffusers has no "${schedule.label}" schedule`
      : schedule.diffusers.custom ? `"${schedule.label}" has no diffusers option, only custom sigmas (set_timesteps(sigmas=...)), which only Euler (EulerDiscreteScheduler) takes`
      : `${sampler.name} (${sampler.className}) has no "${schedule.label}" schedule in diffusers`;
    throw new Error(`${reason}; with ${sampler.name} use ${list(schedulesFor(sampler))}`);
  }
  return {
    sampler: sampler.name, schedule: schedule.label, className: sampler.className,
    overrides: { ...sampler.options, ...scheduleOverrides(sampler.className, schedule) },
    name: schedule.name === "automatic" ? sampler.name : `${sampler.name} ${schedule.label}`,
  };
}
