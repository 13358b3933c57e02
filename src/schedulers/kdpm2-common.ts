/**
 * What diffusers' two DPM2 schedulers (KDPM2DiscreteScheduler and KDPM2AncestralDiscreteScheduler) have
 * in common: the config, the schedule with one midpoint evaluation between each pair of sigmas, and the
 * two-evaluation step state. They differ in where the midpoint lies and what the second evaluation aims at.
 */
import { checkOption, f32, resolveConfig, roundHalfEven, sigmaToT } from "./common.js";
import { sigmaPredOriginal } from "./euler.js";
import { SigmaScheduler } from "./sigma-scheduler.js";
import type { SpacedSchedule, SpacedSigmasConfig } from "./sigma-schedules.js";

export type KDPM2Config = SpacedSigmasConfig;

export const KDPM2_DEFAULTS: KDPM2Config = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: "linear", trained_betas: null,
  use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, prediction_type: "epsilon",
  timestep_spacing: "linspace", steps_offset: 0,
};

/** [x0, x1, x1, x2, x2, ..., xn, xn, xn]: diffusers' cat([x[:1], x[1:].repeat_interleave(2), x[-1:]]). */
export function interleave2(x: ArrayLike<number>): Float64Array {
  const a = Array.from(x);
  return Float64Array.from([a[0], ...a.slice(1).flatMap((v) => [v, v]), a[a.length - 1]]);
}

/** exp(lerp(log a, log b, 0.5)) in float32 as torch: the geometric mean; torch's lerp at weight 0.5 is end - (end - start) / 2. */
export function logMidpoint(a: number, b: number): number {
  const start = f32(Math.log(a)), end = f32(Math.log(b));
  return f32(Math.exp(f32(end - f32(f32(end - start) * 0.5))));
}

/** The state and steps both DPM2 classes share; each adds its setTimesteps, scaleModelInput and step. */
export abstract class KDPM2Base extends SigmaScheduler<KDPM2Config> {
  override readonly order = 2;
  sigmasInterpol: Float64Array = new Float64Array(0);
  /** The sample stored by the first evaluation of a step, for the second. */
  private sample: Float32Array | null = null;

  protected constructor(className: string, config: object, overrides: object) {
    super(className, resolveConfig(className, KDPM2_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction"]);
  }

  get stateInFirstOrder(): boolean {
    return this.sample === null;
  }

  /** spacedSchedule, but both classes round Karras timesteps (not the exponential or beta ones). */
  protected kdpm2Schedule(numInferenceSteps: number): SpacedSchedule {
    const s = this.spacedSchedule(numInferenceSteps);
    if (s.kind === "karras") s.timesteps = s.timesteps.map(roundHalfEven);
    return s;
  }

  /**
   * Stores the interleaved sigmas and midpoint sigmas (`interpol`, in the class's own indexing), and the
   * timesteps [t0, t_mid0, t1, t_mid1, t2, ...], where `stepMidpoints[j]` is the midpoint sigma of the
   * step from sigma j.
   */
  protected setInterleaved(s: SpacedSchedule, interpol: ArrayLike<number>, stepMidpoints: ArrayLike<number>): void {
    this.sigmas = interleave2(s.sigmas);
    this.sigmasInterpol = interleave2(interpol);
    // the midpoint timesteps take the dtype of the spaced ones (float32 unless a schedule made them float64)
    const asDtype = s.kind ? (v: number) => v : f32;
    const ts = Array.from(s.timesteps);
    this.timesteps = Float64Array.from([ts[0], ...ts.slice(1).flatMap((t, j) => [asDtype(sigmaToT(stepMidpoints[j], s.logSigmas)), t])]);
    this.sample = null;
    this.resetSteps();
  }

  /**
   * base + derivative * dt, the derivative taken at sigmaIn; base is the sample at the first evaluation
   * of a step and the one it stored at the second. Advances the state to the next evaluation.
   */
  protected dpm2Update(modelOutput: Float32Array, sample: Float32Array, i: number, sigmaIn: number, dt: number): Float32Array {
    const first = this.stateInFirstOrder;
    const base = first ? sample : this.sample!;
    const out = new Float32Array(sample.length);
    for (let k = 0; k < out.length; k++) {
      const x0 = sigmaPredOriginal(this.config.prediction_type, sigmaIn, modelOutput[k], sample[k]);
      const derivative = f32(f32(sample[k] - x0) / sigmaIn);
      out[k] = base[k] + f32(derivative * dt);
    }
    this.sample = first ? sample : null;
    this.stepIndex = i + 1;
    return out;
  }
}
