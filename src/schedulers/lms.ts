import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, eulerTimesteps, f32, interpIndex, logF32, resolveConfig, sigmaNorm, sigmaTable, sigmaToT } from "./common.js";
import { sigmaInitNoise, sigmaPredOriginal } from "./euler.js";
import { convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";

export interface LMSConfig extends BaseConfig {
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
}

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
export class LMSDiscreteScheduler extends BaseScheduler<LMSConfig> {
  sigmas: Float64Array = new Float64Array(0);
  /** The order step uses (diffusers' `order` argument of step, default 4). */
  lmsOrder = 4;
  private derivatives: Float32Array[] = [];

  constructor(config: object = {}, overrides: object = {}) {
    super("LMSDiscreteScheduler", resolveConfig("LMSDiscreteScheduler", LMS_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction", "sample"]);
    sigmaScheduleKind(this.className, this.config);
    this.setTimesteps(this.config.num_train_timesteps);
    this.numInferenceSteps = null;
  }

  override get initNoiseSigma(): number {
    return sigmaInitNoise(this.sigmas, this.config.timestep_spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    this.numInferenceSteps = numInferenceSteps;
    let timesteps: Float64Array = eulerTimesteps(c, numInferenceSteps);
    const table = sigmaTable(this.alphasCumprod);
    let sigmas: Float64Array = timesteps.map((t) => interpIndex(t, table));
    const kind = sigmaScheduleKind(this.className, c);
    if (kind) {
      // the end points are those of the spaced schedule (LMS has no sigma_min / sigma_max option)
      sigmas = convertSigmas(kind, sigmas[sigmas.length - 1], sigmas[0], numInferenceSteps);
      const logSigmas = logF32(table);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, logSigmas)));
    }
    this.sigmas = Float64Array.from([...sigmas.map(f32), 0]);
    this.timesteps = timesteps;
    this.derivatives = [];
    this.resetSteps();
  }

  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const d = sigmaNorm(this.sigmas[this.initStepIndex(timestep)]);
    return sample.map((x) => x / d);
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

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.addNoiseIndex(timestep)];
    return original.map((x, k) => x + f32(noise[k] * sigma));
  }
}
