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
export { img2imgTimesteps, type Img2ImgTimesteps } from "./img2img.js";

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
};

/** AUTOMATIC1111 sampler names (and the fixture ids) → diffusers class and config overrides. */
const ALIASES: Record<string, [string, object]> = {
  "Euler": ["EulerDiscreteScheduler", {}],
  "Euler a": ["EulerAncestralDiscreteScheduler", {}],
  "DPM++ 2M": ["DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: false }],
  "DPM++ 2M Karras": ["DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
  "DPM++ 2M SDE": ["DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: false }],
  "DPM++ 2M SDE Karras": ["DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
  "DDIM": ["DDIMScheduler", {}],
  "UniPC": ["UniPCMultistepScheduler", {}],
  "LCM": ["LCMScheduler", {}],
  "Heun": ["HeunDiscreteScheduler", {}],
  "DDPM": ["DDPMScheduler", {}],
  // the ids of the reference fixtures (../shared/fixtures/*/cases.json)
  "euler-ancestral": ["EulerAncestralDiscreteScheduler", {}],
  "euler-karras": ["EulerDiscreteScheduler", { use_karras_sigmas: true }],
  "euler-trailing": ["EulerDiscreteScheduler", { timestep_spacing: "trailing" }],
  "dpmpp-2m": ["DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: false }],
  "dpmpp-2m-karras": ["DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
  "dpmpp-2m-sde-karras": ["DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
};

/** Every name createScheduler accepts. */
export const SCHEDULER_NAMES: readonly string[] = [...Object.keys(CLASSES), ...Object.keys(ALIASES)];

/**
 * A scheduler by diffusers class name or AUTOMATIC1111 sampler name (case-insensitive), built from a
 * scheduler config (e.g. the model's scheduler_config.json, whatever class it was written for) with
 * the alias's options and then `overrides` on top.
 */
export function createScheduler(nameOrClass: string, config: object = {}, overrides: object = {}): Scheduler {
  const wanted = nameOrClass.trim().toLowerCase();
  const alias = Object.entries(ALIASES).find(([k]) => k.toLowerCase() === wanted);
  const className = alias ? alias[1][0] : Object.keys(CLASSES).find((k) => k.toLowerCase() === wanted);
  if (!className) {
    throw new Error(`unknown scheduler "${nameOrClass}"; known: ${SCHEDULER_NAMES.map((n) => JSON.stringify(n)).join(", ")}`);
  }
  return new CLASSES[className](config, { ...(alias ? alias[1][1] : {}), ...overrides });
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
