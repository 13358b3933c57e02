import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, drawNoise, f32, npLinspace, resolveConfig } from "./common.js";
import { vpAddNoise, vpPredictions } from "./ddim.js";
import type { NoiseGenerator } from "./types.js";

export interface LCMConfig extends BaseConfig {
  original_inference_steps: number;
  clip_sample: boolean;
  clip_sample_range: number;
  set_alpha_to_one: boolean;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  timestep_scaling: number;
  rescale_betas_zero_snr: boolean;
}

export const LCM_DEFAULTS: LCMConfig = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: "scaled_linear", trained_betas: null,
  original_inference_steps: 50, clip_sample: false, clip_sample_range: 1.0, set_alpha_to_one: true, steps_offset: 0,
  prediction_type: "epsilon", thresholding: false, dynamic_thresholding_ratio: 0.995, sample_max_value: 1.0,
  timestep_spacing: "leading", timestep_scaling: 10.0, rescale_betas_zero_snr: false,
};

/** diffusers LCMScheduler (latent consistency models): denoise fully, then re-noise to the next timestep. */
export class LCMScheduler extends BaseScheduler<LCMConfig> {
  private readonly finalAlphaCumprod: number;

  constructor(config: object = {}, overrides: object = {}) {
    super("LCMScheduler", resolveConfig("LCMScheduler", LCM_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "sample", "v_prediction"]);
    checkOption(this.className, "thresholding", this.config.thresholding, [false]);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.timesteps = this.allTrainingTimesteps();
  }

  /**
   * numInferenceSteps timesteps evenly picked (from the noisiest) out of the original_inference_steps
   * distillation schedule; `strength` < 1 (LCM img2img) keeps only its low-noise part.
   */
  setTimesteps(numInferenceSteps: number, strength = 1): void {
    const c = this.config;
    const original = c.original_inference_steps;
    if (original > c.num_train_timesteps) throw new Error(`${this.className}: original_inference_steps ${original} exceeds num_train_timesteps`);
    if (numInferenceSteps > original) {
      throw new Error(`${this.className}: num_inference_steps ${numInferenceSteps} cannot exceed original_inference_steps ${original}`);
    }
    const k = Math.floor(c.num_train_timesteps / original);
    const count = Math.trunc(original * strength);
    if (Math.floor(count / numInferenceSteps) < 1) {
      throw new Error(`${this.className}: original_inference_steps x strength = ${original} x ${strength} is smaller than num_inference_steps ${numInferenceSteps}`);
    }
    // the distillation schedule k-1, 2k-1, ..., reversed
    const origin = Float64Array.from({ length: count }, (_, i) => (count - i) * k - 1);
    this.timesteps = npLinspace(0, count, numInferenceSteps, false).map((x) => origin[Math.floor(x)]);
    this.numInferenceSteps = numInferenceSteps;
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    this.requireTimesteps();
    const c = this.config;
    const i = this.initStepIndex(timestep);
    const prevT = i + 1 < this.timesteps.length ? this.timesteps[i + 1] : timestep;
    const a = this.alphasCumprod[timestep];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const sqrtA = f32(Math.sqrt(a)), sqrtB = f32(Math.sqrt(f32(1 - a)));
    // consistency-model boundary condition (sigma_data = 0.5)
    const scaled = f32(timestep * c.timestep_scaling);
    const d = f32(f32(scaled * scaled) + 0.25);
    const cSkip = f32(0.25 * f32(1 / d));
    const cOut = f32(scaled / f32(Math.sqrt(d)));
    const last = i === this.numInferenceSteps! - 1;
    const noise = last ? null : drawNoise(generator, shape ?? [sample.length], sample.length, this.className);
    const sa = f32(Math.sqrt(aPrev)), sb = f32(Math.sqrt(f32(1 - aPrev)));
    const range = f32(c.clip_sample_range);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      let x0 = vpPredictions(c.prediction_type, sqrtA, sqrtB, modelOutput[k], sample[k])[0];
      if (c.clip_sample) x0 = Math.min(Math.max(x0, -range), range);
      const denoised = f32(f32(cOut * x0) + f32(cSkip * sample[k]));
      out[k] = noise ? f32(sa * denoised) + f32(sb * noise[k]) : denoised;
    }
    this.stepIndex = i + 1;
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return vpAddNoise(this.alphasCumprod, original, noise, timestep);
  }
}
