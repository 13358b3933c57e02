import { checkOption, f32, resolveConfig } from "./common.js";
import { sigmaPredOriginal } from "./euler.js";
import { SigmaScheduler } from "./sigma-scheduler.js";
import { type SpacedSigmasConfig, sigmaScheduleKind } from "./sigma-schedules.js";

export type LMSConfig = SpacedSigmasConfig;

export const LMS_DEFAULTS: LMSConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, prediction_type: "epsilon",
  timestep_spacing: "linspace", steps_offset: 0,
};

// 3-point Gauss-Legendre on [-1, 1]: exact for the (degree <= 3) Lagrange polynomials LMS integrates
const GL_X = [-Math.sqrt(3 / 5), 0, Math.sqrt(3 / 5)];
const GL_W = [5 / 9, 8 / 9, 5 / 9];

/**
 * diffusers LMSDiscreteScheduler ("LMS"): the linear multistep method of k-diffusion in sigma space, of
 * order 4 (the default of its step) with the lower orders while the history fills up.
 */
export class LMSDiscreteScheduler extends SigmaScheduler<LMSConfig> {
  /** The order step uses (diffusers' `order` argument of step, default 4). */
  lmsOrder = 4;
  private derivatives: Float32Array[] = [];

  constructor(config: object = {}, overrides: object = {}) {
    super("LMSDiscreteScheduler", resolveConfig("LMSDiscreteScheduler", LMS_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction", "sample"]);
    sigmaScheduleKind(this.className, this.config);
    this.setTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps);
    this.sigmas = Float64Array.from(sigmas);
    // diffusers casts them to float32 (the spaced ones already are; a schedule's are float64)
    this.timesteps = timesteps.map(f32);
    this.derivatives = [];
    this.resetSteps();
  }

  /** The integral over [sigma_t, sigma_t+1] of the Lagrange basis polynomial of sigmas[t - current]. */
  lmsCoefficient(order: number, t: number, current: number): number {
    const s = this.sigmas;
    const basis = (tau: number) => {
      let prod = 1;
      for (let k = 0; k < order; k++) {
        if (k !== current) prod *= (tau - s[t - k]) / (s[t - current] - s[t - k]);
      }
      return prod;
    };
    const a = s[t], b = s[t + 1], half = (b - a) / 2, mid = (a + b) / 2;
    let sum = 0;
    for (let i = 0; i < 3; i++) sum += GL_W[i] * basis(mid + half * GL_X[i]);
    return sum * half;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    this.requireTimesteps();
    const i = this.initStepIndex(timestep);
    const sigma = this.sigmas[i];
    const derivative = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      derivative[k] = f32(sample[k] - sigmaPredOriginal(this.config.prediction_type, sigma, modelOutput[k], sample[k])) / sigma;
    }
    this.derivatives.push(derivative);
    if (this.derivatives.length > this.lmsOrder) this.derivatives.shift();
    const order = Math.min(i + 1, this.lmsOrder);
    const coeffs = Array.from({ length: order }, (_, cur) => this.lmsCoefficient(order, i, cur));
    const out = new Float32Array(sample.length);
    const L = this.derivatives.length;
    // diffusers zips the coefficients with the history: mid-schedule starts (img2img) use only what there is
    const terms = Math.min(order, L);
    for (let k = 0; k < out.length; k++) {
      // sum(coeff * derivative) from the newest derivative back, then added to the sample
      let acc = 0;
      for (let j = 0; j < terms; j++) acc = f32(acc + f32(f32(coeffs[j]) * this.derivatives[L - 1 - j][k]));
      out[k] = sample[k] + acc;
    }
    this.stepIndex = i + 1;
    return out;
  }
}
