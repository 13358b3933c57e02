import { BaseScheduler } from "./base.js";
import {
  type BaseConfig, checkOption, drawNoise, f32, interpIndex, karrasSigmas, lincomb, logF32, multistepTimesteps,
  npLinspace, resolveConfig, roundHalfEven, sigmaNorm, sigmaTable, sigmaToT,
} from "./common.js";
import { convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";
import type { NoiseGenerator } from "./types.js";

export interface DPMSolverConfig extends BaseConfig {
  solver_order: number;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  algorithm_type: string;
  solver_type: string;
  lower_order_final: boolean;
  euler_at_final: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  use_lu_lambdas: boolean;
  final_sigmas_type: string;
  lambda_min_clipped: number;
  variance_type: string | null;
  rescale_betas_zero_snr: boolean;
}

export const DPM_SOLVER_DEFAULTS: DPMSolverConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  solver_order: 2, prediction_type: "epsilon", thresholding: false, dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0, algorithm_type: "dpmsolver++", solver_type: "midpoint", lower_order_final: true,
  euler_at_final: false, use_karras_sigmas: false, use_exponential_sigmas: false,
  use_beta_sigmas: false, use_lu_lambdas: false, final_sigmas_type: "zero",
  lambda_min_clipped: -Infinity, variance_type: null, timestep_spacing: "linspace", steps_offset: 0,
  rescale_betas_zero_snr: false,
};

/** VP-SDE coefficients of a sigma, as float32 0-d tensors: alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t. */
export function alphaSigma(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = f32(1 / sigmaNorm(sigma));
  const s = f32(sigma * alpha);
  return { alpha, sigma: s, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(s))) };
}

/** x0 (data) prediction from the model output, as the multistep solvers convert it. */
export function dataPrediction(predictionType: string, sigma: number, modelOutput: Float32Array, sample: Float32Array): Float32Array {
  if (predictionType === "sample") return modelOutput;
  const { alpha, sigma: sigmaT } = alphaSigma(sigma);
  if (predictionType === "v_prediction") return lincomb(alpha, sample, -sigmaT, modelOutput);
  return sample.map((s, k) => f32(s - f32(sigmaT * modelOutput[k])) / alpha); // epsilon
}

/**
 * diffusers DPMSolverMultistepScheduler: DPM-Solver++ (data prediction) of order 1-3, and its SDE
 * variant "sde-dpmsolver++" ("DPM++ 2M SDE", "DPM++ 3M SDE"), with optional Karras, exponential or beta sigmas. The noise-prediction
 * variants "dpmsolver"/"sde-dpmsolver" (deprecated in diffusers) are not ported.
 */
export class DPMSolverMultistepScheduler extends BaseScheduler<DPMSolverConfig> {
  sigmas: Float64Array;
  private modelOutputs: (Float32Array | null)[];
  private lowerOrderNums = 0;

  constructor(config: object = {}, overrides: object = {}) {
    const c = resolveConfig("DPMSolverMultistepScheduler", DPM_SOLVER_DEFAULTS, config, overrides);
    // diffusers maps the solver types of its other solvers onto midpoint, and "deis" onto dpmsolver++
    if (c.algorithm_type === "deis") c.algorithm_type = "dpmsolver++";
    if (["logrho", "bh1", "bh2"].includes(c.solver_type)) c.solver_type = "midpoint";
    super("DPMSolverMultistepScheduler", c, true);
    checkOption(this.className, "algorithm_type", c.algorithm_type, ["dpmsolver++", "sde-dpmsolver++"]);
    checkOption(this.className, "solver_type", c.solver_type, ["midpoint", "heun"]);
    checkOption(this.className, "solver_order", c.solver_order, [1, 2, 3]);
    checkOption(this.className, "prediction_type", c.prediction_type, ["epsilon", "sample", "v_prediction"]);
    checkOption(this.className, "final_sigmas_type", c.final_sigmas_type, ["zero", "sigma_min"]);
    checkOption(this.className, "thresholding", c.thresholding, [false]);
    checkOption(this.className, "variance_type", c.variance_type, [null]);
    sigmaScheduleKind(this.className, c);
    this.sigmas = Float64Array.from(sigmaTable(this.alphasCumprod));
    const T = c.num_train_timesteps;
    this.timesteps = npLinspace(0, T - 1, T).reverse();
    this.modelOutputs = new Array(c.solver_order).fill(null);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const table = sigmaTable(this.alphasCumprod);
    // lambda_min_clipped trims the noisiest timesteps (lambda_t falls as t grows)
    let clipped = 0;
    for (let t = c.num_train_timesteps - 1; t >= 0 && lambdaOfAlphaBar(this.alphasCumprod[t]) < c.lambda_min_clipped; t--) clipped++;
    let timesteps = multistepTimesteps(c, numInferenceSteps, c.num_train_timesteps - clipped);
    const logSigmas = logF32(table);
    let sigmas: Float64Array;
    if (c.use_karras_sigmas) {
      sigmas = karrasSigmas(table[0], table[table.length - 1], numInferenceSteps);
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas)));
    } else if (c.use_exponential_sigmas || c.use_beta_sigmas) {
      // unlike Karras, diffusers does not round these: the int64 cast truncates
      sigmas = convertSigmas(c.use_beta_sigmas ? "beta" : "exponential", table[0], table[table.length - 1], numInferenceSteps);
      timesteps = sigmas.map((s) => Math.trunc(sigmaToT(s, logSigmas)));
    } else if (c.use_lu_lambdas) {
      // uniform in log-sigma (Lu et al. 2022), from sigma_max down to sigma_min
      const max = logSigmas[logSigmas.length - 1], min = logSigmas[0];
      sigmas = npLinspace(0, 1, numInferenceSteps).map((r) => Math.exp(max + r * (min - max)));
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, table));
    }
    const last = c.final_sigmas_type === "sigma_min" ? table[0] : 0;
    this.sigmas = Float64Array.from([...sigmas, last].map(f32));
    this.timesteps = timesteps;
    this.numInferenceSteps = timesteps.length;
    this.modelOutputs = new Array(c.solver_order).fill(null);
    this.lowerOrderNums = 0;
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    this.requireTimesteps();
    const c = this.config;
    const i = this.initStepIndex(timestep, true);
    const n = this.timesteps.length;
    const lowerOrderFinal = i === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === "zero");
    const lowerOrderSecond = i === n - 2 && c.lower_order_final && n < 15;

    const x0 = dataPrediction(c.prediction_type, this.sigmas[i], modelOutput, sample);
    this.modelOutputs.shift();
    this.modelOutputs.push(x0);
    const noise = c.algorithm_type === "sde-dpmsolver++" ? drawNoise(generator, shape ?? [sample.length], sample.length, this.className) : null;

    let prev: Float32Array;
    if (c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) prev = this.firstOrder(x0, sample, noise);
    else if (c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) prev = this.secondOrder(sample, noise);
    else prev = this.thirdOrder(sample, noise);

    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return prev;
  }

  private coefficients(offsets: number[]): { alpha: number; sigma: number; lambda: number }[] {
    const i = this.stepIndex!;
    return offsets.map((o) => alphaSigma(this.sigmas[i + o]));
  }

  private firstOrder(m0: Float32Array, sample: Float32Array, noise: Float32Array | null): Float32Array {
    const [t, s] = this.coefficients([1, 0]);
    const h = f32(t.lambda - s.lambda);
    if (!noise) {
      return lincomb(f32(t.sigma / s.sigma), sample, -f32(t.alpha * f32(f32(Math.exp(-h)) - 1)), m0);
    }
    const e2h = f32(Math.exp(f32(-2 * h)));
    const out = lincomb(f32(f32(t.sigma / s.sigma) * f32(Math.exp(-h))), sample, f32(t.alpha * f32(1 - e2h)), m0);
    const cn = f32(t.sigma * f32(Math.sqrt(f32(1 - e2h))));
    return out.map((v, k) => v + f32(cn * noise[k]));
  }

  private secondOrder(sample: Float32Array, noise: Float32Array | null): Float32Array {
    const [t, s0, s1] = this.coefficients([1, 0, -1]);
    const m0 = this.modelOutputs[this.modelOutputs.length - 1]!, m1 = this.modelOutputs[this.modelOutputs.length - 2]!;
    const h = f32(t.lambda - s0.lambda), h0 = f32(s0.lambda - s1.lambda);
    const invR0 = f32(1 / f32(h0 / h));
    const D1 = m0.map((v, k) => f32(invR0 * f32(v - m1[k])));
    const midpoint = this.config.solver_type === "midpoint";
    if (!noise) {
      const expm = f32(f32(Math.exp(-h)) - 1);
      const c0 = f32(t.alpha * expm);
      const c1 = midpoint ? f32(0.5 * c0) : -f32(t.alpha * f32(f32(expm / h) + 1));
      const out = lincomb(f32(t.sigma / s0.sigma), sample, -c0, m0);
      return out.map((v, k) => v - f32(c1 * D1[k]));
    }
    const e2h = f32(Math.exp(f32(-2 * h)));
    const c0 = f32(t.alpha * f32(1 - e2h));
    const c1 = midpoint ? f32(0.5 * c0) : f32(t.alpha * f32(f32(f32(1 - e2h) / f32(-2 * h)) + 1));
    const cn = f32(t.sigma * f32(Math.sqrt(f32(1 - e2h))));
    const out = lincomb(f32(f32(t.sigma / s0.sigma) * f32(Math.exp(-h))), sample, c0, m0);
    return out.map((v, k) => f32(v + f32(c1 * D1[k])) + f32(cn * noise[k]));
  }

  private thirdOrder(sample: Float32Array, noise: Float32Array | null): Float32Array {
    const [t, s0, s1, s2] = this.coefficients([1, 0, -1, -2]);
    const L = this.modelOutputs.length;
    const m0 = this.modelOutputs[L - 1]!, m1 = this.modelOutputs[L - 2]!, m2 = this.modelOutputs[L - 3]!;
    const h = f32(t.lambda - s0.lambda), h0 = f32(s0.lambda - s1.lambda), h1 = f32(s1.lambda - s2.lambda);
    const r0 = f32(h0 / h), r1 = f32(h1 / h);
    const inv0 = f32(1 / r0), inv1 = f32(1 / r1), rr = f32(r0 + r1);
    const wD1 = f32(r0 / rr), wD2 = f32(1 / rr);
    const D = (k: number) => {
      const d10 = f32(inv0 * f32(m0[k] - m1[k])), d11 = f32(inv1 * f32(m1[k] - m2[k]));
      const diff = f32(d10 - d11);
      return [f32(d10 + f32(wD1 * diff)), f32(wD2 * diff)];
    };
    const out = new Float32Array(sample.length);
    if (noise) {
      // SDE-DPM-Solver++ of third order ("DPM++ 3M SDE")
      const e2h = f32(Math.exp(f32(-2 * h))), one = f32(1 - e2h);
      const ratio = f32(f32(t.sigma / s0.sigma) * f32(Math.exp(-h)));
      const c0 = f32(t.alpha * one);
      const c1 = f32(t.alpha * f32(f32(one / f32(-2 * h)) + 1));
      const c2 = f32(t.alpha * f32(f32(f32(one - f32(2 * h)) / f32(f32(2 * h) * f32(2 * h))) - 0.5));
      const cn = f32(t.sigma * f32(Math.sqrt(one)));
      for (let k = 0; k < out.length; k++) {
        const [D1, D2] = D(k);
        out[k] = f32(f32(f32(f32(ratio * sample[k]) + f32(c0 * m0[k])) + f32(c1 * D1)) + f32(c2 * D2)) + f32(cn * noise[k]);
      }
      return out;
    }
    const expm = f32(f32(Math.exp(-h)) - 1);
    const c0 = f32(t.alpha * expm);
    const c1 = f32(t.alpha * f32(f32(expm / h) + 1));
    const c2 = f32(t.alpha * f32(f32(f32(expm + h) / f32(h * h)) - 0.5));
    const ratio = f32(t.sigma / s0.sigma);
    for (let k = 0; k < out.length; k++) {
      const [D1, D2] = D(k);
      out[k] = f32(f32(f32(ratio * sample[k]) - f32(c0 * m0[k])) + f32(c1 * D1)) - f32(c2 * D2);
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const { alpha, sigma } = alphaSigma(this.sigmas[this.addNoiseIndex(timestep, true)]);
    return lincomb(alpha, original, sigma, noise);
  }
}

/** lambda_t = log(alpha_t) - log(sigma_t) of a training alphas_cumprod entry (float32). */
function lambdaOfAlphaBar(alphaBar: number): number {
  return f32(f32(Math.log(f32(Math.sqrt(alphaBar)))) - f32(Math.log(f32(Math.sqrt(f32(1 - alphaBar))))));
}
