import { BaseScheduler } from "./base.js";
import {
  type BaseConfig, checkOption, drawNoise, f32, interpIndex, logF32, multistepTimesteps, npLinspace, resolveConfig, roundHalfEven,
  sigmaTable, sigmaToT,
} from "./common.js";
import { alphaSigma, dataPrediction } from "./dpm-solver.js";
import { convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";
import type { NoiseGenerator } from "./types.js";

export interface DPMSolverSinglestepConfig extends BaseConfig {
  solver_order: number;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  algorithm_type: string;
  solver_type: string;
  lower_order_final: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  final_sigmas_type: string;
  lambda_min_clipped: number;
  variance_type: string | null;
}

export const DPM_SINGLESTEP_DEFAULTS: DPMSolverSinglestepConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  solver_order: 2, prediction_type: "epsilon", thresholding: false, dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0, algorithm_type: "dpmsolver++", solver_type: "midpoint", lower_order_final: false,
  use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, final_sigmas_type: "zero",
  lambda_min_clipped: -Infinity, variance_type: null,
  // not options of this class in diffusers (it always spaces like "linspace"); kept for the shared helpers
  timestep_spacing: "linspace", steps_offset: 0,
};

type Coef = { alpha: number; sigma: number; lambda: number };

/**
 * diffusers DPMSolverSinglestepScheduler (Segmind's "DPM Single"): DPM-Solver++ of order 1-3 in
 * single-step form, where a group of `order` steps starts from one stored sample and each step of the
 * group adds one model evaluation; with "sde-dpmsolver++" fresh noise enters every step.
 */
export class DPMSolverSinglestepScheduler extends BaseScheduler<DPMSolverSinglestepConfig> {
  sigmas: Float64Array;
  private modelOutputs: (Float32Array | null)[];
  private sample: Float32Array | null = null;
  private orderList: number[] = [];
  /** diffusers rewrites lower_order_final to true for uneven step counts or a zero final sigma, and keeps it. */
  private lowerOrderFinal: boolean;

  constructor(config: object = {}, overrides: object = {}) {
    const c = resolveConfig("DPMSolverSinglestepScheduler", DPM_SINGLESTEP_DEFAULTS, config, overrides);
    if (c.algorithm_type === "deis") c.algorithm_type = "dpmsolver++";
    if (["logrho", "bh1", "bh2"].includes(c.solver_type)) c.solver_type = "midpoint";
    // the spacing of other classes' configs does not apply to this one
    c.timestep_spacing = "linspace";
    c.steps_offset = 0;
    super("DPMSolverSinglestepScheduler", c, true);
    checkOption(this.className, "algorithm_type", c.algorithm_type, ["dpmsolver++", "sde-dpmsolver++"]);
    checkOption(this.className, "solver_type", c.solver_type, ["midpoint", "heun"]);
    checkOption(this.className, "solver_order", c.solver_order, [1, 2, 3]);
    checkOption(this.className, "prediction_type", c.prediction_type, ["epsilon", "sample", "v_prediction"]);
    checkOption(this.className, "final_sigmas_type", c.final_sigmas_type, ["zero", "sigma_min"]);
    checkOption(this.className, "thresholding", c.thresholding, [false]);
    checkOption(this.className, "variance_type", c.variance_type, [null]);
    sigmaScheduleKind(this.className, c);
    this.lowerOrderFinal = c.lower_order_final;
    this.sigmas = Float64Array.from(sigmaTable(this.alphasCumprod));
    const T = c.num_train_timesteps;
    this.timesteps = npLinspace(0, T - 1, T).reverse();
    this.modelOutputs = new Array(c.solver_order).fill(null);
  }

  /** The solver order of each step: groups of 1, 2(, 3), shortened at the end (diffusers get_order_list). */
  orders(steps: number): number[] {
    const order = this.config.solver_order;
    const repeat = (group: number[], times: number) => Array.from({ length: Math.max(0, times) }, () => group).flat();
    let out: number[];
    if (this.lowerOrderFinal) {
      if (order === 3) {
        if (steps % 3 === 0) out = [...repeat([1, 2, 3], Math.floor(steps / 3) - 1), 1, 2, 1];
        else if (steps % 3 === 1) out = [...repeat([1, 2, 3], Math.floor(steps / 3)), 1];
        else out = [...repeat([1, 2, 3], Math.floor(steps / 3)), 1, 2];
      } else if (order === 2) {
        out = steps % 2 === 0 ? [...repeat([1, 2], steps / 2 - 1), 1, 1] : [...repeat([1, 2], Math.floor(steps / 2)), 1];
      } else out = repeat([1], steps);
    } else {
      out = order === 3 ? repeat([1, 2, 3], Math.floor(steps / 3)) : order === 2 ? repeat([1, 2], Math.floor(steps / 2)) : repeat([1], steps);
    }
    if (this.config.final_sigmas_type === "zero" && out.length > 0) out[out.length - 1] = 1;
    return out;
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const table = sigmaTable(this.alphasCumprod);
    let clipped = 0;
    for (let t = c.num_train_timesteps - 1; t >= 0 && lambdaOfAlphaBar(this.alphasCumprod[t]) < c.lambda_min_clipped; t--) clipped++;
    let timesteps = multistepTimesteps(c, numInferenceSteps, c.num_train_timesteps - clipped);
    const logSigmas = logF32(table);
    let sigmas: Float64Array;
    const kind = sigmaScheduleKind(this.className, c);
    if (kind) {
      sigmas = convertSigmas(kind, table[0], table[table.length - 1], numInferenceSteps);
      // Karras timesteps are rounded; the others truncated by the int64 cast
      timesteps = sigmas.map((s) => (kind === "karras" ? roundHalfEven : Math.trunc)(sigmaToT(s, logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, table));
    }
    const last = c.final_sigmas_type === "sigma_min" ? table[0] : 0;
    this.sigmas = Float64Array.from([...sigmas, last].map(f32));
    this.timesteps = timesteps;
    this.numInferenceSteps = numInferenceSteps;
    this.modelOutputs = new Array(c.solver_order).fill(null);
    this.sample = null;
    if (numInferenceSteps % c.solver_order !== 0 || c.final_sigmas_type === "zero") this.lowerOrderFinal = true;
    this.orderList = this.orders(numInferenceSteps);
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    this.requireTimesteps();
    const c = this.config;
    const i = this.initStepIndex(timestep, true);
    const x0 = dataPrediction(c.prediction_type, this.sigmas[i], modelOutput, sample);
    this.modelOutputs.shift();
    this.modelOutputs.push(x0);
    const noise = c.algorithm_type === "sde-dpmsolver++" ? drawNoise(generator, shape ?? [sample.length], sample.length, this.className) : null;
    let order = this.orderList[i];
    // after a mid-schedule start the history may be shorter than the group
    while (this.modelOutputs[this.modelOutputs.length - order] === null) order--;
    if (order === 1) this.sample = sample;
    const prev = this.update(order, this.sample!, noise);
    this.stepIndex = i + 1;
    return prev;
  }

  private coefficients(offsets: number[]): Coef[] {
    const i = this.stepIndex!;
    return offsets.map((o) => alphaSigma(this.sigmas[i + o]));
  }

  private update(order: number, sample: Float32Array, noise: Float32Array | null): Float32Array {
    const L = this.modelOutputs.length;
    const m = (k: number) => this.modelOutputs[L - 1 - k]!; // m(0) newest
    const heun = this.config.solver_type === "heun";
    // t: the target; s: the start of the group (order - 1 steps back)
    const [t, s] = this.coefficients([1, 1 - order]);
    const h = f32(t.lambda - s.lambda);
    const expm = f32(f32(Math.exp(-h)) - 1), e2h = f32(Math.exp(f32(-2 * h))), one = f32(1 - e2h);
    // x_t = ratio * sample + c0 * D0 + c1 * D1 + c2 * D2 (+ cn * noise), the signs folded into the coefficients
    const ratio = noise ? f32(f32(t.sigma / s.sigma) * f32(Math.exp(-h))) : f32(t.sigma / s.sigma);
    const c0 = noise ? f32(t.alpha * one) : -f32(t.alpha * expm);
    const cn = noise ? f32(t.sigma * f32(Math.sqrt(one))) : 0;
    const first = noise ? f32(f32(one / f32(-2 * h)) + 1) : f32(f32(expm / h) + 1); // the phi_2-type coefficient
    let D0: Float32Array, D1: Float32Array | null = null, D2: Float32Array | null = null, c1 = 0, c2 = 0;
    if (order === 1) {
      D0 = m(0);
    } else if (order === 2) {
      const [s0] = this.coefficients([0]);
      const r0 = f32(f32(s0.lambda - s.lambda) / h), inv = f32(1 / r0);
      D0 = m(1);
      D1 = m(0).map((v, k) => f32(inv * f32(v - D0[k])));
      c1 = heun ? f32(t.alpha * first) : noise ? f32(0.5 * c0) : -f32(0.5 * f32(t.alpha * expm));
    } else {
      const [s0, s1] = this.coefficients([0, -1]);
      const r0 = f32(f32(s0.lambda - s.lambda) / h), r1 = f32(f32(s1.lambda - s.lambda) / h);
      const m0 = m(0), m1 = m(1), m2 = m(2);
      D0 = m2;
      const inv0 = f32(1 / r0), inv1 = f32(1 / r1), dr = f32(r0 - r1);
      const D1_0 = m1.map((v, k) => f32(inv1 * f32(v - m2[k])));
      const D1_1 = m0.map((v, k) => f32(inv0 * f32(v - m2[k])));
      c1 = f32(t.alpha * first);
      if (!heun) {
        D1 = D1_1; // the midpoint form uses the newer difference alone
      } else {
        D1 = D1_0.map((v, k) => f32(f32(f32(r0 * v) - f32(r1 * D1_1[k])) / dr));
        D2 = D1_0.map((v, k) => f32(f32(2 * f32(D1_1[k] - v)) / dr));
        c2 = noise ? f32(t.alpha * f32(f32(f32(one - f32(2 * h)) / f32(f32(-2 * h) * f32(-2 * h))) - 0.5))
          : -f32(t.alpha * f32(f32(f32(expm + h) / f32(h * h)) - 0.5));
      }
    }
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      let v = f32(f32(ratio * sample[k]) + f32(c0 * D0[k]));
      if (D1) v = f32(v + f32(c1 * D1[k]));
      if (D2) v = f32(v + f32(c2 * D2[k]));
      if (noise) v = f32(v + f32(cn * noise[k]));
      out[k] = v;
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const { alpha, sigma } = alphaSigma(this.sigmas[this.addNoiseIndex(timestep, true)]);
    return original.map((x, k) => f32(alpha * x) + f32(sigma * noise[k]));
  }
}

/** lambda_t = log(alpha_t) - log(sigma_t) of a training alphas_cumprod entry (float32). */
function lambdaOfAlphaBar(alphaBar: number): number {
  return f32(f32(Math.log(f32(Math.sqrt(alphaBar)))) - f32(Math.log(f32(Math.sqrt(f32(1 - alphaBar))))));
}
