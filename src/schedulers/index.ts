import { readFileSync } from "node:fs";
import { join } from "node:path";
import { EulerDiscreteScheduler } from "./euler.js";
import { EulerAncestralDiscreteScheduler } from "./euler-ancestral.js";
import { DPMSolverMultistepScheduler } from "./dpm-solver.js";
import { DDIMScheduler } from "./ddim.js";
import { DDPMScheduler } from "./ddpm.js";
import { HeunDiscreteScheduler } from "./heun.js";
import { LCMScheduler } from "./lcm.js";
import { UniPCMultistepScheduler } from "./unipc.js";
import { LMSDiscreteScheduler } from "./lms.js";
import { PNDMScheduler } from "./pndm.js";
import { KDPM2DiscreteScheduler } from "./kdpm2.js";
import { KDPM2AncestralDiscreteScheduler } from "./kdpm2-ancestral.js";
import { DPMSolverSinglestepScheduler } from "./dpm-solver-singlestep.js";
import { SAMPLERS, resolve, schedulesFor } from "./a1111-names.js";
import type { Scheduler } from "./types.js";

export type { NoiseGenerator, Scheduler, SchedulerConfig } from "./types.js";
export type { BaseConfig } from "./common.js";
export { EulerDiscreteScheduler, type EulerConfig } from "./euler.js";
export { EulerAncestralDiscreteScheduler, type EulerAncestralConfig } from "./euler-ancestral.js";
export { DPMSolverMultistepScheduler, type DPMSolverConfig } from "./dpm-solver.js";
export { DDIMScheduler, type DDIMConfig } from "./ddim.js";
export { DDPMScheduler, type DDPMConfig } from "./ddpm.js";
export { HeunDiscreteScheduler, type HeunConfig } from "./heun.js";
export { LCMScheduler, type LCMConfig } from "./lcm.js";
export { UniPCMultistepScheduler, type UniPCConfig } from "./unipc.js";
export { LMSDiscreteScheduler, type LMSConfig } from "./lms.js";
export { PNDMScheduler, type PNDMConfig } from "./pndm.js";
export { KDPM2DiscreteScheduler, type KDPM2Config } from "./kdpm2.js";
export { KDPM2AncestralDiscreteScheduler, type KDPM2AncestralConfig } from "./kdpm2-ancestral.js";
export { DPMSolverSinglestepScheduler, type DPMSolverSinglestepConfig } from "./dpm-solver-singlestep.js";
export {
  SAMPLERS as A1111_SAMPLERS, SCHEDULES as A1111_SCHEDULES, UNSUPPORTED_SAMPLERS, WORKING_SCHEDULES, isA1111Name,
  resolve as resolveA1111, schedulesFor, type A1111Sampler, type A1111Schedule, type Resolved as ResolvedA1111,
} from "./a1111-names.js";
export { img2imgTimesteps, type Img2ImgTimesteps } from "./img2img.js";
export { denoisingEndTimesteps } from "./denoising-end.js";

type SchedulerClass = new (config: object, overrides: object) => Scheduler;

const CLASSES: Record<string, SchedulerClass> = {
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  DPMSolverMultistepScheduler,
  DDIMScheduler,
  DDPMScheduler,
  HeunDiscreteScheduler,
  LCMScheduler,
  UniPCMultistepScheduler,
  LMSDiscreteScheduler,
  PNDMScheduler,
  KDPM2DiscreteScheduler,
  KDPM2AncestralDiscreteScheduler,
  DPMSolverSinglestepScheduler,
};

/** The ids of the reference fixtures (schedulers/cases.json in ../shared/fixtures) → diffusers class and config overrides. */
const FIXTURE_IDS: Record<string, [string, object]> = {
  "euler-ancestral": ["EulerAncestralDiscreteScheduler", {}],
  "euler-karras": ["EulerDiscreteScheduler", { use_karras_sigmas: true }],
  "euler-trailing": ["EulerDiscreteScheduler", { timestep_spacing: "trailing" }],
  "dpmpp-2m": ["DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: false }],
  "dpmpp-2m-karras": ["DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
  "dpmpp-2m-sde-karras": ["DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
};

/**
 * Every name createScheduler lists: the diffusers classes, the A1111 samplers, their "... Karras" forms
 * and the fixture ids. It also takes any A1111 sampler + schedule type pair ("LMS Exponential", see
 * a1111-names.ts).
 */
export const SCHEDULER_NAMES: readonly string[] = [
  ...Object.keys(CLASSES),
  ...SAMPLERS.map((s) => s.name),
  ...SAMPLERS.filter((s) => schedulesFor(s).includes("Karras")).map((s) => `${s.name} Karras`),
  ...Object.keys(FIXTURE_IDS),
];

/** The class and config overrides of a name (see createScheduler), or an error naming the known ones. */
export function resolveSchedulerName(nameOrClass: string): { className: string; overrides: object } {
  const wanted = nameOrClass.trim().toLowerCase();
  const cls = Object.keys(CLASSES).find((k) => k.toLowerCase() === wanted);
  if (cls) return { className: cls, overrides: {} };
  const id = Object.entries(FIXTURE_IDS).find(([k]) => k === wanted);
  if (id) return { className: id[1][0], overrides: id[1][1] };
  try {
    return resolve(nameOrClass);
  } catch (e) {
    const message = (e as Error).message;
    // an A1111 name with no diffusers equivalent keeps its own explanation
    if (!message.startsWith("unknown sampler")) throw new Error(`scheduler "${nameOrClass}": ${message}`);
  }
  throw new Error(`unknown scheduler "${nameOrClass}"; known: ${SCHEDULER_NAMES.map((n) => JSON.stringify(n)).join(", ")}`);
}

/**
 * A scheduler by diffusers class name or AUTOMATIC1111 sampler name, optionally with its schedule type
 * ("DPM++ 2M Karras", "Euler SGM Uniform"; case-insensitive), built from a scheduler config (e.g. the
 * model's scheduler_config.json, whatever class it was written for) with the name's options and then
 * `overrides` on top.
 */
export function createScheduler(nameOrClass: string, config: object = {}, overrides: object = {}): Scheduler {
  const r = resolveSchedulerName(nameOrClass);
  return new CLASSES[r.className](config, { ...r.overrides, ...overrides });
}

/**
 * JSON as Python's json module writes it: bare Infinity, -Infinity and NaN (DPM-Solver's
 * lambda_min_clipped is -inf) are allowed.
 */
const MARK = "@@python-float:";

export function parsePythonJson(text: string): unknown {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)/g, (m, bare: string | undefined) => (bare ? `"${MARK}${bare}"` : m));
  return JSON.parse(marked, (_k, v) => (typeof v === "string" && v.startsWith(MARK) ? Number(v.slice(MARK.length)) : v));
}

/** Reads `<dir>/scheduler/scheduler_config.json` (a diffusers model folder). */
export function loadSchedulerConfig(dir: string): Record<string, unknown> {
  const file = join(dir, "scheduler", "scheduler_config.json");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read scheduler config ${file}: ${(e as Error).message}`);
  }
  let config: unknown;
  try {
    config = parsePythonJson(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new Error(`${file}: must hold a JSON object`);
  return config as Record<string, unknown>;
}
