import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, eulerTimesteps, f32, interpIndex, logF32, resolveConfig, roundHalfEven, sigmaNorm, sigmaTable, sigmaToT } from "./common.js";
import { sigmaInitNoise, sigmaPredOriginal } from "./euler.js";
import { convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";

export interface KDPM2Config extends BaseConfig {
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
}

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

/**
 * The spaced timesteps and their sigmas (with the optional Karras / exponential / beta schedule), as the
 * KDPM2 schedulers compute them: Karras timesteps are rounded, the others are not.
 */
export function kdpm2Schedule(className: string, c: KDPM2Config, table: Float32Array, n: number): { timesteps: Float64Array; sigmas: Float32Array; logSigmas: Float32Array } {
  let timesteps: Float64Array = eulerTimesteps(c, n);
  let sigmas: Float64Array = timesteps.map((t) => interpIndex(t, table));
  const logSigmas = logF32(table);
  const kind = sigmaScheduleKind(className, c);
  if (kind) {
    sigmas = convertSigmas(kind, sigmas[sigmas.length - 1], sigmas[0], n);
    timesteps = sigmas.map((s) => sigmaToT(s, logSigmas));
    if (kind === "karras") timesteps = timesteps.map(roundHalfEven);
  }
  return { timesteps, sigmas: Float32Array.from([...sigmas, 0]), logSigmas };
}

/**
 * diffusers KDPM2DiscreteScheduler ("DPM2", k-diffusion's sample_dpm_2): each step evaluates the model at
 * sigma and at the log-midpoint to sigma_next. Like Heun it has order 2: timesteps are
 * [t0, t_mid1, t1, t_mid2, t2, ...], 2n - 1 evaluations for n steps.
 */
export class KDPM2DiscreteScheduler extends BaseScheduler<KDPM2Config> {
  override readonly order = 2;
  sigmas: Float64Array = new Float64Array(0);
  sigmasInterpol: Float64Array = new Float64Array(0);
  private sample: Float32Array | null = null;

  constructor(config: object = {}, overrides: object = {}) {
    super("KDPM2DiscreteScheduler", resolveConfig("KDPM2DiscreteScheduler", KDPM2_DEFAULTS, config, overrides));
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
    // interpol[i] is between sigmas[i-1] and sigmas[i] (torch's roll(1)); index 0 is never used
    const interpol = Array.from({ length: n }, (_, i) => (i === 0 ? NaN : logMidpoint(sigmas[i], sigmas[i - 1])));
    this.sigmas = interleave2(sigmas);
    this.sigmasInterpol = interleave2(interpol);
    // the midpoint timesteps take the dtype of the spaced ones (float32 unless a schedule made them float64)
    const asDtype = sigmaScheduleKind(this.className, this.config) ? (v: number) => v : f32;
    const tInterpol = interpol.map((s) => asDtype(sigmaToT(s, logSigmas)));
    const ts = Array.from(timesteps);
    this.timesteps = Float64Array.from([ts[0], ...ts.slice(1).flatMap((t, j) => [tInterpol[j + 1], t])]);
    this.sample = null;
    this.resetSteps();
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

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.addNoiseIndex(timestep)];
    return original.map((x, k) => x + f32(noise[k] * sigma));
  }
}
