import { f32, lincomb, resolveConfig } from "./common.js";
import { type DPMSolverBaseConfig, DPMSolverBase } from "./dpm-solver-common.js";
import type { NoiseGenerator } from "./types.js";

export interface DPMSolverConfig extends DPMSolverBaseConfig {
  euler_at_final: boolean;
  use_lu_lambdas: boolean;
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

/**
 * diffusers DPMSolverMultistepScheduler: DPM-Solver++ of order 1-3 and "sde-dpmsolver++" ("DPM++ 2M SDE",
 * "DPM++ 3M SDE"), with optional Karras, exponential or beta sigmas (see DPMSolverBase).
 */
export class DPMSolverMultistepScheduler extends DPMSolverBase<DPMSolverConfig> {
  constructor(config: object = {}, overrides: object = {}) {
    super("DPMSolverMultistepScheduler", resolveConfig("DPMSolverMultistepScheduler", DPM_SOLVER_DEFAULTS, config, overrides));
  }

  setTimesteps(numInferenceSteps: number): void {
    this.setSchedule(numInferenceSteps, this.config.use_lu_lambdas);
    this.numInferenceSteps = this.timesteps.length;
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    this.requireTimesteps();
    const c = this.config;
    const i = this.initStepIndex(timestep, true);
    const n = this.timesteps.length;
    const lowerOrderFinal = i === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === "zero");
    const lowerOrderSecond = i === n - 2 && c.lower_order_final && n < 15;

    const { x0, noise } = this.pushModelOutput(i, modelOutput, sample, generator, shape);

    let prev: Float32Array;
    const done = this.history.lowerOrderNums;
    if (c.solver_order === 1 || done < 1 || lowerOrderFinal) prev = this.firstOrderUpdate(x0, sample, noise);
    else if (c.solver_order === 2 || done < 2 || lowerOrderSecond) prev = this.secondOrder(sample, noise);
    else prev = this.thirdOrder(sample, noise);

    this.history.stepDone();
    this.stepIndex = i + 1;
    return prev;
  }

  private secondOrder(sample: Float32Array, noise: Float32Array | null): Float32Array {
    const [t, s0, s1] = this.coefficients([1, 0, -1]);
    const m0 = this.history.newest(0), m1 = this.history.newest(1);
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
    const m0 = this.history.newest(0), m1 = this.history.newest(1), m2 = this.history.newest(2);
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
}
