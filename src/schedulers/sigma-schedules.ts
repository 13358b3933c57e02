/**
 * The sigma schedules of the sigma-space schedulers: the spaced default (spacedSigmas) and those diffusers
 * offers besides it (its `use_karras_sigmas`, `use_exponential_sigmas` and `use_beta_sigmas` options), in
 * float64 as diffusers computes them with numpy.
 */
import { type BaseConfig, eulerTimesteps, interpIndex, karrasSigmas, logF32, npLinspace, sigmaToT } from "./common.js";

/** The options that replace the default sigmas, at most one of them true. */
export interface SigmaScheduleOptions {
  use_karras_sigmas?: boolean;
  use_exponential_sigmas?: boolean;
  use_beta_sigmas?: boolean;
}

/** The config of LMS and DPM2 (a): the shared fields and the three options; Euler and Heun add theirs. */
export interface SpacedSigmasConfig extends BaseConfig {
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
}

/** Which of the three is on (diffusers refuses more than one). */
export function sigmaScheduleKind(className: string, c: SigmaScheduleOptions): "karras" | "exponential" | "beta" | null {
  const on = (["karras", "exponential", "beta"] as const).filter((k) => c[`use_${k}_sigmas`] === true);
  if (on.length > 1) throw new Error(`${className}: only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas can be true`);
  return on[0] ?? null;
}

/** exp(linspace(log sigma_max, log sigma_min, n)) (diffusers _convert_to_exponential). */
export function exponentialSigmas(sigmaMin: number, sigmaMax: number, n: number): Float64Array {
  return npLinspace(Math.log(sigmaMax), Math.log(sigmaMin), n).map(Math.exp);
}

/**
 * sigma_min + ppf(1 - r) * (sigma_max - sigma_min) for r = linspace(0, 1, n), ppf the Beta(alpha, beta)
 * quantile (scipy.stats.beta.ppf; diffusers _convert_to_beta, "Beta Sampling is All You Need", arXiv 2407.12173).
 */
export function betaSigmas(sigmaMin: number, sigmaMax: number, n: number, alpha = 0.6, beta = 0.6): Float64Array {
  return npLinspace(0, 1, n).map((r) => sigmaMin + betaPpf(1 - r, alpha, beta) * (sigmaMax - sigmaMin));
}

/** The schedule of `kind` between the given end points (Karras with rho = 7). */
export function convertSigmas(kind: "karras" | "exponential" | "beta", sigmaMin: number, sigmaMax: number, n: number): Float64Array {
  if (kind === "karras") return karrasSigmas(sigmaMin, sigmaMax, n);
  if (kind === "exponential") return exponentialSigmas(sigmaMin, sigmaMax, n);
  return betaSigmas(sigmaMin, sigmaMax, n);
}

/** What spacedSigmas returns; `kind` is the schedule option that is on. */
export interface SpacedSchedule {
  timesteps: Float64Array;
  /** n + 1 values, float32, the last 0. */
  sigmas: Float32Array;
  logSigmas: Float32Array;
  kind: "karras" | "exponential" | "beta" | null;
}

/**
 * The first half of setTimesteps in Euler a, Heun, LMS and DPM2 (a): Euler's spaced timesteps and their
 * sigmas (interpolated in the training table `table`, then float32 with a final 0). With a schedule
 * option on, the sigmas are that schedule between the spaced end points and the timesteps are mapped
 * back from them, fractional and float64: each scheduler rounds them as diffusers does.
 */
export function spacedSigmas(className: string, c: BaseConfig & SigmaScheduleOptions, table: Float32Array, n: number): SpacedSchedule {
  let timesteps: Float64Array = eulerTimesteps(c, n);
  let sigmas: Float64Array = timesteps.map((t) => interpIndex(t, table));
  const logSigmas = logF32(table);
  const kind = sigmaScheduleKind(className, c);
  if (kind) {
    sigmas = convertSigmas(kind, sigmas[sigmas.length - 1], sigmas[0], n);
    timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
  }
  return { timesteps, sigmas: Float32Array.from([...sigmas, 0]), logSigmas, kind };
}

/** Inverse of the regularized incomplete beta function: bisection to the last bit (I_x is monotone). */
export function betaPpf(q: number, a: number, b: number): number {
  if (!(q > 0)) return 0;
  if (q >= 1) return 1;
  let lo = 0, hi = 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (regularizedBeta(mid, a, b) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** I_x(a, b) by its continued fraction (modified Lentz), using the symmetry where that converges faster. */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const front = Math.exp(a * Math.log(x) + b * Math.log1p(-x) - logBeta(a, b)) / a;
  const tiny = 1e-300;
  let f = 1, c = 1, d = 0;
  for (let i = 0; i <= 500; i++) {
    const m = Math.floor(i / 2);
    let num: number;
    if (i === 0) num = 1;
    else if (i % 2 === 0) num = (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m));
    else num = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    const cd = c * d;
    f *= cd;
    if (Math.abs(1 - cd) < 1e-16) break;
  }
  return front * (f - 1);
}

function logBeta(a: number, b: number): number {
  return logGamma(a) + logGamma(b) - logGamma(a + b);
}

// Lanczos approximation (g = 7, 9 terms): about 1e-15 relative for x > 0
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let s = LANCZOS[0];
  for (let i = 1; i < 9; i++) s += LANCZOS[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}
