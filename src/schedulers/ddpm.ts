import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, drawNoise, f32, resolveConfig } from "./common.js";
import { vpAddNoise, vpPredictions } from "./ddim.js";
import type { NoiseGenerator } from "./types.js";

export interface DDPMConfig extends BaseConfig {
  variance_type: string;
  clip_sample: boolean;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  rescale_betas_zero_snr: boolean;
}

export const DDPM_DEFAULTS: DDPMConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  variance_type: "fixed_small", clip_sample: true, prediction_type: "epsilon", thresholding: false,
  dynamic_thresholding_ratio: 0.995, clip_sample_range: 1.0, sample_max_value: 1.0, timestep_spacing: "leading",
  steps_offset: 0, rescale_betas_zero_snr: false,
};

/** diffusers DDPMScheduler (ancestral sampling of the posterior q(x_{t-1} | x_t, x0)). */
export class DDPMScheduler extends BaseScheduler<DDPMConfig> {
  constructor(config: object = {}, overrides: object = {}) {
    super("DDPMScheduler", resolveConfig("DDPMScheduler", DDPM_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "sample", "v_prediction"]);
    // the learned variances need a model that outputs twice the channels
    checkOption(this.className, "variance_type", this.config.variance_type, ["fixed_small", "fixed_small_log", "fixed_large"]);
    checkOption(this.className, "thresholding", this.config.thresholding, [false]);
    this.timesteps = this.allTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    this.setIntegerTimesteps(numInferenceSteps);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    const c = this.config;
    const prevT = timestep - Math.floor(c.num_train_timesteps / (this.numInferenceSteps ?? c.num_train_timesteps));
    const a = this.alphasCumprod[timestep];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : 1;
    const b = f32(1 - a), bPrev = f32(1 - aPrev);
    const curAlpha = f32(a / aPrev), curBeta = f32(1 - curAlpha);
    const sqrtA = f32(Math.sqrt(a)), sqrtB = f32(Math.sqrt(b));
    // posterior mean coefficients (Ho et al. 2020, eq. 7)
    const cX0 = f32(f32(f32(Math.sqrt(aPrev)) * curBeta) / b);
    const cXt = f32(f32(f32(Math.sqrt(curAlpha)) * bPrev) / b);
    let std = 0;
    if (timestep > 0) {
      const variance = Math.max(f32(f32(bPrev / b) * curBeta), f32(1e-20));
      if (c.variance_type === "fixed_small") std = f32(Math.sqrt(variance));
      else if (c.variance_type === "fixed_small_log") std = f32(Math.exp(f32(0.5 * f32(Math.log(variance)))));
      else std = f32(Math.sqrt(curBeta)); // fixed_large
    }
    const noise = timestep > 0 ? drawNoise(generator, shape ?? [sample.length], sample.length, this.className) : null;
    const range = f32(c.clip_sample_range);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      let x0 = vpPredictions(c.prediction_type, sqrtA, sqrtB, modelOutput[k], sample[k])[0];
      if (c.clip_sample) x0 = Math.min(Math.max(x0, -range), range);
      out[k] = f32(cX0 * x0) + f32(cXt * sample[k]);
      if (noise) out[k] += f32(std * noise[k]);
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return vpAddNoise(this.alphasCumprod, original, noise, timestep);
  }
}
