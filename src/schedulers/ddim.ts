import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, drawNoise, f32, resolveConfig } from "./common.js";
import type { NoiseGenerator } from "./types.js";

export interface DDIMConfig extends BaseConfig {
  clip_sample: boolean;
  set_alpha_to_one: boolean;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  rescale_betas_zero_snr: boolean;
}

export const DDIM_DEFAULTS: DDIMConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  clip_sample: true, set_alpha_to_one: true, steps_offset: 0, prediction_type: "epsilon", thresholding: false,
  dynamic_thresholding_ratio: 0.995, clip_sample_range: 1.0, sample_max_value: 1.0, timestep_spacing: "leading",
  rescale_betas_zero_snr: false,
};

/** x0 and eps predictions of the VP (alphas_cumprod) parameterization, per element, float32. */
export function vpPredictions(predictionType: string, sqrtA: number, sqrtB: number, m: number, s: number): [number, number] {
  if (predictionType === "epsilon") return [f32(f32(s - f32(sqrtB * m)) / sqrtA), m];
  if (predictionType === "sample") return [m, f32(f32(s - f32(sqrtA * m)) / sqrtB)];
  return [f32(f32(sqrtA * s) - f32(sqrtB * m)), f32(f32(sqrtA * m) + f32(sqrtB * s))]; // v_prediction
}

/** sqrt(a)*x0 + sqrt(1-a)*noise at a training timestep (DDIM, DDPM, LCM add_noise). */
export function vpAddNoise(alphasCumprod: Float32Array, original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
  const a = alphasCumprod[timestep];
  const sa = f32(Math.sqrt(a)), sb = f32(Math.sqrt(f32(1 - a)));
  return original.map((x, k) => f32(sa * x) + f32(sb * noise[k]));
}

/** diffusers DDIMScheduler (deterministic for eta = 0, the pipelines' default). */
export class DDIMScheduler extends BaseScheduler<DDIMConfig> {
  /** DDIM's eta (pipelines pass it to step); above 0 the step adds noise and needs a generator. */
  eta = 0;
  private readonly finalAlphaCumprod: number;

  constructor(config: object = {}, overrides: object = {}) {
    super("DDIMScheduler", resolveConfig("DDIMScheduler", DDIM_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "sample", "v_prediction"]);
    checkOption(this.className, "thresholding", this.config.thresholding, [false]);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.timesteps = this.allTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    this.setIntegerTimesteps(numInferenceSteps);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    this.requireTimesteps();
    const c = this.config;
    const prevT = timestep - Math.floor(c.num_train_timesteps / this.numInferenceSteps!);
    const a = this.alphasCumprod[timestep];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const b = f32(1 - a), bPrev = f32(1 - aPrev);
    const sqrtA = f32(Math.sqrt(a)), sqrtB = f32(Math.sqrt(b));
    const variance = f32(f32(bPrev / b) * f32(1 - f32(a / aPrev)));
    const std = f32(this.eta * f32(Math.sqrt(variance)));
    const cDir = f32(Math.sqrt(f32(f32(1 - aPrev) - f32(std * std))));
    const cX0 = f32(Math.sqrt(aPrev));
    const noise = this.eta > 0 ? drawNoise(generator, shape ?? [sample.length], sample.length, this.className) : null;
    const range = f32(c.clip_sample_range);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      let [x0, eps] = vpPredictions(c.prediction_type, sqrtA, sqrtB, modelOutput[k], sample[k]);
      if (c.clip_sample) x0 = Math.min(Math.max(x0, -range), range); // eps stays unclipped, as diffusers' default
      out[k] = f32(cX0 * x0) + f32(cDir * eps);
      if (noise) out[k] += f32(std * noise[k]);
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return vpAddNoise(this.alphasCumprod, original, noise, timestep);
  }
}
