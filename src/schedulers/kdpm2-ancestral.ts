import { drawNoise, f32, sigmaNorm } from "./common.js";
import { type KDPM2Config, KDPM2Base, interleave2, logMidpoint } from "./kdpm2-common.js";
import type { NoiseGenerator } from "./types.js";

export type KDPM2AncestralConfig = KDPM2Config;

/**
 * diffusers KDPM2AncestralDiscreteScheduler ("DPM2 a", k-diffusion's sample_dpm_2_ancestral): the DPM2
 * step aims at sigma_down instead of sigma_next, then adds fresh noise of std sigma_up.
 */
export class KDPM2AncestralDiscreteScheduler extends KDPM2Base {
  sigmasUp: Float64Array = new Float64Array(0);
  sigmasDown: Float64Array = new Float64Array(0);

  constructor(config: object = {}, overrides: object = {}) {
    super("KDPM2AncestralDiscreteScheduler", config, overrides);
    this.setTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    const s = this.kdpm2Schedule(numInferenceSteps);
    const sigmas = s.sigmas;
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
    this.sigmasUp = interleave2(up);
    this.sigmasDown = interleave2(down);
    // interpol[i] is between sigmas[i] and sigma_down[i], not rolled as in DPM2
    this.setInterleaved(s, interpol, interpol);
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
    // drawn before the update: without a generator it throws before the step state advances
    const noise = first ? null : drawNoise(generator, shape ?? [sample.length], sample.length, this.className);
    const out = this.dpm2Update(modelOutput, sample, i, sigmaIn, dt);
    if (noise) for (let k = 0; k < out.length; k++) out[k] += f32(noise[k] * sigmaUp);
    return out;
  }
}
