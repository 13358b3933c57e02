import { roundHalfEven } from "./common.js";
import type { Scheduler } from "./types.js";

export interface Img2ImgTimesteps {
  /** The timesteps still to run; timesteps[0] is the one add_noise targets. */
  timesteps: Float64Array;
  /** How many (first-order) steps remain, as the pipeline reports it. */
  numInferenceSteps: number;
  /** Index into scheduler.timesteps where denoising starts (already set on the scheduler). */
  beginIndex: number;
}

/**
 * The SDXL img2img pipeline's get_timesteps: keep the last `strength` fraction of the schedule (or,
 * with denoisingStart, the timesteps below that point), and set the scheduler's begin index so that
 * stepping and add_noise start there. Call after setTimesteps.
 */
export function img2imgTimesteps(scheduler: Scheduler, numInferenceSteps: number, strength: number, denoisingStart?: number): Img2ImgTimesteps {
  const all = scheduler.timesteps;
  let begin: number, remaining: number;
  if (denoisingStart === undefined) {
    const initTimestep = Math.min(Math.trunc(numInferenceSteps * strength), numInferenceSteps);
    const tStart = Math.max(numInferenceSteps - initTimestep, 0);
    begin = tStart * scheduler.order;
    remaining = numInferenceSteps - tStart;
  } else {
    const T = scheduler.config.num_train_timesteps;
    const cutoff = roundHalfEven(T - denoisingStart * T);
    remaining = all.filter((t) => t < cutoff).length;
    // second-order schedulers must not stop between the two evaluations of one step
    if (scheduler.order === 2 && remaining % 2 === 0) remaining += 1;
    begin = Math.max(all.length - remaining, 0);
  }
  scheduler.setBeginIndex(begin);
  return { timesteps: all.slice(begin), numInferenceSteps: remaining, beginIndex: begin };
}
