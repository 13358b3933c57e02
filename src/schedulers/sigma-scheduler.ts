/**
 * The base of the schedulers that work in sigma space, k-diffusion's x = x0 + sigma * noise (Euler,
 * Euler a, Heun, LMS, DPM2, DPM2 a): what they do alike with their `sigmas`.
 */
import { BaseScheduler } from "./base.js";
import { type BaseConfig, f32, sigmaNorm, sigmaTable } from "./common.js";
import { type SigmaScheduleOptions, type SpacedSchedule, spacedSigmas } from "./sigma-schedules.js";

export abstract class SigmaScheduler<C extends BaseConfig & SigmaScheduleOptions> extends BaseScheduler<C> {
  /** Indexed like the timesteps, ending in 0. */
  sigmas: Float64Array = new Float64Array(0);

  /** Sampling starts from pure noise of std sigma_max (or sqrt(sigma_max^2 + 1) for "leading"). */
  override get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmas) max = Math.max(max, s);
    const spacing = this.config.timestep_spacing;
    return spacing === "linspace" || spacing === "trailing" ? max : sigmaNorm(max);
  }

  /** The model sees x / sqrt(sigma^2 + 1), unit variance. */
  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const d = sigmaNorm(this.sigmas[this.initStepIndex(timestep)]);
    return sample.map((x) => x / d);
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.addNoiseIndex(timestep)];
    return original.map((x, k) => x + f32(noise[k] * sigma));
  }

  /** The start of setTimesteps in Euler a, Heun, LMS and DPM2 (a): the step count, then spacedSigmas. */
  protected spacedSchedule(numInferenceSteps: number): SpacedSchedule {
    this.numInferenceSteps = numInferenceSteps;
    return spacedSigmas(this.className, this.config, sigmaTable(this.alphasCumprod), numInferenceSteps);
  }

  /**
   * As the diffusers __init__ of Heun, LMS and DPM2 (a): the schedule over every training step, with the
   * step count left unset (so that stepping still asks for setTimesteps where the class checks).
   */
  protected setTrainingTimesteps(): void {
    this.setTimesteps(this.config.num_train_timesteps);
    this.numInferenceSteps = null;
  }
}
