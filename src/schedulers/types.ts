import type { BaseConfig } from "./common.js";

/** A source of standard normal noise, e.g. TorchGenerator (`torch.randn(shape, generator=g)`). */
export interface NoiseGenerator {
  randn(shape: number[]): Float32Array;
}

/** The `scheduler_config.json` fields every scheduler has; each class adds its own. */
export type SchedulerConfig = BaseConfig;

/**
 * The diffusers scheduler protocol on flat float32 arrays. Samples are row-major tensors, usually
 * [batch, 4, h, w]; `shape` is only needed where step draws noise (it defaults to [sample.length],
 * which draws the same numbers from one torch generator as the full shape does).
 */
export interface Scheduler {
  /** The diffusers class this reproduces, e.g. "EulerDiscreteScheduler". */
  readonly className: string;
  /** Class defaults, overridden by the loaded config and explicit overrides. */
  readonly config: Readonly<SchedulerConfig>;
  /** Model evaluations per timestep pair: 2 for Heun (each timestep but the first appears twice). */
  readonly order: number;
  /** Scale of the initial noise; for Euler-family schedulers it depends on setTimesteps. */
  readonly initNoiseSigma: number;
  /** After setTimesteps: the timesteps to feed the model, in order (float32 values or integers). */
  timesteps: Float64Array;
  /** After setTimesteps, where the scheduler has them: one sigma per timestep plus the final one. */
  sigmas?: Float64Array;
  setTimesteps(numInferenceSteps: number): void;
  /** Start stepping at timesteps[beginIndex] (img2img); resets with setTimesteps. */
  setBeginIndex(beginIndex: number): void;
  /** May return `sample` itself when no scaling applies. */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** One denoising step; returns prev_sample. Stateful: call once per timestep, in order. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array;
  /** Noises a clean sample to `timestep` (img2img), using the same step-index rules as diffusers. */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
}
