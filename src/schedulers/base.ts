import { type BaseConfig, indexForTimestep, integerTimesteps, trainingAlphasCumprod } from "./common.js";
import type { NoiseGenerator, Scheduler } from "./types.js";

/** State every scheduler shares: config, alphas_cumprod, timesteps and the step-index counter. */
export abstract class BaseScheduler<C extends BaseConfig> implements Scheduler {
  readonly order: number = 1;
  readonly alphasCumprod: Float32Array;
  timesteps: Float64Array = new Float64Array(0);
  numInferenceSteps: number | null = null;
  protected stepIndex: number | null = null;
  protected beginIndex: number | null = null;

  protected constructor(readonly className: string, readonly config: Readonly<C>, finiteLastSigma = false) {
    this.alphasCumprod = trainingAlphasCumprod(config as C & { rescale_betas_zero_snr?: boolean }, finiteLastSigma);
  }

  get initNoiseSigma(): number {
    return 1;
  }

  /** The index of the next step (null until the first scaleModelInput/step). */
  get currentStepIndex(): number | null {
    return this.stepIndex;
  }

  setBeginIndex(beginIndex: number): void {
    this.beginIndex = beginIndex;
  }

  scaleModelInput(sample: Float32Array, _timestep: number): Float32Array {
    return sample;
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array;
  abstract addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;

  protected requireTimesteps(): void {
    if (this.numInferenceSteps === null) throw new Error(`${this.className}: call setTimesteps before stepping`);
  }

  /** The first step locates its timestep in the schedule unless a begin index was set. */
  protected initStepIndex(timestep: number, fallbackLast = false): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? indexForTimestep(this.timesteps, timestep, fallbackLast);
    return this.stepIndex;
  }

  /** diffusers add_noise: by timestep lookup, else the current step, else the begin index. */
  protected addNoiseIndex(timestep: number, fallbackLast = false): number {
    if (this.beginIndex === null) return indexForTimestep(this.timesteps, timestep, fallbackLast);
    return this.stepIndex ?? this.beginIndex;
  }

  protected resetSteps(): void {
    this.stepIndex = null;
    this.beginIndex = null;
  }

  /** Before setTimesteps, DDPM-family schedulers hold every training timestep, descending. */
  protected allTrainingTimesteps(): Float64Array {
    const T = this.config.num_train_timesteps;
    return Float64Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  /** setTimesteps of the schedulers that step on integer timesteps with the config's spacing (DDIM, DDPM). */
  protected setIntegerTimesteps(numInferenceSteps: number): void {
    const T = this.config.num_train_timesteps;
    if (numInferenceSteps > T) throw new Error(`${this.className}: num_inference_steps ${numInferenceSteps} exceeds num_train_timesteps ${T}`);
    this.numInferenceSteps = numInferenceSteps;
    this.timesteps = integerTimesteps(this.config, numInferenceSteps);
    this.resetSteps();
  }
}
