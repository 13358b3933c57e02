import { roundHalfEven } from "./common.js";
import type { Scheduler } from "./types.js";

/**
 * diffusers' denoising_end (the base half of SDXL's "ensemble of expert denoisers"): keep the timesteps
 * at or above the cutoff round(T - denoisingEnd * T), so the run stops with that fraction of the noise
 * schedule done and hands its still-noisy latents to a pipeline started with the same denoisingStart.
 * Unlike denoising_start, diffusers does not round the count up for second-order schedulers here.
 */
export function denoisingEndTimesteps(scheduler: Scheduler, timesteps: readonly number[], denoisingEnd: number): number[] {
  const T = scheduler.config.num_train_timesteps;
  const cutoff = roundHalfEven(T - denoisingEnd * T);
  return timesteps.slice(0, timesteps.filter((t) => t >= cutoff).length);
}
