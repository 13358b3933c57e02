import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, f32, integerTimesteps, resolveConfig } from "./common.js";
import { vpAddNoise } from "./ddim.js";

export interface PNDMConfig extends BaseConfig {
  skip_prk_steps: boolean;
  set_alpha_to_one: boolean;
}

export const PNDM_DEFAULTS: PNDMConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  skip_prk_steps: false, set_alpha_to_one: false, prediction_type: "epsilon", timestep_spacing: "leading", steps_offset: 0,
};

/**
 * diffusers PNDMScheduler with skip_prk_steps (as the SD/SDXL configs set it): PLMS, the pseudo linear
 * multistep method (Liu et al. 2022, "PLMS" / "PNDM"). The second-to-last spaced timestep appears twice:
 * the first step is an Euler-like step and the second evaluation corrects it (a 2-point average), after
 * which the Adams-Bashforth combinations of up to 4 past model outputs apply. The Runge-Kutta warm-up
 * (skip_prk_steps false) is not ported.
 */
export class PNDMScheduler extends BaseScheduler<PNDMConfig> {
  private readonly finalAlphaCumprod: number;
  private ets: Float32Array[] = [];
  private counter = 0;
  private curSample: Float32Array | null = null;

  constructor(config: object = {}, overrides: object = {}) {
    super("PNDMScheduler", resolveConfig("PNDMScheduler", PNDM_DEFAULTS, config, overrides));
    checkOption(this.className, "prediction_type", this.config.prediction_type, ["epsilon", "v_prediction"]);
    checkOption(this.className, "skip_prk_steps", this.config.skip_prk_steps, [true]);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.timesteps = this.allTrainingTimesteps();
  }

  setTimesteps(numInferenceSteps: number): void {
    const T = this.config.num_train_timesteps;
    if (numInferenceSteps > T) throw new Error(`${this.className}: num_inference_steps ${numInferenceSteps} exceeds num_train_timesteps ${T}`);
    this.numInferenceSteps = numInferenceSteps;
    // the spaced timesteps, descending, with the second one repeated: [t0, t1, t1, t2, ...]
    const ts = Array.from(integerTimesteps(this.config, numInferenceSteps));
    this.timesteps = Float64Array.from(ts.length > 1 ? [ts[0], ts[1], ...ts.slice(1)] : ts);
    this.ets = [];
    this.counter = 0;
    this.curSample = null;
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    this.requireTimesteps();
    const ratio = Math.floor(this.config.num_train_timesteps / this.numInferenceSteps!);
    let prevTimestep = timestep - ratio;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      // the correction of the first step: from the first timestep again, to the same target
      prevTimestep = timestep;
      timestep = timestep + ratio;
    }
    const e = this.ets, L = e.length;
    let eps: Float32Array;
    if (L === 1 && this.counter === 0) {
      eps = modelOutput;
      this.curSample = sample;
    } else if (L === 1 && this.counter === 1) {
      eps = modelOutput.map((m, k) => f32(m + e[0][k]) / 2);
      sample = this.curSample!;
      this.curSample = null;
    } else if (L === 2) {
      eps = e[1].map((v, k) => f32(f32(3 * v) - e[0][k]) / 2);
    } else if (L === 3) {
      eps = e[2].map((v, k) => f32(f32(f32(23 * v) - f32(16 * e[1][k])) + f32(5 * e[0][k])) / 12);
    } else {
      eps = e[3].map((v, k) => f32((1 / 24) * f32(f32(f32(f32(55 * v) - f32(59 * e[2][k])) + f32(37 * e[1][k])) - f32(9 * e[0][k]))));
    }
    const prev = this.prevSample(sample, timestep, prevTimestep, eps);
    this.counter++;
    return prev;
  }

  /** Formula (9) of the PNDM paper: x_{t-δ} from x_t and the (combined) noise prediction. */
  private prevSample(sample: Float32Array, t: number, prevT: number, modelOutput: Float32Array): Float32Array {
    const a = this.alphasCumprod[t];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const b = f32(1 - a), bPrev = f32(1 - aPrev);
    let eps = modelOutput;
    if (this.config.prediction_type === "v_prediction") {
      const sa = f32(Math.sqrt(a)), sb = f32(Math.sqrt(b));
      eps = modelOutput.map((m, k) => f32(sa * m) + f32(sb * sample[k]));
    }
    const sampleCoeff = f32(Math.sqrt(f32(aPrev / a)));
    const denom = f32(f32(a * f32(Math.sqrt(bPrev))) + f32(Math.sqrt(f32(f32(a * b) * aPrev))));
    const diff = f32(aPrev - a);
    return sample.map((s, k) => f32(sampleCoeff * s) - f32(f32(diff * eps[k]) / denom));
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return vpAddNoise(this.alphasCumprod, original, noise, timestep);
  }
}
