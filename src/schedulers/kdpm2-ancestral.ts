import { BaseScheduler } from "./base.js";
import { checkOption, drawNoise, f32, resolveConfig, sigmaNorm, sigmaTable, sigmaToT } from "./common.js";
import { sigmaInitNoise, sigmaPredOriginal } from "./euler.js";
import { KDPM2_DEFAULTS, type KDPM2Config, interleave2, kdpm2Schedule, logMidpoint } from "./kdpm2.js";
import { sigmaScheduleKind } from "./sigma-schedules.js";
import type { NoiseGenerator } from "./types.js";

export type KDPM2AncestralConfig = KDPM2Config;

/**
 * diffusers KDPM2AncestralDiscreteScheduler ("DPM2 a", k-diffusion's sample_dpm_2_ancestral): the DPM2
 * step aims at sigma_down instead of sigma_next, then adds fresh noise of std sigma_up.
 */
export class KDPM2AncestralDiscreteScheduler extends BaseScheduler<KDPM2AncestralConfig> {
  override readonly order = 2;
  sigmas: Float64Array = new Float64Array(0);
  sigmasInterpol: Float64Array = new Float64Array(0);
  sigmasUp: Float64Array = new Float64Array(0);
  sigmasDown: Float64Array = new Float64Array(0);
  private sample: Float32Array | null = null;

  constructor(config: object = {}, overrides: object = {}) {
    super("KDPM2AncestralDiscreteScheduler", resolveConfig("KDPM2AncestralDiscreteScheduler", KDPM2_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction"]);
    this.setTimesteps(this.config.num_train_timesteps);
    this.numInferenceSteps = null;
  }

  override get initNoiseSigma(): number {
    return sigmaInitNoise(this.sigmas, this.config.timestep_spacing);
  }

  get stateInFirstOrder(): boolean {
    return this.sample === null;
  }

  setTimesteps(numInferenceSteps: number): void {
    this.numInferenceSteps = numInferenceSteps;
    const { timesteps, sigmas, logSigmas } = kdpm2Schedule(this.className, this.config, sigmaTable(this.alphasCumprod), numInferenceSteps);
    const n = sigmas.length;
    const up = new Float32Array(n), down = new Float32Array(n), interpol = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const s2 = f32(sigmas[i] * sigmas[i]);
      const next = i + 1 < n ? sigmas[i + 1] : 0;
      const n2 = f32(next * next);
      up[i] = f32(Math.sqrt(f32(f32(n2 * f32(s2 - n2)) / s2))); // NaN at the final 0, never used
      down[i] = i === n - 1 ? 0 : f32(Math.sqrt(f32(n2 - f32(up[i] * up[i]))));
      interpol[i] = i >= n - 2 ? 0 : logMidpoint(sigmas[i], down[i]);
    }
    this.sigmas = interleave2(sigmas);
    this.sigmasInterpol = interleave2(interpol);
    this.sigmasUp = interleave2(up);
    this.sigmasDown = interleave2(down);
    const asDtype = sigmaScheduleKind(this.className, this.config) ? (v: number) => v : f32;
    const tInterpol = Array.from(interpol, (s) => asDtype(sigmaToT(s, logSigmas)));
    const ts = Array.from(timesteps);
    this.timesteps = Float64Array.from([ts[0], ...ts.slice(1).flatMap((t, j) => [tInterpol[j], t])]);
    this.sample = null;
    this.resetSteps();
  }

  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const i = this.initStepIndex(timestep);
    const d = sigmaNorm(this.stateInFirstOrder ? this.sigmas[i] : this.sigmasInterpol[i - 1]);
    return sample.map((x) => x / d);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): Float32Array {
    const i = this.initStepIndex(timestep);
    const first = this.stateInFirstOrder;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaInterpol = first ? this.sigmasInterpol[i] : this.sigmasInterpol[i - 1];
    const sigmaUp = this.sigmasUp[i - 1];
    const sigmaDown = this.sigmasDown[i - 1];
    const sigmaIn = first ? sigma : sigmaInterpol;
    const dt = first ? f32(sigmaInterpol - sigma) : f32(sigmaDown - sigma);
    const base = first ? sample : this.sample!;
    const noise = first ? null : drawNoise(generator, shape ?? [sample.length], sample.length, this.className);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      const x0 = sigmaPredOriginal(this.config.prediction_type, sigmaIn, modelOutput[k], sample[k]);
      const derivative = f32(f32(sample[k] - x0) / sigmaIn);
      out[k] = base[k] + f32(derivative * dt);
      if (noise) out[k] += f32(noise[k] * sigmaUp);
    }
    this.sample = first ? sample : null;
    this.stepIndex = i + 1;
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.addNoiseIndex(timestep)];
    return original.map((x, k) => x + f32(noise[k] * sigma));
  }
}
