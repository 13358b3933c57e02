/**
 * A1111 schedule types that diffusers has no config option for, only its custom-sigmas path
 * (EulerDiscreteScheduler.set_timesteps(sigmas=...), `sigmas=` of the pipelines): the sigma lists
 * A1111 computes for them (modules/sd_schedulers.py), between the model's smallest and largest
 * training sigma. Plain float64 here; the Euler scheduler rounds them to float32 as diffusers'
 * np.float32 cast does. A1111 computes Polyexponential and KL Optimal in float32 torch arithmetic,
 * which differs from that in the last bits (about 1e-6 relative where tan is steep, near sigma_max);
 * Align Your Steps it computes in float64 numpy, as here.
 */
import { npLinspace } from "./common.js";

/** The A1111 schedule names served this way, and the value of EulerConfig.custom_sigmas. */
export const CUSTOM_SIGMA_SCHEDULES = ["polyexponential", "kl_optimal", "align_your_steps"] as const;
export type CustomSigmaSchedule = (typeof CUSTOM_SIGMA_SCHEDULES)[number];

/**
 * k-diffusion's polyexponential schedule: log sigma a power `rho` of a ramp from 1 to 0 between
 * log sigma_max and log sigma_min (A1111's default rho 1: exponential spacing), then a final 0.
 */
export function polyexponentialSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 1): Float64Array {
  const logMin = Math.log(sigmaMin), logMax = Math.log(sigmaMax);
  const ramp = npLinspace(1, 0, n);
  return Float64Array.from([...ramp.map((r) => Math.exp(r ** rho * (logMax - logMin) + logMin)), 0]);
}

/**
 * The KL-optimal schedule (Sabour et al., "Align Your Steps", 2024): sigma = tan of a linear blend of
 * atan(sigma_max) and atan(sigma_min), n + 1 values with no 0 appended (the last step ends at sigma_min).
 */
export function klOptimalSigmas(n: number, sigmaMin: number, sigmaMax: number): Float64Array {
  const aMin = Math.atan(sigmaMin), aMax = Math.atan(sigmaMax);
  return Float64Array.from({ length: n + 1 }, (_, i) => Math.tan((i / n) * aMin + (1 - i / n) * aMax));
}

/** NVIDIA's Align Your Steps sigmas for SDXL (10 steps, 11 values), as A1111 lists them. */
export const AYS_SDXL_SIGMAS = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029] as const;

/**
 * Align Your Steps for SDXL: the 11 listed sigmas when n is 11, otherwise n values interpolated
 * linearly in log sigma over an even [0, 1] grid (AYS' own recipe); then a final 0. The model's range
 * is not used: the list is for SDXL's training sigmas.
 */
export function alignYourStepsSigmas(n: number): Float64Array {
  if (n === AYS_SDXL_SIGMAS.length) return Float64Array.from([...AYS_SDXL_SIGMAS, 0]);
  // ascending in x and in log sigma, as np.interp needs
  const ys = [...AYS_SDXL_SIGMAS].reverse().map(Math.log);
  const xs = npLinspace(0, 1, ys.length);
  const interpolated = Array.from(npLinspace(0, 1, n), (x) => Math.exp(npInterp(x, xs, ys))).reverse();
  return Float64Array.from([...interpolated, 0]);
}

/** np.interp(x, xp, fp) for one x (xp ascending): slope * (x - xp[j]) + fp[j] on the interval holding x. */
function npInterp(x: number, xp: ArrayLike<number>, fp: ArrayLike<number>): number {
  const last = xp.length - 1;
  if (x <= xp[0]) return fp[0];
  if (x >= xp[last]) return fp[last];
  let j = 0;
  while (xp[j + 1] <= x) j++;
  if (x === xp[j]) return fp[j];
  return ((fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])) * (x - xp[j]) + fp[j];
}

/** The sigmas (steps + 1 values) of a custom schedule, sigma_min and sigma_max being the training table's ends. */
export function customSigmas(schedule: CustomSigmaSchedule, steps: number, sigmaMin: number, sigmaMax: number): Float64Array {
  switch (schedule) {
    case "polyexponential": return polyexponentialSigmas(steps, sigmaMin, sigmaMax);
    case "kl_optimal": return klOptimalSigmas(steps, sigmaMin, sigmaMax);
    case "align_your_steps": return alignYourStepsSigmas(steps);
  }
}
