import { type BaseConfig, checkOption, drawNoise, f32, npLinspace, resolveConfig, sigmaTable } from "./common.js";
import { sigmaPredOriginal } from "./euler.js";
import { SigmaScheduler } from "./sigma-scheduler.js";
import type { NoiseGenerator } from "./types.js";

export interface EulerAncestralConfig extends BaseConfig {
  rescale_betas_zero_snr: boolean;
}

export const EULER_ANCESTRAL_DEFAULTS: EulerAncestralConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  prediction_type: "epsilon", timestep_spacing: "linspace", steps_offset: 0, rescale_betas_zero_snr: false,
};

/** diffusers EulerAncestralDiscreteScheduler: an Euler step down to sigma_down, then fresh noise of std sigma_up. */
export class EulerAncestralDiscreteScheduler extends SigmaScheduler<EulerAncestralConfig> {
  constructor(config: object = {}, overrides: object = {}) {
    super("EulerAncestralDiscreteScheduler", resolveConfig("EulerAncestralDiscreteScheduler", EULER_ANCESTRAL_DEFAULTS, config, overrides), true);
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction"]);
    const T = this.config.num_train_timesteps;
    this.sigmas = Float64Array.from([...sigmaTable(this.alphasCumprod).reverse(), 0]);
    this.timesteps = npLinspace(0, T - 1, T).reverse();
  }

  setTimesteps(numInferenceSteps: number): void {
    // no schedule options in this class: the spaced timesteps and their sigmas
    const { timesteps, sigmas } = this.spacedSchedule(numInferenceSteps);
    this.timesteps = timesteps;
    this.sigmas = Float64Array.from(sigmas);
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    const i = this.initStepIndex(timestep);
    const from = this.sigmas[i], to = this.sigmas[i + 1];
    const from2 = f32(from * from), to2 = f32(to * to);
    const sigmaUp = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
    const sigmaDown = f32(Math.sqrt(f32(to2 - f32(sigmaUp * sigmaUp))));
    const dt = f32(sigmaDown - from);
    const noise = drawNoise(generator, shape ?? [sample.length], sample.length, this.className);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const s = sample[k];
      const derivative = f32(f32(s - sigmaPredOriginal(this.config.prediction_type, from, modelOutput[k], s)) / from);
      out[k] = f32(s + f32(derivative * dt)) + f32(noise[k] * sigmaUp);
    }
    this.stepIndex = i + 1;
    return out;
  }
}
