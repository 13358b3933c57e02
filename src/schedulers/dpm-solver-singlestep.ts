import { f32, resolveConfig } from "./common.js";
import { type DPMSolverBaseConfig, DPMSolverBase } from "./dpm-solver-common.js";
import type { NoiseGenerator } from "./types.js";

export type DPMSolverSinglestepConfig = DPMSolverBaseConfig;

export const DPM_SINGLESTEP_DEFAULTS: DPMSolverSinglestepConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  solver_order: 2, prediction_type: "epsilon", thresholding: false, dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0, algorithm_type: "dpmsolver++", solver_type: "midpoint", lower_order_final: false,
  use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, final_sigmas_type: "zero",
  lambda_min_clipped: -Infinity, variance_type: null,
  // not options of this class in diffusers (it always spaces like "linspace"); kept for the shared helpers
  timestep_spacing: "linspace", steps_offset: 0,
};

/**
 * diffusers DPMSolverSinglestepScheduler (Segmind's "DPM Single"): DPM-Solver++ of order 1-3 in
 * single-step form, where a group of `order` steps starts from one stored sample and each step of the
 * group adds one model evaluation; with "sde-dpmsolver++" fresh noise enters every step.
 */
export class DPMSolverSinglestepScheduler extends DPMSolverBase<DPMSolverSinglestepConfig> {
  private sample: Float32Array | null = null;
  private orderList: number[] = [];
  /** diffusers rewrites lower_order_final to true for uneven step counts or a zero final sigma, and keeps it. */
  private lowerOrderFinal: boolean;

  constructor(config: object = {}, overrides: object = {}) {
    const c = resolveConfig("DPMSolverSinglestepScheduler", DPM_SINGLESTEP_DEFAULTS, config, overrides);
    // the spacing of other classes' configs does not apply to this one
    c.timestep_spacing = "linspace";
    c.steps_offset = 0;
    super("DPMSolverSinglestepScheduler", c);
    this.lowerOrderFinal = c.lower_order_final;
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
    this.setSchedule(numInferenceSteps);
    this.numInferenceSteps = numInferenceSteps;
    this.sample = null;
    if (numInferenceSteps % c.solver_order !== 0 || c.final_sigmas_type === "zero") this.lowerOrderFinal = true;
    this.orderList = this.orders(numInferenceSteps);
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep, true);
    const { noise } = this.pushModelOutput(i, modelOutput, sample, generator, shape);
    let order = this.orderList[i];
    // after a mid-schedule start the history may be shorter than the group
    while (!this.history.has(order - 1)) order--;
    if (order === 1) this.sample = sample;
    const prev = this.update(order, this.sample!, noise);
    this.stepIndex = i + 1;
    return prev;
  }

  /** The update of a step of order 2 or 3 within its group; order 1 is the multistep one. */
  private update(order: number, sample: Float32Array, noise: Float32Array | null): Float32Array {
    if (order === 1) return this.firstOrderUpdate(this.history.newest(), sample, noise);
    const m = (k: number) => this.history.newest(k);
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
    if (order === 2) {
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
}
