/**
 * What diffusers' DPM-Solver schedulers (DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler) have
 * in common: the VP coefficients of a sigma and the data prediction (UniPC uses them too), the config
 * handling, the schedule, the first-order update and add_noise.
 */
import { BaseScheduler } from "./base.js";
import { type BaseConfig, checkOption, drawNoise, f32, interpIndex, lincomb, logF32, multistepTimesteps, npLinspace, roundHalfEven, sigmaNorm, sigmaTable, sigmaToT } from "./common.js";
import { convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";
import { MultistepHistory } from "./multistep-history.js";
import type { NoiseGenerator } from "./types.js";

/** The config fields of both classes (the multistep one adds a few). */
export interface DPMSolverBaseConfig extends BaseConfig {
  solver_order: number;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  algorithm_type: string;
  solver_type: string;
  lower_order_final: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  final_sigmas_type: string;
  lambda_min_clipped: number;
  variance_type: string | null;
}

/** alpha_t, sigma_t and lambda_t = log(alpha_t) - log(sigma_t) of one sigma. */
export type Coef = { alpha: number; sigma: number; lambda: number };

/** VP-SDE coefficients of a sigma, as float32 0-d tensors: alpha_t = 1/sqrt(sigma^2+1), sigma_t = sigma*alpha_t. */
export function alphaSigma(sigma: number): Coef {
  const alpha = f32(1 / sigmaNorm(sigma));
  const s = f32(sigma * alpha);
  return { alpha, sigma: s, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(s))) };
}

/** x0 (data) prediction from the model output, as the multistep solvers convert it. */
export function dataPrediction(predictionType: string, sigma: number, modelOutput: Float32Array, sample: Float32Array): Float32Array {
  if (predictionType === "sample") return modelOutput;
  const { alpha, sigma: sigmaT } = alphaSigma(sigma);
  if (predictionType === "v_prediction") return lincomb(alpha, sample, -sigmaT, modelOutput);
  return sample.map((s, k) => f32(s - f32(sigmaT * modelOutput[k])) / alpha); // epsilon
}

/**
 * DPM-Solver++ (data prediction) and its SDE variant "sde-dpmsolver++"; the noise-prediction variants
 * "dpmsolver"/"sde-dpmsolver" (deprecated in diffusers) are not ported.
 */
export abstract class DPMSolverBase<C extends DPMSolverBaseConfig> extends BaseScheduler<C> {
  sigmas: Float64Array;
  /** The data predictions of the last solver_order steps. */
  protected readonly history: MultistepHistory;

  protected constructor(className: string, c: C) {
    // diffusers maps the solver types of its other solvers onto midpoint, and "deis" onto dpmsolver++
    if (c.algorithm_type === "deis") c.algorithm_type = "dpmsolver++";
    if (["logrho", "bh1", "bh2"].includes(c.solver_type)) c.solver_type = "midpoint";
    super(className, c, true);
    checkOption(this.className, "algorithm_type", c.algorithm_type, ["dpmsolver++", "sde-dpmsolver++"]);
    checkOption(this.className, "solver_type", c.solver_type, ["midpoint", "heun"]);
    checkOption(this.className, "solver_order", c.solver_order, [1, 2, 3]);
    checkOption(this.className, "prediction_type", c.prediction_type, ["epsilon", "sample", "v_prediction"]);
    checkOption(this.className, "final_sigmas_type", c.final_sigmas_type, ["zero", "sigma_min"]);
    checkOption(this.className, "thresholding", c.thresholding, [false]);
    checkOption(this.className, "variance_type", c.variance_type, [null]);
    sigmaScheduleKind(this.className, c);
    this.sigmas = Float64Array.from(sigmaTable(this.alphasCumprod));
    const T = c.num_train_timesteps;
    this.timesteps = npLinspace(0, T - 1, T).reverse();
    this.history = new MultistepHistory(c.solver_order);
  }

  /**
   * The timesteps and sigmas of set_timesteps (with the final sigma), and an empty history. `luLambdas`
   * (the multistep use_lu_lambdas) spaces them uniformly in log-sigma where no schedule option is on.
   */
  protected setSchedule(numInferenceSteps: number, luLambdas = false): void {
    const c = this.config;
    const table = sigmaTable(this.alphasCumprod);
    // lambda_min_clipped trims the noisiest timesteps (lambda_t falls as t grows)
    let clipped = 0;
    for (let t = c.num_train_timesteps - 1; t >= 0 && lambdaOfAlphaBar(this.alphasCumprod[t]) < c.lambda_min_clipped; t--) clipped++;
    let timesteps = multistepTimesteps(c, numInferenceSteps, c.num_train_timesteps - clipped);
    const logSigmas = logF32(table);
    let sigmas: Float64Array;
    const kind = sigmaScheduleKind(this.className, c);
    if (kind) {
      sigmas = convertSigmas(kind, table[0], table[table.length - 1], numInferenceSteps);
      // Karras timesteps are rounded; the others truncated by the int64 cast
      timesteps = sigmas.map((s) => (kind === "karras" ? roundHalfEven : Math.trunc)(sigmaToT(s, logSigmas)));
    } else if (luLambdas) {
      // uniform in log-sigma (Lu et al. 2022), from sigma_max down to sigma_min
      const max = logSigmas[logSigmas.length - 1], min = logSigmas[0];
      sigmas = npLinspace(0, 1, numInferenceSteps).map((r) => Math.exp(max + r * (min - max)));
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas)));
    } else {
      sigmas = timesteps.map((t) => interpIndex(t, table));
    }
    const last = c.final_sigmas_type === "sigma_min" ? table[0] : 0;
    this.sigmas = Float64Array.from([...sigmas, last].map(f32));
    this.timesteps = timesteps;
    this.history.reset();
  }

  /** The start of both steps: the data prediction joins the history, and the SDE variant draws its noise. */
  protected pushModelOutput(i: number, modelOutput: Float32Array, sample: Float32Array, generator?: NoiseGenerator, shape?: number[]): { x0: Float32Array; noise: Float32Array | null } {
    const x0 = dataPrediction(this.config.prediction_type, this.sigmas[i], modelOutput, sample);
    this.history.push(x0);
    const noise = this.config.algorithm_type === "sde-dpmsolver++" ? drawNoise(generator, shape ?? [sample.length], sample.length, this.className) : null;
    return { x0, noise };
  }

  /** The coefficients of sigmas[stepIndex + offset] for each offset. */
  protected coefficients(offsets: number[]): Coef[] {
    const i = this.stepIndex!;
    return offsets.map((o) => alphaSigma(this.sigmas[i + o]));
  }

  /** DPM-Solver++ of order 1 from sigmas[stepIndex] to the next, with noise for the SDE variant. */
  protected firstOrderUpdate(m0: Float32Array, sample: Float32Array, noise: Float32Array | null): Float32Array {
    const [t, s] = this.coefficients([1, 0]);
    const h = f32(t.lambda - s.lambda);
    if (!noise) {
      return lincomb(f32(t.sigma / s.sigma), sample, -f32(t.alpha * f32(f32(Math.exp(-h)) - 1)), m0);
    }
    const e2h = f32(Math.exp(f32(-2 * h)));
    const out = lincomb(f32(f32(t.sigma / s.sigma) * f32(Math.exp(-h))), sample, f32(t.alpha * f32(1 - e2h)), m0);
    const cn = f32(t.sigma * f32(Math.sqrt(f32(1 - e2h))));
    return out.map((v, k) => v + f32(cn * noise[k]));
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const { alpha, sigma } = alphaSigma(this.sigmas[this.addNoiseIndex(timestep, true)]);
    return lincomb(alpha, original, sigma, noise);
  }
}

/** lambda_t = log(alpha_t) - log(sigma_t) of a training alphas_cumprod entry (float32). */
function lambdaOfAlphaBar(alphaBar: number): number {
  return f32(f32(Math.log(f32(Math.sqrt(alphaBar)))) - f32(Math.log(f32(Math.sqrt(f32(1 - alphaBar))))));
}
