/**
 * Shared numerics of the diffusers 0.27.2 schedulers: beta schedules, the sigma table, numpy-style
 * spacing/interpolation and the Karras schedule.
 *
 * Precision follows the reference: tensors that torch keeps in float32 are rounded with `f32` after
 * every operation; values that numpy computes in float64 stay plain numbers.
 */

export const f32 = Math.fround;

/** Config fields every scheduler shares (diffusers `scheduler_config.json` names). */
export interface BaseConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas: number[] | null;
  prediction_type: string;
  timestep_spacing: string;
  steps_offset: number;
}

/**
 * Class defaults, then the known keys of `config`, then `overrides` (which must all be known: a typo
 * there is a bug). As diffusers' from_config, unknown config keys (`_class_name`, fields of other
 * scheduler classes) are ignored, and so are the keys listed in `_use_default_values` (defaults of the
 * class that wrote the file, so this class's own defaults apply).
 */
export function resolveConfig<C extends object>(className: string, defaults: C, config: object, overrides: object = {}): C {
  const out = { ...defaults } as Record<string, unknown>;
  const src = config as Record<string, unknown>;
  const usedDefaults = Array.isArray(src._use_default_values) ? src._use_default_values : [];
  for (const key of Object.keys(defaults)) {
    if (src[key] !== undefined && !usedDefaults.includes(key)) out[key] = src[key];
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in defaults)) {
      throw new Error(`${className} has no config field "${key}" (known: ${Object.keys(defaults).join(", ")})`);
    }
    if (value !== undefined) out[key] = value;
  }
  checkConfig(className, defaults as Record<string, unknown>, out);
  return out as C;
}

const kind = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** Most training timesteps accepted (diffusers' models use 1000): the tables are made from it. */
export const MAX_TRAIN_TIMESTEPS = 100_000;

/**
 * Each value has its default's type (a default of null takes any JSON value) and the shared fields
 * their range, before any table is allocated: `num_train_timesteps: 4e9` or `beta_start: "x"` in a
 * scheduler_config.json is an error naming the field, not an allocation or a black image.
 */
function checkConfig(className: string, defaults: Record<string, unknown>, c: Record<string, unknown>): void {
  const bad = (key: string, why: string) => new Error(`${className} config: ${key} ${why}, got ${JSON.stringify(c[key]) ?? String(c[key])}`);
  for (const [key, d] of Object.entries(defaults)) {
    const v = c[key];
    if (d === null || v === d) continue;
    if (kind(v) !== kind(d)) throw bad(key, `must be a ${kind(d)}`);
    if (typeof v === "number" && Number.isNaN(v)) throw bad(key, "must be a number");
  }
  const int = (key: string, min: number, max: number) => {
    const v = c[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) throw bad(key, `must be a whole number in [${min}, ${max}]`);
  };
  const unit = (key: string) => {
    const v = c[key];
    if (v !== undefined && !(typeof v === "number" && v >= 0 && v < 1)) throw bad(key, "must be a number in [0, 1)");
  };
  int("num_train_timesteps", 1, MAX_TRAIN_TIMESTEPS);
  int("steps_offset", 0, Math.max(0, ((c.num_train_timesteps as number | undefined) ?? 1000) - 1));
  unit("beta_start");
  unit("beta_end");
  const tb = c.trained_betas;
  if (tb !== undefined && tb !== null) {
    if (!Array.isArray(tb) || tb.length === 0 || tb.length > MAX_TRAIN_TIMESTEPS || tb.some((b) => !(typeof b === "number" && b >= 0 && b < 1))) {
      throw new Error(`${className} config: trained_betas must be null or 1 to ${MAX_TRAIN_TIMESTEPS} numbers in [0, 1)`);
    }
  }
}

/** numpy's round (half to even). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** np.linspace(start, stop, num, endpoint) in float64. */
export function npLinspace(start: number, stop: number, num: number, endpoint = true): Float64Array {
  const out = new Float64Array(num);
  const div = endpoint ? num - 1 : num;
  const step = (stop - start) / div;
  for (let i = 0; i < num; i++) out[i] = div > 0 ? i * step + start : i * (stop - start) + start;
  if (endpoint && num > 1) out[num - 1] = stop;
  return out;
}

/** np.arange(start, stop, step) for float steps: length ceil((stop-start)/step), value start + i*delta. */
export function npArange(start: number, stop: number, step: number): Float64Array {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(len);
  const delta = start + step - start; // numpy re-derives the step from its first two values
  for (let i = 0; i < len; i++) out[i] = i === 1 ? start + step : start + i * delta;
  return out;
}

/** np.interp(x, arange(len(fp)), fp) for one x. */
export function interpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0];
  if (x >= n - 1) return fp[n - 1];
  const j = Math.floor(x);
  if (x === j) return fp[j];
  return (fp[j + 1] - fp[j]) * (x - j) + fp[j];
}

/** The (float32) betas of diffusers' __init__. */
export function makeBetas(cfg: BaseConfig): Float32Array {
  const n = cfg.num_train_timesteps;
  if (cfg.trained_betas) return Float32Array.from(cfg.trained_betas);
  switch (cfg.beta_schedule) {
    case "linear":
      return torchLinspace(cfg.beta_start, cfg.beta_end, n);
    case "scaled_linear": {
      // linspace(sqrt(start), sqrt(end)) ** 2. The fixtures match float32 endpoints with the
      // interior points and their squares carried in float64, rounded once at the end.
      const s = f32(Math.sqrt(cfg.beta_start)), e = f32(Math.sqrt(cfg.beta_end));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const x = linspacePoint(s, e, n, i);
        out[i] = x * x;
      }
      return out;
    }
    case "squaredcos_cap_v2":
      return betasForAlphaBar(n, (t) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2);
    case "exp":
      return betasForAlphaBar(n, (t) => Math.exp(t * -12.0));
    case "sigmoid": {
      const x = torchLinspace(-6, 6, n);
      return x.map((v) => f32(f32(f32(1 / (1 + Math.exp(-v))) * f32(cfg.beta_end - cfg.beta_start)) + f32(cfg.beta_start)));
    }
    default:
      throw new Error(`beta_schedule "${cfg.beta_schedule}" is not supported (linear, scaled_linear, squaredcos_cap_v2, exp, sigmoid)`);
  }
}

/** torch.linspace's symmetric evaluation (from the start for the first half, from the end after). */
function linspacePoint(s: number, e: number, n: number, i: number): number {
  if (n === 1) return s;
  const step = (e - s) / (n - 1);
  return i < Math.floor(n / 2) ? s + step * i : e - step * (n - 1 - i);
}

function torchLinspace(start: number, end: number, n: number): Float32Array {
  const s = f32(start), e = f32(end);
  return Float32Array.from({ length: n }, (_, i) => linspacePoint(s, e, n, i));
}

function betasForAlphaBar(n: number, alphaBar: (t: number) => number, maxBeta = 0.999): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), maxBeta);
  return out;
}

/** Zero-terminal-SNR rescaling (arXiv 2305.08891, Algorithm 1), in float32 like torch. */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const sq = alphasCumprod(betas).map((a) => f32(Math.sqrt(a)));
  const first = sq[0], last = sq[sq.length - 1];
  const scale = f32(first / f32(first - last));
  const bar = sq.map((v) => f32(f32(v - last) * scale)).map((v) => f32(v * v));
  const out = new Float32Array(betas.length);
  out[0] = f32(1 - bar[0]);
  for (let i = 1; i < bar.length; i++) out[i] = f32(1 - f32(bar[i] / bar[i - 1]));
  return out;
}

/** torch.cumprod(1 - betas) on CPU: the running product is kept in double, each output rounded. */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f32(1 - betas[i]);
    out[i] = acc;
  }
  return out;
}

/**
 * Betas (with the optional zero-SNR rescale) to alphas_cumprod, as every __init__ does. The sigma-based
 * schedulers (`finiteLastSigma`) then nudge the last value off zero so that its sigma stays finite.
 */
export function trainingAlphasCumprod(cfg: BaseConfig & { rescale_betas_zero_snr?: boolean }, finiteLastSigma = false): Float32Array {
  let betas = makeBetas(cfg);
  if (cfg.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
  const ac = alphasCumprod(betas);
  if (cfg.rescale_betas_zero_snr && finiteLastSigma) ac[ac.length - 1] = 2 ** -24;
  return ac;
}

/** ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32. */
export function sigmaTable(ac: Float32Array): Float32Array {
  return ac.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** Karras et al. (2022) schedule, rho = 7, in float64. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): Float64Array {
  const rho = 7.0;
  const minInv = sigmaMin ** (1 / rho), maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/**
 * Fractional training timestep of a sigma: linear interpolation in log-sigma (diffusers _sigma_to_t).
 * The reference ran numpy 1.x, whose value-based casting does the float64 log(sigma) against the
 * float32 log_sigmas table in float32; only (1 - w) * low + w * high is float64. A float32 sigma
 * (`float32Sigma`: custom sigmas, cast with np.float32 first) has its log taken by numpy in float32.
 */
export function sigmaToT(sigma: number, logSigmas: Float32Array, float32Sigma = false): number {
  const logSigma = float32Sigma ? numpyLogF32(Math.max(f32(sigma), f32(1e-10))) : f32(Math.log(Math.max(sigma, 1e-10)));
  // argmax of cumsum(dists >= 0): the first index where the running count peaks
  let count = 0, best = -1, low = 0;
  for (let i = 0; i < logSigmas.length; i++) {
    if (logSigma >= logSigmas[i]) count++;
    if (count > best) { best = count; low = i; }
  }
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low], hi = logSigmas[low + 1];
  const w = Math.min(Math.max(f32(f32(lo - logSigma) / f32(lo - hi)), 0), 1);
  return f32(1 - w) * low + w * (low + 1);
}

/**
 * np.log of a float32 array. numpy keeps float32 and, on x86 with AVX2/AVX512F, uses its own SIMD
 * kernel (not correctly rounded); Karras timesteps depend on its exact bits, so it is replicated:
 * mantissa in [sqrt(1/2), sqrt(2)), a 5/5 rational polynomial in m - 1 with float32 FMAs, + e*ln2.
 */
export function logF32(a: Float32Array): Float32Array {
  return a.map(numpyLogF32);
}

const LOG_P = [0, 9.999999999999998702752e-1, 2.112677543073053063722, 1.480000633576506585156, 3.808837741388407920751e-1, 2.589979117907922693523e-2].map(f32);
const LOG_Q = [1, 2.612677543073109236779, 2.453006071784736363091, 9.864942958519418960339e-1, 1.546476374983906719538e-1, 5.875095403124574342950e-3].map(f32);
const LN2_F32 = f32(Math.LN2), SQRT1_2_F32 = f32(Math.SQRT1_2);
const bits = new DataView(new ArrayBuffer(4));

function numpyLogF32(x: number): number {
  if (!(x > 0) || x === Infinity) return Math.log(x); // NaN, -inf, +inf as numpy
  let e = 0;
  if (x < 2 ** -126) { x = f32(x * 2 ** 100); e = -100; } // denormals: pre-scale
  bits.setFloat32(0, x);
  const u = bits.getUint32(0);
  e += (u >>> 23) - 126;
  bits.setUint32(0, (u & 0x7fffff) | (126 << 23)); // mantissa in [0.5, 1)
  let m = bits.getFloat32(0);
  if (m <= SQRT1_2_F32) { m = f32(m + m); e -= 1; }
  m = f32(m - 1);
  let num = LOG_P[5], den = LOG_Q[5];
  for (let k = 4; k >= 0; k--) { num = fmaF32(num, m, LOG_P[k]); den = fmaF32(den, m, LOG_Q[k]); }
  return fmaF32(e, LN2_F32, f32(num / den));
}

/** Float32 fused multiply-add (one rounding): the float64 sum is exact except at float32 ties. */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 x 24 bits
  const s = p + c;
  const r = f32(s);
  const v = s - p, err = (p - (s - v)) + (c - v); // TwoSum residual of the float64 sum
  if (err === 0 || r === s) return r;
  const other = nextF32(r, s > r ? 1 : -1);
  if ((r + other) / 2 !== s) return r; // not a tie: the float64 rounding cannot cross it
  return (err > 0) === (other > r) ? other : r;
}

function nextF32(x: number, dir: 1 | -1): number {
  if (x === 0) return dir * 2 ** -149;
  bits.setFloat32(0, x);
  bits.setInt32(0, bits.getInt32(0) + (x > 0 ? dir : -dir));
  return bits.getFloat32(0);
}

/**
 * diffusers index_for_timestep: the position of `t` in the schedule; the second match when it occurs
 * twice (so that img2img starting mid-schedule on Heun's duplicated timesteps does not skip a step).
 */
export function indexForTimestep(timesteps: ArrayLike<number>, t: number, fallbackLast = false): number {
  const hits: number[] = [];
  for (let i = 0; i < timesteps.length; i++) if (timesteps[i] === t) hits.push(i);
  if (hits.length === 0) {
    // DPM-Solver and UniPC fall back to the last step; the others would fail indexing
    if (fallbackLast) return timesteps.length - 1;
    throw new Error(`timestep ${t} is not in the schedule [${Array.from(timesteps).join(", ")}]`);
  }
  return hits.length > 1 ? hits[1] : hits[0];
}

/** The timesteps of the three spacings shared by Euler, Euler ancestral and Heun, as float32 values. */
export function eulerTimesteps(cfg: BaseConfig, n: number): Float64Array {
  const T = cfg.num_train_timesteps;
  let ts: Float64Array;
  switch (cfg.timestep_spacing) {
    case "linspace":
      ts = npLinspace(0, T - 1, n).reverse();
      break;
    case "leading": {
      const ratio = Math.floor(T / n);
      ts = Float64Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio).map((t) => f32(t) + cfg.steps_offset);
      break;
    }
    case "trailing":
      ts = npArange(T, 0, -T / n).map((t) => f32(roundHalfEven(t)) - 1);
      break;
    default:
      throw new Error(`timestep_spacing "${cfg.timestep_spacing}" is not supported (linspace, leading, trailing)`);
  }
  return ts.map(f32);
}

/** Integer timesteps with n points (DDIM, DDPM). */
export function integerTimesteps(cfg: BaseConfig, n: number): Float64Array {
  const T = cfg.num_train_timesteps;
  switch (cfg.timestep_spacing) {
    case "linspace":
      return npLinspace(0, T - 1, n).map(roundHalfEven).reverse();
    case "leading": {
      const ratio = Math.floor(T / n);
      return Float64Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + cfg.steps_offset);
    }
    case "trailing":
      return npArange(T, 0, -T / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new Error(`timestep_spacing "${cfg.timestep_spacing}" is not supported (linspace, leading, trailing)`);
  }
}

/** Integer timesteps from an (n + 1)-point grid with its last point dropped (DPM-Solver, UniPC). */
export function multistepTimesteps(cfg: BaseConfig, n: number, lastTimestep = cfg.num_train_timesteps): Float64Array {
  switch (cfg.timestep_spacing) {
    case "linspace":
      return npLinspace(0, lastTimestep - 1, n + 1).map(roundHalfEven).reverse().subarray(0, n).slice();
    case "leading": {
      const ratio = Math.floor(lastTimestep / (n + 1));
      return Float64Array.from({ length: n }, (_, i) => (n - i) * ratio + cfg.steps_offset);
    }
    case "trailing":
      return npArange(lastTimestep, 0, -cfg.num_train_timesteps / n).map((t) => roundHalfEven(t) - 1);
    default:
      throw new Error(`timestep_spacing "${cfg.timestep_spacing}" is not supported (linspace, leading, trailing)`);
  }
}

/** Draws step noise, requiring an explicit generator (diffusers would fall back to torch's global RNG). */
export function drawNoise(generator: { randn(shape: number[]): Float32Array } | undefined, shape: number[], n: number, who: string): Float32Array {
  if (!generator) throw new Error(`${who}.step draws noise: pass a generator`);
  const noise = generator.randn(shape);
  if (noise.length !== n) throw new Error(`${who}.step: noise shape [${shape}] has ${noise.length} elements, the sample has ${n}`);
  return noise;
}

/** Rejects a config value this port (or diffusers) does not implement, naming the alternatives. */
export function checkOption(className: string, field: string, value: unknown, allowed: readonly unknown[]): void {
  if (!allowed.includes(value)) {
    throw new Error(`${className}: ${field} ${JSON.stringify(value)} is not supported (${allowed.map((a) => JSON.stringify(a)).join(", ")})`);
  }
}

/** a*x + b*y elementwise in float32 (a and b are float32 scalars, as torch's 0-d tensors). */
export function lincomb(a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32(a * x[i]) + f32(b * y[i]);
  return out;
}

/** sqrt(sigma^2 + 1) in float32: the Euler input scaling and DPM's 1/alpha_t. */
export function sigmaNorm(sigma: number): number {
  return f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
}
