import {
  checkOption, drawNoise, eulerTimesteps, f32, interpIndex, logF32, npLinspace, resolveConfig, sigmaTable, sigmaToT,
} from "./common.js";
import { SigmaScheduler } from "./sigma-scheduler.js";
import { type SpacedSigmasConfig, convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";
import { CUSTOM_SIGMA_SCHEDULES, type CustomSigmaSchedule, customSigmas } from "./a1111-sigmas.js";
import type { NoiseGenerator } from "./types.js";

export interface EulerConfig extends SpacedSigmasConfig {
  interpolation_type: string;
  sigma_min: number | null;
  sigma_max: number | null;
  timestep_type: string;
  rescale_betas_zero_snr: boolean;
  /** The sigma after the last step: 0 (diffusers' default) or the training table's smallest. */
  final_sigmas_type: string;
  /**
   * Not a diffusers config field: diffusers' set_timesteps(sigmas=...) with the sigmas of this A1111
   * schedule type (a1111-sigmas.ts) for the requested step count; null for the config's own schedule.
   */
  custom_sigmas: CustomSigmaSchedule | null;
}

export const EULER_DEFAULTS: EulerConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  prediction_type: "epsilon", interpolation_type: "linear", use_karras_sigmas: false,
  use_exponential_sigmas: false, use_beta_sigmas: false, sigma_min: null, sigma_max: null,
  timestep_spacing: "linspace", timestep_type: "discrete", steps_offset: 0, rescale_betas_zero_snr: false,
  final_sigmas_type: "zero", custom_sigmas: null,
};

/** x0 prediction of the k-diffusion (sigma) parameterization. */
export function sigmaPredOriginal(predictionType: string, sigma: number, m: number, s: number): number {
  if (predictionType === "epsilon") return f32(s - f32(sigma * m));
  if (predictionType === "v_prediction") {
    const c2 = f32(f32(sigma * sigma) + 1);
    return f32(f32(m * f32(-sigma / f32(Math.sqrt(c2)))) + f32(s / c2));
  }
  return m; // "sample"
}

/** diffusers EulerDiscreteScheduler (Karras et al. Algorithm 2 with s_churn = 0). */
export class EulerDiscreteScheduler extends SigmaScheduler<EulerConfig> {
  constructor(config: object = {}, overrides: object = {}) {
    super("EulerDiscreteScheduler", resolveConfig("EulerDiscreteScheduler", EULER_DEFAULTS, config, overrides), true);
    const c = this.config;
    checkOption(this.className, "prediction_type", c.prediction_type, ["epsilon", "v_prediction", "sample", "original_sample"]);
    checkOption(this.className, "interpolation_type", c.interpolation_type, ["linear", "log_linear"]);
    checkOption(this.className, "timestep_type", c.timestep_type, ["discrete", "continuous"]);
    checkOption(this.className, "final_sigmas_type", c.final_sigmas_type, ["zero", "sigma_min"]);
    checkOption(this.className, "custom_sigmas", c.custom_sigmas, [null, ...CUSTOM_SIGMA_SCHEDULES]);
    sigmaScheduleKind(this.className, c);
    // Before setTimesteps: the full training schedule.
    const table = sigmaTable(this.alphasCumprod);
    this.sigmas = Float64Array.from([...table.reverse(), 0]);
    this.timesteps = this.continuousTimesteps() ?? npLinspace(0, c.num_train_timesteps - 1, c.num_train_timesteps).reverse().map(f32);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    if (c.custom_sigmas) return this.setCustomSigmas(customSigmas(c.custom_sigmas, numInferenceSteps, ...this.sigmaRange()));
    this.numInferenceSteps = numInferenceSteps;
    let timesteps = eulerTimesteps(c, numInferenceSteps);
    const table = sigmaTable(this.alphasCumprod);
    const logSigmas = logF32(table);
    let sigmas: Float64Array;
    if (c.interpolation_type === "linear") {
      sigmas = timesteps.map((t) => interpIndex(t, table));
    } else {
      // log_linear: numInferenceSteps + 1 points, as diffusers 0.27.2 does
      const lo = logSigmas[0], hi = logSigmas[logSigmas.length - 1];
      sigmas = npLinspace(hi, lo, numInferenceSteps + 1).map((v) => f32(Math.exp(f32(v))));
    }
    const kind = sigmaScheduleKind(this.className, c);
    if (kind) {
      sigmas = convertSigmas(kind, c.sigma_min ?? sigmas[sigmas.length - 1], c.sigma_max ?? sigmas[0], numInferenceSteps);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, logSigmas)));
    }
    this.sigmas = Float64Array.from([...sigmas.map(f32), c.final_sigmas_type === "zero" ? 0 : table[0]]);
    this.timesteps = this.continuousTimesteps() ?? timesteps;
    this.resetSteps();
  }

  /**
   * diffusers' set_timesteps(sigmas=...): the sigmas as given (float32, no final sigma added), one step
   * fewer than there are sigmas, each timestep the unrounded _sigma_to_t of its sigma.
   */
  setCustomSigmas(sigmas: ArrayLike<number>): void {
    if (sigmas.length < 2) throw new Error(`${this.className}: custom sigmas need at least 2 values (one step), got ${sigmas.length}`);
    const logSigmas = logF32(sigmaTable(this.alphasCumprod));
    this.sigmas = Float64Array.from(sigmas, f32);
    this.numInferenceSteps = sigmas.length - 1;
    const timesteps = this.sigmas.slice(0, -1).map((s) => f32(sigmaToT(s, logSigmas, true)));
    this.timesteps = this.continuousTimesteps() ?? timesteps;
    this.resetSteps();
  }

  /** The smallest and largest training sigma (A1111's sigma_min, sigma_max: its model's sigma table ends). */
  private sigmaRange(): [number, number] {
    const table = sigmaTable(this.alphasCumprod);
    return [table[0], table[table.length - 1]];
  }

  /** timestep_type "continuous" with v-prediction feeds the model 0.25 * log(sigma). */
  private continuousTimesteps(): Float64Array | null {
    if (this.config.timestep_type !== "continuous" || this.config.prediction_type !== "v_prediction") return null;
    return this.sigmas.subarray(0, this.sigmas.length - 1).map((s) => f32(0.25 * f32(Math.log(s))));
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    const i = this.initStepIndex(timestep);
    // s_churn = 0, so gamma = 0 and sigma_hat = sigma. diffusers still draws (and discards) churn noise
    // whenever it is given a generator; so do we, to leave the generator in the same state.
    if (generator) drawNoise(generator, shape ?? [sample.length], sample.length, this.className);
    const sigma = this.sigmas[i];
    const dt = f32(this.sigmas[i + 1] - sigma);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const s = sample[k];
      const derivative = f32(f32(s - sigmaPredOriginal(this.config.prediction_type, sigma, modelOutput[k], s)) / sigma);
      out[k] = s + f32(derivative * dt);
    }
    this.stepIndex = i + 1;
    return out;
  }
}
