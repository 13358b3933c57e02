import { BaseScheduler } from "./base.js";
import {
  type BaseConfig, checkOption, f32, interpIndex, lincomb, logF32, multistepTimesteps, npLinspace,
  resolveConfig, roundHalfEven, sigmaTable, sigmaToT,
} from "./common.js";
import { convertSigmas, sigmaScheduleKind } from "./sigma-schedules.js";
import { alphaSigma, dataPrediction } from "./dpm-solver-common.js";
import { MultistepHistory } from "./multistep-history.js";

export interface UniPCConfig extends BaseConfig {
  solver_order: number;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  predict_x0: boolean;
  solver_type: string;
  lower_order_final: boolean;
  disable_corrector: number[];
  solver_p: null;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  /** The sigma after the last step: 0 (diffusers' default since it has the option) or the schedule's smallest. */
  final_sigmas_type: string;
}

export const UNIPC_DEFAULTS: UniPCConfig = {
  num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02, beta_schedule: "linear", trained_betas: null,
  solver_order: 2, prediction_type: "epsilon", thresholding: false, dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0, predict_x0: true, solver_type: "bh2", lower_order_final: true, disable_corrector: [],
  solver_p: null, use_karras_sigmas: false, use_exponential_sigmas: false, use_beta_sigmas: false, timestep_spacing: "linspace", steps_offset: 0,
  final_sigmas_type: "zero",
};

/**
 * diffusers UniPCMultistepScheduler (Zhao et al. 2023) with data prediction (predict_x0): each step
 * first corrects the previous result with the new model output (UniC), then predicts (UniP).
 */
export class UniPCMultistepScheduler extends BaseScheduler<UniPCConfig> {
  sigmas: Float64Array;
  private readonly history: MultistepHistory;
  private lastSample: Float32Array | null = null;
  private thisOrder = 1;

  constructor(config: object = {}, overrides: object = {}) {
    const c = resolveConfig("UniPCMultistepScheduler", UNIPC_DEFAULTS, config, overrides);
    if (["midpoint", "heun", "logrho"].includes(c.solver_type)) c.solver_type = "bh2"; // as diffusers
    super("UniPCMultistepScheduler", c);
    checkOption(this.className, "solver_type", c.solver_type, ["bh1", "bh2"]);
    checkOption(this.className, "predict_x0", c.predict_x0, [true]);
    checkOption(this.className, "prediction_type", c.prediction_type, ["epsilon", "sample", "v_prediction"]);
    checkOption(this.className, "thresholding", c.thresholding, [false]);
    checkOption(this.className, "solver_p", c.solver_p, [null]);
    checkOption(this.className, "final_sigmas_type", c.final_sigmas_type, ["zero", "sigma_min"]);
    this.sigmas = Float64Array.from(sigmaTable(this.alphasCumprod));
    const T = c.num_train_timesteps;
    this.timesteps = npLinspace(0, T - 1, T).reverse();
    this.history = new MultistepHistory(c.solver_order);
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    let timesteps = multistepTimesteps(c, numInferenceSteps);
    const table = sigmaTable(this.alphasCumprod);
    let sigmas: number[];
    const kind = sigmaScheduleKind(this.className, c);
    if (kind) {
      const logSigmas = logF32(table);
      const k = convertSigmas(kind, table[0], table[table.length - 1], numInferenceSteps);
      // diffusers rounds the Karras timesteps; the exponential and beta ones are truncated by the int64 cast
      timesteps = k.map((s) => (kind === "karras" ? roundHalfEven : Math.trunc)(sigmaToT(s, logSigmas)));
      sigmas = [...k, c.final_sigmas_type === "zero" ? 0 : k[k.length - 1]];
    } else {
      sigmas = [...Array.from(timesteps, (t) => interpIndex(t, table)), c.final_sigmas_type === "zero" ? 0 : table[0]];
    }
    this.sigmas = Float64Array.from(sigmas, f32);
    this.timesteps = timesteps;
    this.numInferenceSteps = timesteps.length;
    this.history.reset();
    this.lastSample = null;
    this.resetSteps();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    this.requireTimesteps();
    const c = this.config;
    const i = this.initStepIndex(timestep, true);
    const x0 = dataPrediction(c.prediction_type, this.sigmas[i], modelOutput, sample);
    if (i > 0 && !c.disable_corrector.includes(i - 1) && this.lastSample) {
      sample = this.update(x0, this.lastSample, this.thisOrder, i - 1, true);
    }
    this.history.push(x0);
    const order = c.lower_order_final ? Math.min(c.solver_order, this.timesteps.length - i) : c.solver_order;
    this.thisOrder = Math.min(order, this.history.lowerOrderNums + 1);
    this.lastSample = sample;
    const prev = this.update(null, sample, this.thisOrder, i, false);
    this.history.stepDone();
    this.stepIndex = i + 1;
    return prev;
  }

  /**
   * One UniP predictor (from `s` = step s0 to s0 + 1) or UniC corrector (the same interval, also using
   * the model output `modelT` at its end) in the B(h) formulation, float32 like torch.
   */
  private update(modelT: Float32Array | null, x: Float32Array, order: number, s0: number, corrector: boolean): Float32Array {
    // the corrector runs before the new output is pushed, so its m0 is still the newest entry
    const m0 = this.history.newest();
    if (!corrector && this.sigmas[s0 + 1] === 0) return finalPrediction(m0);
    const t = alphaSigma(this.sigmas[s0 + 1]), s = alphaSigma(this.sigmas[s0]);
    const h = f32(t.lambda - s.lambda);
    const rks: number[] = [];
    const D1s: Float32Array[] = [];
    for (let k = 1; k < order; k++) {
      const mk = this.history.newest(k);
      const rk = f32(f32(alphaSigma(this.sigmas[s0 - k]).lambda - s.lambda) / h);
      rks.push(rk);
      D1s.push(mk.map((v, e) => f32(v - m0[e]) / rk));
    }
    rks.push(1);
    const hh = -h; // predict_x0
    const hPhi1 = f32(Math.expm1(hh));
    const Bh = this.config.solver_type === "bh1" ? hh : hPhi1;
    let hPhiK = f32(f32(hPhi1 / hh) - 1);
    let factorial = 1;
    const R: number[][] = [], b: number[] = [];
    for (let k = 1; k <= order; k++) {
      R.push(rks.map((r) => f32(r ** (k - 1))));
      b.push(f32(f32(hPhiK * factorial) / Bh));
      factorial *= k + 1;
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / factorial));
    }
    let rhos: number[];
    if (!corrector) rhos = D1s.length === 0 ? [] : order === 2 ? [0.5] : solveF32(R.slice(0, -1).map((r) => r.slice(0, -1)), b.slice(0, -1));
    else rhos = order === 1 ? [0.5] : solveF32(R, b);

    const base = lincomb(f32(t.sigma / s.sigma), x, -f32(t.alpha * hPhi1), m0);
    const cB = f32(t.alpha * Bh);
    const out = new Float32Array(x.length);
    for (let e = 0; e < out.length; e++) {
      let res = 0;
      for (let k = 0; k < D1s.length; k++) res = f32(res + f32(rhos[k] * D1s[k][e]));
      if (corrector) res = f32(res + f32(rhos[rhos.length - 1] * f32(modelT![e] - m0[e])));
      out[e] = base[e] - f32(cB * res);
    }
    return out;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    const { alpha, sigma } = alphaSigma(this.sigmas[this.addNoiseIndex(timestep, true)]);
    return lincomb(alpha, original, sigma, noise);
  }
}

/**
 * The UniP step onto a zero final sigma (final_sigmas_type "zero"). There sigma_t = 0, alpha_t = 1,
 * lambda_t = +inf, h = +inf, so exp(-h) - 1 = -1 and diffusers' bh2 predictor computes
 * 0 * x - (1 * -1) * m0 - (1 * -1) * 0: exactly m0, the data prediction. Torch gets NaN or inf where a
 * term stays infinite: bh1 (B(h) = -h = -inf times a zero residual, the limit being m0) and an order
 * above 1 (rk = 0, so D1 = (m1 - m0) / 0; only with lower_order_final false). Those return m0 too, a
 * first-order final step, as DPM-Solver takes onto a zero final sigma.
 */
function finalPrediction(m0: Float32Array): Float32Array {
  return Float32Array.from(m0);
}

/** torch.linalg.solve for the tiny UniPC systems: Gaussian elimination with partial pivoting in float32. */
function solveF32(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(M[r][col]) > Math.abs(M[p][col])) p = r;
    [M[col], M[p]] = [M[p], M[col]];
    const inv = f32(1 / M[col][col]);
    for (let r = col + 1; r < n; r++) {
      const l = f32(M[r][col] * inv);
      for (let k = col; k <= n; k++) M[r][k] = f32(M[r][k] - f32(l * M[col][k]));
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let acc = M[r][n];
    for (let k = r + 1; k < n; k++) acc = f32(acc - f32(M[r][k] * x[k]));
    x[r] = f32(acc / M[r][r]);
  }
  return x;
}
