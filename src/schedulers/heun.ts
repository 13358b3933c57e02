import { checkOption, f32, resolveConfig } from "./common.js";
import { sigmaPredOriginal } from "./euler.js";
import { SigmaScheduler } from "./sigma-scheduler.js";
import type { SpacedSigmasConfig } from "./sigma-schedules.js";

export interface HeunConfig extends SpacedSigmasConfig {
  clip_sample: boolean;
  clip_sample_range: number;
}

export const HEUN_DEFAULTS: HeunConfig = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: "linear", trained_betas: null,
  prediction_type: "epsilon", use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, clip_sample: false, clip_sample_range: 1.0,
  timestep_spacing: "linspace", steps_offset: 0,
};

/**
 * diffusers HeunDiscreteScheduler (Karras et al. Algorithm 2, second order): every timestep after the
 * first appears twice in `timesteps`, for the Euler predictor and then the trapezoidal corrector.
 */
export class HeunDiscreteScheduler extends SigmaScheduler<HeunConfig> {
  override readonly order = 2;
  // state between the predictor and corrector evaluations
  private prevDerivative: Float32Array | null = null;
  private dt = 0;
  private firstSample: Float32Array | null = null;

  constructor(config: object = {}, overrides: object = {}) {
    super("HeunDiscreteScheduler", resolveConfig("HeunDiscreteScheduler", HEUN_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction", "sample"]);
    this.setTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps);
    const s = Array.from(sigmas);
    // [s0, s1, s1, s2, s2, ..., 0] and [t0, t1, t1, t2, t2, ...]
    this.sigmas = Float64Array.from([s[0], ...s.slice(1, -1).flatMap((v) => [v, v]), 0]);
    const ts = Array.from(timesteps); // Karras timesteps stay float64 here, unlike Euler
    this.timesteps = Float64Array.from([ts[0], ...ts.slice(1).flatMap((v) => [v, v])]);
    this.prevDerivative = null;
    this.firstSample = null;
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const c = this.config;
    const first = this.prevDerivative === null;
    // the predictor evaluates at sigmas[i]; the corrector at sigmas[i] too, which is the previous sigma_next
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const sigmaIn = first ? sigma : sigmaNext;
    const range = f32(c.clip_sample_range);
    const derivative = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      let x0 = sigmaPredOriginal(c.prediction_type, sigmaIn, modelOutput[k], sample[k]);
      if (c.clip_sample) x0 = Math.min(Math.max(x0, -range), range);
      derivative[k] = f32(sample[k] - x0) / sigmaIn;
    }
    let out: Float32Array;
    if (first) {
      this.prevDerivative = derivative;
      this.dt = f32(sigmaNext - sigma);
      this.firstSample = sample;
      out = sample.map((s, k) => s + f32(derivative[k] * this.dt));
    } else {
      const prev = this.prevDerivative!, base = this.firstSample!, dt = this.dt;
      out = base.map((s, k) => s + f32(f32(f32(prev[k] + derivative[k]) / 2) * dt));
      this.prevDerivative = null;
      this.firstSample = null;
    }
    this.stepIndex = i + 1;
    return out;
  }
}
