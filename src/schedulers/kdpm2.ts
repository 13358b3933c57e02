import { f32, sigmaNorm } from "./common.js";
import { KDPM2Base, logMidpoint } from "./kdpm2-common.js";

export { KDPM2_DEFAULTS, type KDPM2Config } from "./kdpm2-common.js";

/**
 * diffusers KDPM2DiscreteScheduler ("DPM2", k-diffusion's sample_dpm_2): each step evaluates the model at
 * sigma and at the log-midpoint to sigma_next. Like Heun it has order 2: timesteps are
 * [t0, t_mid1, t1, t_mid2, t2, ...], 2n - 1 evaluations for n steps.
 */
export class KDPM2DiscreteScheduler extends KDPM2Base {
  constructor(config: object = {}, overrides: object = {}) {
    super("KDPM2DiscreteScheduler", config, overrides);
    this.setTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    const s = this.kdpm2Schedule(numInferenceSteps);
    // interpol[i] is between sigmas[i-1] and sigmas[i] (torch's roll(1)); index 0 is never used
    const interpol = Array.from(s.sigmas, (sigma, i) => (i === 0 ? NaN : logMidpoint(sigma, s.sigmas[i - 1])));
    this.setInterleaved(s, interpol, interpol.slice(1));
  }

  override scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const i = this.initStepIndex(timestep);
    const d = sigmaNorm(this.stateInFirstOrder ? this.sigmas[i] : this.sigmasInterpol[i]);
    return sample.map((x) => x / d);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const i = this.initStepIndex(timestep);
    const first = this.stateInFirstOrder;
    const sigma = first ? this.sigmas[i] : this.sigmas[i - 1];
    const sigmaInterpol = first ? this.sigmasInterpol[i + 1] : this.sigmasInterpol[i];
    const sigmaNext = first ? this.sigmas[i + 1] : this.sigmas[i];
    const sigmaIn = first ? sigma : sigmaInterpol;
    const dt = first ? f32(sigmaInterpol - sigma) : f32(sigmaNext - sigma);
    return this.dpm2Update(modelOutput, sample, i, sigmaIn, dt);
  }
}
