import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, drawNoise, eulerTimesteps, f32, interpIndex, npLinspace, resolveConfig, sigmaNorm, sigmaTable } from "./common.js";
import { sigmaInitNoise, sigmaPredOriginal } from "./euler.js";
import type { NoiseGenerator } from "./types.js";

export interface EulerAncestralConfig extends BaseConfig {
  rescale_betas_zero_snr: boolean;
}

export const EULER_ANCESTRAL_DEFAULTS: EulerAncestralConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  prediction_type: "epsilon", timestep_spacing: "linspace", steps_offset: 0, rescale_betas_zero_snr: false,
};

/** diffusers EulerAncestralDiscreteScheduler: an Euler step down to sigma_down, then fresh noise of std sigma_up. */
export class EulerAncestralDiscreteScheduler extends BaseScheduler<EulerAncestralConfig> {
  sigmas: Float64Array;

  constructor(config: object = {}, overrides: object = {}) {
    super("EulerAncestralDiscreteScheduler", resolveConfig("EulerAncestralDiscreteScheduler", EULER_ANCESTRAL_DEFAULTS, config, overrides), true);
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction"]);
    const T = this.config.num_train_timesteps;
    this.sigmas = Float64Array.from([...sigmaTable(this.alphasCumprod).reverse(), 0]);
    this.timesteps = npLinspace(0, T - 1, T).reverse();
  }

  override get initNoiseSigma(): number {
    return sigmaInitNoise(this.sigmas, this.config.timestep_spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = eulerTimesteps(this.config, numInferenceSteps);
    const table = sigmaTable(this.alphasCumprod);
    this.sigmas = Float64Array.from([...this.timesteps.map((t) => f32(interpIndex(t, table))), 0]);
    this.resetSteps();
  }

  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const d = sigmaNorm(this.sigmas[this.initStepIndex(timestep)]);
    return sample.map((x) => x / d);
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

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.addNoiseIndex(timestep)];
    return original.map((x, k) => x + f32(noise[k] * sigma));
  }
}
