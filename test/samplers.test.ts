/**
 * The schedulers added for A1111's samplers (LMS, DPM2, DPM2 a, PLMS, DPM++ 3M SDE) and Segmind's
 * "DPM Single" (DPMSolverSinglestepScheduler), the exponential and beta sigma schedules, and the A1111
 * sampler / schedule-type names. No reference fixtures exist for
 * these: each test re-derives the diffusers formulas in plain float64 here (k-diffusion's algorithms
 * where diffusers ports them) and compares the float32 implementation against them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TorchGenerator } from "../src/random/torch-generator.js";
import {
  A1111_SAMPLERS, A1111_SCHEDULES, WORKING_SCHEDULES, createScheduler, resolveA1111, schedulesFor, type Scheduler,
} from "../src/schedulers/index.js";
import { betaPpf, betaSigmas, exponentialSigmas, regularizedBeta } from "../src/schedulers/sigma-schedules.js";

/** SSD-1B's scheduler_config.json. */
const SDXL_CONFIG = {
  _class_name: "EulerDiscreteScheduler", beta_end: 0.012, beta_schedule: "scaled_linear", beta_start: 0.00085,
  clip_sample: false, interpolation_type: "linear", num_train_timesteps: 1000, prediction_type: "epsilon",
  sample_max_value: 1.0, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: "leading",
  trained_betas: null, use_karras_sigmas: false,
};
const SHAPE = [1, 4, 8, 8];
const N = 256;
const TOL = 1e-6;

// ---- the reference: float64 re-derivations -------------------------------------------------------

/** scaled_linear betas, alphas_cumprod and the sigma table of the SDXL config. */
// diffusers keeps betas and alphas in float32 torch tensors (the running product of the cumprod in double);
// rounding each factor shifts sigma by up to ~1e-5 relative, more than the tolerances here
const f32 = Math.fround;
const ALPHAS_CUMPROD: number[] = (() => {
  const s = f32(Math.sqrt(0.00085)), e = f32(Math.sqrt(0.012));
  let acc = 1;
  return Array.from({ length: 1000 }, (_, i) => f32(acc *= f32(1 - f32((s + ((e - s) * i) / 999) ** 2))));
})();
const TABLE = ALPHAS_CUMPROD.map((a) => Math.sqrt((1 - a) / a));
const LOG_TABLE = TABLE.map(Math.log);

const interp = (t: number) => {
  const j = Math.min(Math.floor(t), 998);
  return TABLE[j] + (TABLE[j + 1] - TABLE[j]) * (t - j);
};

/** The fractional training timestep of a sigma: linear in log sigma between table entries. */
function tOfSigma(sigma: number): number {
  const l = Math.log(Math.max(sigma, 1e-10));
  if (l <= LOG_TABLE[0]) return 0;
  let j = 0;
  while (j < 998 && LOG_TABLE[j + 1] < l) j++;
  const w = Math.min(1, (LOG_TABLE[j] - l) / (LOG_TABLE[j] - LOG_TABLE[j + 1]));
  return j + w;
}

/** "leading" with steps_offset 1 (the SDXL config): n - 1 - i steps of 1000 // n, plus 1. */
const leading = (n: number) => Array.from({ length: n }, (_, i) => (n - 1 - i) * Math.floor(1000 / n) + 1);

/** The fixtures' toy model: eps = 0.5 * x / sqrt(sigma^2 + 1) * cos(t / 1000) + 0.1. */
const refEps = (x: number[], sigma: number, t: number) => x.map((v) => 0.5 * (v / Math.sqrt(sigma * sigma + 1)) * Math.cos(t / 1000) + 0.1);

/** The same toy model through the implementation's scaleModelInput, in float32 as the fixtures do. */
function toyModel(s: Scheduler, x: Float32Array, t: number): Float32Array {
  const c = Math.fround(Math.cos(Math.fround(t / 1000)));
  return s.scaleModelInput(x, t).map((v) => Math.fround(Math.fround(0.5 * v) * c) + Math.fround(0.1));
}

/** max |a - b| / max |b|. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / m;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = TOL): number {
  const e = relErr(a, b);
  assert.ok(e <= tol, `${what}: max|d|/max|ref| ${e.toExponential(2)} > ${tol}`);
  return e;
}

/** Runs the implementation on the toy model from x0 = randn(seed 5) * init_noise_sigma; noise from seed 6. */
function runImpl(s: Scheduler, steps: number): Float32Array[] {
  s.setTimesteps(steps);
  let x: Float32Array = new TorchGenerator(5).randn(SHAPE).map((v) => v * Math.fround(s.initNoiseSigma));
  const out = [x];
  const gen = new TorchGenerator(6);
  for (const t of s.timesteps) {
    x = s.step(toyModel(s, x, t), t, x, gen, SHAPE);
    out.push(x);
  }
  return out;
}

const x0 = (sigma0: number) => Array.from(new TorchGenerator(5).randn(SHAPE), (v) => v * sigma0);

/** Simpson's rule on one interval: exact for the cubics LMS integrates. */
const simpson = (f: (x: number) => number, a: number, b: number) => ((b - a) / 6) * (f(a) + 4 * f((a + b) / 2) + f(b));

// ---- sigma schedules ------------------------------------------------------------------------------

test("exponential sigmas: geometric from sigma_max to sigma_min", () => {
  const s = exponentialSigmas(0.03, 14.6, 7);
  const ref = Array.from({ length: 7 }, (_, i) => 14.6 * (0.03 / 14.6) ** (i / 6));
  assertClose(s, ref, "exponential", 1e-12);
});

test("beta sigmas: quantiles of Beta(0.6, 0.6) between sigma_min and sigma_max", () => {
  // I_x(a, b) by direct integration, independent of the continued fraction: with u = s^(1/a) the
  // integrand of the lower half is smooth; the upper half follows from the symmetry a = b
  const a = 0.6;
  const half = (x: number) => {
    const f = (s: number) => (1 - s ** (1 / a)) ** (a - 1) / a;
    const top = x ** a, m = 2000;
    let sum = 0;
    for (let k = 0; k < m; k++) sum += simpson(f, (top * k) / m, (top * (k + 1)) / m);
    return sum;
  };
  const total = 2 * half(0.5);
  const cdf = (x: number) => (x <= 0.5 ? half(x) / total : 1 - half(1 - x) / total);
  for (const q of [0.001, 0.1, 0.25, 0.5, 0.7, 0.9, 0.999]) {
    const x = betaPpf(q, a, a);
    assert.ok(Math.abs(cdf(x) - q) < 1e-9, `ppf(${q}) = ${x}: cdf ${cdf(x)}`);
    assert.ok(Math.abs(regularizedBeta(x, a, a) - q) < 1e-13, `I_x at ppf(${q})`);
  }
  assert.equal(betaPpf(0.5, a, a), 0.5);
  assert.ok(Math.abs(betaPpf(0.2, a, a) + betaPpf(0.8, a, a) - 1) < 1e-14, "symmetric");
  // and an asymmetric case against I_x(1, b) = 1 - (1 - x)^b
  assert.ok(Math.abs(betaPpf(0.3, 1, 2.5) - (1 - 0.7 ** (1 / 2.5))) < 1e-14);
  const s = betaSigmas(0.03, 14.6, 5);
  assert.deepEqual([s[0], s[4]], [14.6, 0.03]);
  assert.ok(Math.abs(s[2] - (0.03 + 0.5 * (14.6 - 0.03))) < 1e-12, "the median in the middle");
});

test("Euler, Heun, DPM++ 2M, LMS, DPM2: exponential and beta timesteps and sigmas", () => {
  for (const kind of ["exponential", "beta"] as const) {
    const n = 8;
    const ends = [TABLE[999], TABLE[0]];
    const ref = kind === "exponential" ? exponentialSigmas(ends[1], ends[0], n) : betaSigmas(ends[1], ends[0], n);
    for (const name of ["Euler", "Heun", "DPM++ 2M", "LMS", "DPM2"]) {
      const r = resolveA1111(name, kind);
      const s = createScheduler(r.name, SDXL_CONFIG);
      assert.equal(s.config.timestep_spacing, "linspace", `${name} ${kind}: linspace as diffusers' table says`);
      s.setTimesteps(n);
      const order2 = s.order === 2;
      // Heun and DPM2 repeat (or interleave) timesteps; take the per-step ones
      const sig = order2 && name === "Heun" ? [s.sigmas![0], ...Array.from({ length: n - 1 }, (_, i) => s.sigmas![1 + 2 * i])]
        : order2 ? Array.from({ length: n }, (_, i) => s.sigmas![i === 0 ? 0 : 2 * i]) : Array.from(s.sigmas!).slice(0, n);
      assertClose(sig, ref, `${name} ${kind} sigmas`, 1e-6);
      const ts = order2 ? Array.from({ length: n }, (_, i) => s.timesteps[i === 0 ? 0 : 2 * i]) : Array.from(s.timesteps);
      const refT = Array.from(ref, tOfSigma);
      for (let i = 0; i < n; i++) {
        if (name === "DPM++ 2M") {
          // DPM-Solver casts the unrounded timesteps to int64 (truncation)
          assert.ok(Math.abs(ts[i] - Math.trunc(refT[i])) <= (Math.abs(refT[i] - Math.round(refT[i])) < 1e-3 ? 1 : 0), `${name} ${kind} t${i}: ${ts[i]} vs ${refT[i]}`);
        } else {
          assert.ok(Math.abs(ts[i] - refT[i]) < 1e-4, `${name} ${kind} t${i}: ${ts[i]} vs ${refT[i]}`);
        }
      }
    }
  }
});

// diffusers UniPCMultistepScheduler.set_timesteps(10) with use_exponential_sigmas / use_beta_sigmas on the SDXL
// config, its formulas run in numpy 2.4 + scipy 1.17 (flip the sigma table, _convert_to_exponential / _beta,
// _sigma_to_t, the int64 cast; then the final sigma of final_sigmas_type "zero", the default)
const UNIPC_REF = {
  exponential: {
    t: [998.99999, 874.742, 723.7019, 538.0671, 329.7678, 152.7211, 52.3826, 14.1525, 2.9507, 0],
    sigmas: [14.614655494689941, 7.324886798858643, 3.6712441444396973, 1.8400330543518066, 0.9222272634506226, 0.4622216820716858, 0.2316661924123764, 0.11611143499612808, 0.05819522589445114, 0.029167532920837402, 0],
  },
  beta: {
    t: [998.99999, 991.0231, 972.6391, 943.9332, 902.1653, 841.1445, 746.9447, 583.3077, 257.7296, 0],
    sigmas: [14.614655494689941, 13.9277982711792, 12.490992546081543, 10.597618103027344, 8.442444801330566, 6.201377868652344, 4.046204566955566, 2.1528306007385254, 0.7160246968269348, 0.029167532920837402, 0],
  },
};

test("UniPC Exponential and UniPC Beta: diffusers' timesteps (truncated) and sigmas", () => {
  for (const kind of ["exponential", "beta"] as const) {
    const r = resolveA1111("UniPC", kind === "exponential" ? "Exponential" : "Beta");
    assert.equal(r.className, "UniPCMultistepScheduler");
    const s = createScheduler(r.name, SDXL_CONFIG);
    assert.equal((s.config as unknown as Record<string, unknown>)[`use_${kind}_sigmas`], true);
    s.setTimesteps(10);
    const ref = UNIPC_REF[kind];
    assertClose(s.sigmas!, ref.sigmas, `UniPC ${kind} sigmas`, 1e-6);
    assert.equal(s.sigmas![10], 0);
    // "sigma_min" repeats the schedule's last sigma instead
    const min = createScheduler(r.name, SDXL_CONFIG, { final_sigmas_type: "sigma_min" });
    min.setTimesteps(10);
    assert.equal(min.sigmas![10], min.sigmas![9]);
    for (let i = 0; i < 10; i++) {
      // t0 is 999 less a rounding error in diffusers: the int64 cast gives 998 or 999 by the last bit
      const ok = Math.abs(s.timesteps[i] - Math.trunc(ref.t[i])) <= (Math.abs(ref.t[i] - Math.round(ref.t[i])) < 1e-3 ? 1 : 0);
      assert.ok(ok, `UniPC ${kind} t${i}: ${s.timesteps[i]} vs ${ref.t[i]}`);
    }
    // the whole trajectory runs (finite) with these sigmas
    const out = runImpl(createScheduler(r.name, SDXL_CONFIG), 10);
    assert.ok(out.every((x) => x.every(Number.isFinite)));
  }
});

// ---- LMS ------------------------------------------------------------------------------------------

test("LMS: timesteps, sigmas and the order-4 linear multistep trajectory", (t) => {
  const n = 7;
  const s = createScheduler("LMS", SDXL_CONFIG);
  assert.equal(s.className, "LMSDiscreteScheduler");
  const ts = leading(n), sigmas = [...ts.map(interp), 0];
  s.setTimesteps(n);
  assert.deepEqual(Array.from(s.timesteps), ts);
  assertClose(s.sigmas!, sigmas, "sigmas", 1e-6);
  assert.ok(Math.abs(s.initNoiseSigma - Math.sqrt(sigmas[0] ** 2 + 1)) < 1e-5, "leading: sqrt(sigma_max^2 + 1)");
  const impl = runImpl(createScheduler("LMS", SDXL_CONFIG), n);

  // k-diffusion's sample_lms: the derivative is eps; coefficients integrate the Lagrange basis
  let x = x0(Math.sqrt(sigmas[0] ** 2 + 1));
  const ds: number[][] = [];
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const eps = refEps(x, sigmas[i], ts[i]);
    ds.push(eps);
    if (ds.length > 4) ds.shift();
    const order = Math.min(i + 1, 4);
    const coeffs = Array.from({ length: order }, (_, j) => simpson((tau) => {
      let p = 1;
      for (let k = 0; k < order; k++) if (k !== j) p *= (tau - sigmas[i - k]) / (sigmas[i - j] - sigmas[i - k]);
      return p;
    }, sigmas[i], sigmas[i + 1]));
    x = x.map((v, e) => v + coeffs.reduce((acc, c, j) => acc + c * ds[ds.length - 1 - j][e], 0));
    worst = Math.max(worst, assertClose(impl[i + 1], x, `step ${i}`));
  }
  t.diagnostic(`worst ${worst.toExponential(2)}`);
});

test("LMS Karras: Karras sigmas between the spaced end points", () => {
  const n = 6;
  const s = createScheduler("LMS Karras", SDXL_CONFIG);
  s.setTimesteps(n);
  const hi = interp(leading(n)[0]), lo = interp(1), rho = 7;
  const ref = Array.from({ length: n }, (_, i) => (hi ** (1 / rho) + (i / (n - 1)) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho);
  assertClose(Array.from(s.sigmas!).slice(0, n), ref, "karras sigmas", 1e-6);
  for (let i = 0; i < n; i++) assert.ok(Math.abs(s.timesteps[i] - tOfSigma(ref[i])) < 1e-4, `t${i}`);
});

// ---- DPM2 and DPM2 a ------------------------------------------------------------------------------

test("DPM2: the log-midpoint second-order step (k-diffusion sample_dpm_2)", (t) => {
  const n = 6;
  const s = createScheduler("DPM2", SDXL_CONFIG);
  assert.equal(s.className, "KDPM2DiscreteScheduler");
  const ts = leading(n), sigmas = [...ts.map(interp), 0];
  const mids = sigmas.slice(1).map((v, i) => Math.exp((Math.log(sigmas[i]) + Math.log(v)) / 2));
  s.setTimesteps(n);
  // [t0, t(mid 0-1), t1, t(mid 1-2), t2, ...]: 2n - 1 evaluations
  assert.equal(s.timesteps.length, 2 * n - 1);
  for (let i = 0; i < n; i++) assert.equal(s.timesteps[i === 0 ? 0 : 2 * i], ts[i]);
  for (let i = 0; i < n - 1; i++) assert.ok(Math.abs(s.timesteps[2 * i + 1] - tOfSigma(mids[i])) < 1e-4, `mid t${i}`);

  const impl = runImpl(createScheduler("DPM2", SDXL_CONFIG), n);
  let x = x0(Math.sqrt(sigmas[0] ** 2 + 1));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const d = refEps(x, sigmas[i], ts[i]);
    if (sigmas[i + 1] === 0) {
      x = x.map((v, k) => v + d[k] * (0 - sigmas[i]));
      worst = Math.max(worst, assertClose(impl[2 * i + 1], x, `last step`));
      break;
    }
    const x2 = x.map((v, k) => v + d[k] * (mids[i] - sigmas[i]));
    worst = Math.max(worst, assertClose(impl[2 * i + 1], x2, `step ${i}, to the midpoint`));
    const d2 = refEps(x2, mids[i], tOfSigma(mids[i]));
    x = x.map((v, k) => v + d2[k] * (sigmas[i + 1] - sigmas[i]));
    worst = Math.max(worst, assertClose(impl[2 * i + 2], x, `step ${i}`));
  }
  t.diagnostic(`worst ${worst.toExponential(2)}`);
});

test("DPM2 a: the ancestral step to sigma_down plus noise of std sigma_up (k-diffusion sample_dpm_2_ancestral)", (t) => {
  const n = 6;
  const s = createScheduler("DPM2 a", SDXL_CONFIG);
  assert.equal(s.className, "KDPM2AncestralDiscreteScheduler");
  const ts = leading(n), sigmas = [...ts.map(interp), 0];
  const impl = runImpl(s, n);
  assert.equal(s.timesteps.length, 2 * n - 1);
  const gen = new TorchGenerator(6);
  let x = x0(Math.sqrt(sigmas[0] ** 2 + 1));
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const from = sigmas[i], to = sigmas[i + 1];
    const up = Math.sqrt((to ** 2 * (from ** 2 - to ** 2)) / from ** 2), down = Math.sqrt(to ** 2 - up ** 2);
    const d = refEps(x, from, ts[i]);
    if (down === 0) {
      x = x.map((v, k) => v + d[k] * (down - from));
      worst = Math.max(worst, assertClose(impl[2 * i + 1], x, `last step`));
      break;
    }
    const mid = Math.exp((Math.log(from) + Math.log(down)) / 2);
    assert.ok(Math.abs(s.timesteps[2 * i + 1] - tOfSigma(mid)) < 1e-4, `mid t${i}`);
    const x2 = x.map((v, k) => v + d[k] * (mid - from));
    const d2 = refEps(x2, mid, tOfSigma(mid));
    const noise = gen.randn(SHAPE);
    x = x.map((v, k) => v + d2[k] * (down - from) + noise[k] * up);
    worst = Math.max(worst, assertClose(impl[2 * i + 2], x, `step ${i}`));
  }
  t.diagnostic(`worst ${worst.toExponential(2)}`);
});

test("DPM2 Karras: Karras timesteps are rounded", () => {
  const s = createScheduler("DPM2 Karras", SDXL_CONFIG);
  s.setTimesteps(5);
  for (let i = 0; i < 5; i++) assert.ok(Number.isInteger(s.timesteps[i === 0 ? 0 : 2 * i]), `t${i} = ${s.timesteps[2 * i]}`);
});

// ---- PLMS (PNDM with skip_prk_steps) -------------------------------------------------------------

test("PLMS: PNDM's pseudo linear multistep steps (skip_prk_steps)", (t) => {
  const n = 6;
  const s = createScheduler("PLMS", SDXL_CONFIG);
  assert.equal(s.className, "PNDMScheduler");
  const ts = leading(n), ratio = Math.floor(1000 / n);
  s.setTimesteps(n);
  // the second timestep repeats: the first step's correction
  assert.deepEqual(Array.from(s.timesteps), [ts[0], ts[1], ...ts.slice(1)]);
  assert.equal(s.initNoiseSigma, 1);
  const impl = runImpl(createScheduler("PNDM", SDXL_CONFIG), n);

  const ac = (tt: number) => (tt >= 0 ? ALPHAS_CUMPROD[tt] : ALPHAS_CUMPROD[0]); // set_alpha_to_one false
  // formula (9) of Liu et al. 2022: x_{t-d} from x_t and a noise estimate
  const phi = (x: number[], e: number[], from: number, to: number) => {
    const a = ac(from), ap = ac(to);
    const denom = a * Math.sqrt(1 - ap) + Math.sqrt(a * (1 - a) * ap);
    return x.map((v, k) => Math.sqrt(ap / a) * v - ((ap - a) * e[k]) / denom);
  };
  const eps = (x: number[], tt: number) => x.map((v) => 0.5 * v * Math.cos(tt / 1000) + 0.1); // no input scaling
  let x = x0(1);
  const e0 = eps(x, ts[0]);
  const predicted = phi(x, e0, ts[0], ts[1]);
  let worst = assertClose(impl[1], predicted, "first step");
  x = phi(x, e0.map((v, k) => (v + eps(predicted, ts[1])[k]) / 2), ts[0], ts[1]);
  worst = Math.max(worst, assertClose(impl[2], x, "its correction"));
  const ets = [e0]; // the correction's evaluation is not kept
  for (let i = 1; i < n; i++) {
    ets.push(eps(x, ts[i]));
    if (ets.length > 4) ets.shift();
    const [a, b, c, d] = [...ets].reverse();
    const L = ets.length;
    const e = a.map((v, k) => (L === 2 ? (3 * v - b[k]) / 2 : L === 3 ? (23 * v - 16 * b[k] + 5 * c[k]) / 12 : (55 * v - 59 * b[k] + 37 * c[k] - 9 * d[k]) / 24));
    x = phi(x, e, ts[i], ts[i] - ratio);
    worst = Math.max(worst, assertClose(impl[i + 2], x, `step ${i}`));
  }
  t.diagnostic(`worst ${worst.toExponential(2)}`);
});

// ---- DPM++ 3M SDE ---------------------------------------------------------------------------------

test("DPM++ 3M SDE: third-order SDE-DPM-Solver++ with its lower-order start and end", (t) => {
  const n = 8;
  const s = createScheduler("DPM++ 3M SDE", SDXL_CONFIG);
  const c = s.config as unknown as Record<string, unknown>;
  assert.deepEqual([s.className, c.solver_order, c.algorithm_type], ["DPMSolverMultistepScheduler", 3, "sde-dpmsolver++"]);
  // multistep "leading": n + 1 points with 1000 // (n + 1) spacing, the last dropped
  const ratio = Math.floor(1000 / (n + 1));
  const ts = Array.from({ length: n }, (_, i) => (n - i) * ratio + 1);
  const sigmas = [...ts.map(interp), 0];
  const impl = runImpl(s, n);
  assert.deepEqual(Array.from(s.timesteps), ts);

  const gen = new TorchGenerator(6);
  const coef = (sg: number) => {
    const alpha = 1 / Math.sqrt(sg * sg + 1), st = sg * alpha;
    return { alpha, st, lambda: Math.log(alpha) - Math.log(st) };
  };
  let x = x0(1);
  const m: number[][] = [];
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const eps = x.map((v) => 0.5 * v * Math.cos(ts[i] / 1000) + 0.1); // DPM-Solver does not scale the input
    const { alpha: a0, st: st0 } = coef(sigmas[i]);
    m.push(x.map((v, k) => (v - st0 * eps[k]) / a0));
    const noise = gen.randn(SHAPE);
    // lower_order_final (fewer than 15 steps, final sigma 0): first order last, second order before it
    const order = i === n - 1 ? 1 : i === n - 2 ? 2 : Math.min(i + 1, 3);
    const T = coef(sigmas[i + 1]), S0 = coef(sigmas[i]);
    const h = T.lambda - S0.lambda;
    const base = (T.st / S0.st) * Math.exp(-h), one = 1 - Math.exp(-2 * h);
    const M0 = m[m.length - 1];
    let D1 = M0.map(() => 0), D2 = M0.map(() => 0);
    if (order >= 2) {
      const h0 = S0.lambda - coef(sigmas[i - 1]).lambda, r0 = h0 / h;
      const D1_0 = M0.map((v, k) => (v - m[m.length - 2][k]) / r0);
      if (order === 2) D1 = D1_0;
      else {
        const h1 = coef(sigmas[i - 1]).lambda - coef(sigmas[i - 2]).lambda, r1 = h1 / h;
        const D1_1 = m[m.length - 2].map((v, k) => (v - m[m.length - 3][k]) / r1);
        D1 = D1_0.map((v, k) => v + (r0 / (r0 + r1)) * (v - D1_1[k]));
        D2 = D1_0.map((v, k) => (v - D1_1[k]) / (r0 + r1));
      }
    }
    // order 2 uses the midpoint form: 0.5 * (1 - e^-2h) * D1
    const c1 = order === 2 ? 0.5 * one : one / (-2 * h) + 1;
    const c2 = (one - 2 * h) / (2 * h) ** 2 - 0.5;
    x = x.map((v, k) => base * v + T.alpha * (one * M0[k] + c1 * D1[k] + (order === 3 ? c2 * D2[k] : 0)) + T.st * Math.sqrt(one) * noise[k]);
    worst = Math.max(worst, assertClose(impl[i + 1], x, `step ${i} (order ${order})`));
  }
  t.diagnostic(`worst ${worst.toExponential(2)}`);
});

// ---- the A1111 names ------------------------------------------------------------------------------

test("A1111 names: samplers and schedule types resolve to diffusers classes and options", () => {
  const cases: [string, string | undefined, string, Record<string, unknown>][] = [
    ["DPM++ 2M", "Karras", "DPMSolverMultistepScheduler", { use_karras_sigmas: true, algorithm_type: "dpmsolver++" }],
    ["dpm++ 2m", "karras", "DPMSolverMultistepScheduler", { use_karras_sigmas: true }],
    ["DPM++ 2M Karras", undefined, "DPMSolverMultistepScheduler", { use_karras_sigmas: true }],
    ["DPM++ 2M Karras", "Automatic", "DPMSolverMultistepScheduler", { use_karras_sigmas: true }],
    ["Euler", "SGM Uniform", "EulerDiscreteScheduler", { timestep_spacing: "trailing", use_karras_sigmas: false }],
    ["Euler", "sgm_uniform", "EulerDiscreteScheduler", { timestep_spacing: "trailing" }],
    ["Euler", "SGMUniform", "EulerDiscreteScheduler", { timestep_spacing: "trailing" }],
    ["Euler", "normal", "EulerDiscreteScheduler", { timestep_spacing: "linspace" }],
    ["Euler a", "Simple", "EulerAncestralDiscreteScheduler", { timestep_spacing: "trailing" }],
    ["Euler", "Exponential", "EulerDiscreteScheduler", { use_exponential_sigmas: true, timestep_spacing: "linspace" }],
    ["LMS", "Beta", "LMSDiscreteScheduler", { use_beta_sigmas: true, timestep_spacing: "linspace" }],
    ["DDIM", "DDIM", "DDIMScheduler", { timestep_spacing: "leading", steps_offset: 1 }],
    ["DDIM", "Uniform", "DDIMScheduler", { timestep_spacing: "linspace" }],
    ["k_lms_ka", undefined, "LMSDiscreteScheduler", { use_karras_sigmas: true }],
    ["k_dpmpp_2m_sde_heun_exp", undefined, "DPMSolverMultistepScheduler", { use_exponential_sigmas: true, solver_type: "heun" }],
    ["DPM2 a Karras", undefined, "KDPM2AncestralDiscreteScheduler", { use_karras_sigmas: true }],
    ["DPM++ 3M SDE Exponential", undefined, "DPMSolverMultistepScheduler", { solver_order: 3, algorithm_type: "sde-dpmsolver++", use_exponential_sigmas: true }],
    ["PNDM", undefined, "PNDMScheduler", { skip_prk_steps: true }],
  ];
  for (const [sampler, schedule, cls, options] of cases) {
    const r = resolveA1111(sampler, schedule);
    assert.equal(r.className, cls, `${sampler} / ${schedule}`);
    for (const [k, v] of Object.entries(options)) assert.equal(r.overrides[k], v, `${sampler} / ${schedule}: ${k}`);
    // the canonical name means the same to createScheduler
    const s = createScheduler(r.name, SDXL_CONFIG);
    assert.equal(s.className, cls);
    const config = s.config as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(options)) assert.equal(config[k], v, `${r.name}: ${k}`);
  }
  assert.equal(resolveA1111("Euler", "Automatic").name, "Euler");
  assert.equal(resolveA1111("LMS", "sgm_uniform").name, "LMS SGM Uniform");
});

test("A1111 names: combinations without a diffusers equivalent fail, naming what works", () => {
  assert.throws(() => resolveA1111("Euler a", "Karras"), (e: Error) =>
    /Euler a \(EulerAncestralDiscreteScheduler\) has no "Karras" schedule/.test(e.message) &&
    e.message.split("use ")[1] === '"Automatic", "Uniform", "SGM Uniform", "Simple", "Normal", "DDIM"');
  // A1111's custom-sigma schedule types: only Euler takes diffusers' custom sigmas (see a1111-custom-sigmas.test.ts)
  for (const schedule of ["Polyexponential", "kl_optimal", "Align Your Steps"]) {
    assert.equal(resolveA1111("Euler", schedule).className, "EulerDiscreteScheduler", schedule);
    assert.throws(() => resolveA1111("DPM++ 2M", schedule), (e: Error) => /only Euler \(EulerDiscreteScheduler\) takes/.test(e.message) && e.message.split("use ")[1] === '"Automatic", "Uniform", "Karras", "Exponential", "SGM Uniform", "Simple", "Normal", "DDIM", "Beta"', schedule);
  }
  assert.throws(() => resolveA1111("Euler", "Sometimes"), (e: Error) => e.message.includes("unknown schedule type") && e.message.includes('"Beta"') && e.message.includes('"Align Your Steps"'));
  assert.throws(() => resolveA1111("UniPC", "SGM Uniform Karras"), /unknown schedule type/);
  assert.throws(() => resolveA1111("LCM", "Karras"), /with LCM use "Automatic"/);
  assert.throws(() => resolveA1111("DPM++ 2M Karras", "Exponential"), /already names the schedule "Karras"/);
  assert.throws(() => resolveA1111("DPM++ SDE"), (e: Error) => /Brownian tree/.test(e.message) && e.message.includes('"DPM++ 2M"'));
  assert.throws(() => resolveA1111("DPM++ SDE Karras"), /Brownian tree/);
  assert.throws(() => resolveA1111("DPM++ 2S a"), /no ancestral single-step/);
  assert.throws(() => resolveA1111("Frobnicator"), /unknown sampler "Frobnicator"; the samplers are "DPM\+\+ 2M"/);
  // through createScheduler (the CLI's --scheduler, the pipeline)
  assert.throws(() => createScheduler("DPM++ SDE", SDXL_CONFIG), /scheduler "DPM\+\+ SDE": sampler "DPM\+\+ SDE" is not available/);
  assert.throws(() => createScheduler("Euler a Karras", SDXL_CONFIG), /has no "Karras" schedule/);
  assert.throws(() => createScheduler("Euler", SDXL_CONFIG, { use_karras_sigmas: true, use_beta_sigmas: true }), /only one of/);
});

test("A1111 names: the listed schedule types are the working ones, each running with every sampler that takes it", () => {
  assert.deepEqual(WORKING_SCHEDULES.map((s) => s.label), ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal", "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"]);
  assert.equal(A1111_SCHEDULES.length, 12, "every A1111 schedule type is known, working or not");
  for (const sampler of A1111_SAMPLERS) {
    for (const schedule of schedulesFor(sampler)) {
      const r = resolveA1111(sampler.name, schedule);
      const s = createScheduler(r.name, SDXL_CONFIG);
      s.setTimesteps(9);
      const gen = new TorchGenerator(1);
      let x: Float32Array = gen.randn(SHAPE).map((v) => v * s.initNoiseSigma);
      for (const t of s.timesteps) x = s.step(toyModel(s, x, t), t, x, gen, SHAPE);
      assert.ok(x.every(Number.isFinite) && x.length === N, `${r.name}: finite`);
    }
  }
});

test("img2img: the new schedulers start mid-schedule and noise with their own sigma", async () => {
  const { img2imgTimesteps } = await import("../src/schedulers/index.js");
  const clean = new TorchGenerator(4).randn([N]), noise = new TorchGenerator(3).randn([N]);
  for (const name of ["LMS", "DPM2", "DPM2 a", "PLMS", "DPM++ 3M SDE"]) {
    const s = createScheduler(name, SDXL_CONFIG);
    s.setTimesteps(10);
    const r = img2imgTimesteps(s, 10, 0.5);
    assert.equal(r.beginIndex, 5 * s.order, name);
    let x: Float32Array = s.addNoise(clean, noise, r.timesteps[0]);
    const gen = new TorchGenerator(2);
    for (const t of r.timesteps) x = s.step(toyModel(s, x, t), t, x, gen, [N]);
    assert.ok(x.every(Number.isFinite), name);
  }
});

// ---- DPM-Solver single-step (Segmind's "DPM Single") ---------------------------------------------

test("DPMSolverSinglestepScheduler: groups of 1-2(-3) steps from one stored sample", (t) => {
  for (const [options, n] of [[{}, 7], [{ solver_order: 3 }, 8], [{ solver_order: 3, solver_type: "heun" }, 7], [{ algorithm_type: "sde-dpmsolver++" }, 6]] as const) {
    const s = createScheduler("DPMSolverSinglestepScheduler", SDXL_CONFIG, options);
    const c = s.config as unknown as Record<string, unknown>;
    const order = Number(c.solver_order), heun = c.solver_type === "heun", sde = c.algorithm_type === "sde-dpmsolver++";
    // always linspace over n + 1 points, the last dropped (the config's "leading" does not apply)
    const even = (v: number) => (Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v)); // numpy rounds halves to even
    const ts = Array.from({ length: n }, (_, i) => even((n - i) * (999 / n)));
    const sigmas = [...ts.map(interp), 0];
    const impl = runImpl(s, n);
    assert.deepEqual(Array.from(s.timesteps), ts);
    // get_order_list with lower_order_final (forced by the zero final sigma), the last step first order
    const groups = order === 3 ? (n % 3 === 0 ? [...Array(n / 3 - 1).fill([1, 2, 3]).flat(), 1, 2, 1] : n % 3 === 1 ? [...Array((n - 1) / 3).fill([1, 2, 3]).flat(), 1] : [...Array((n - 2) / 3).fill([1, 2, 3]).flat(), 1, 2])
      : n % 2 === 0 ? [...Array(n / 2 - 1).fill([1, 2]).flat(), 1, 1] : [...Array((n - 1) / 2).fill([1, 2]).flat(), 1];
    groups[n - 1] = 1;
    const coef = (sg: number) => {
      const alpha = 1 / Math.sqrt(sg * sg + 1), st = sg * alpha;
      return { alpha, st, lambda: Math.log(alpha) - Math.log(st) };
    };
    const gen = new TorchGenerator(6);
    let x = x0(1), start = x;
    const m: number[][] = [];
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const eps = x.map((v) => 0.5 * v * Math.cos(ts[i] / 1000) + 0.1);
      const { alpha, st } = coef(sigmas[i]);
      m.push(x.map((v, k) => (v - st * eps[k]) / alpha));
      const noise = sde ? Array.from(gen.randn(SHAPE)) : null;
      const o = groups[i];
      if (o === 1) start = x;
      const T = coef(sigmas[i + 1]), S = coef(sigmas[i + 1 - o]);
      const h = T.lambda - S.lambda, em = Math.exp(-h) - 1, one = 1 - Math.exp(-2 * h);
      const phi2 = sde ? one / (-2 * h) + 1 : em / h + 1;
      const D0 = m[m.length - o];
      let D1 = D0.map(() => 0), D2 = D0.map(() => 0), c1 = 0, c2 = 0;
      if (o === 2) {
        const r0 = (coef(sigmas[i]).lambda - S.lambda) / h;
        D1 = m[m.length - 1].map((v, k) => (v - D0[k]) / r0);
        c1 = heun ? T.alpha * phi2 : sde ? 0.5 * T.alpha * one : -0.5 * T.alpha * em;
      } else if (o === 3) {
        const r0 = (coef(sigmas[i]).lambda - S.lambda) / h, r1 = (coef(sigmas[i - 1]).lambda - S.lambda) / h;
        const D1_0 = m[m.length - 2].map((v, k) => (v - D0[k]) / r1), D1_1 = m[m.length - 1].map((v, k) => (v - D0[k]) / r0);
        c1 = T.alpha * phi2;
        if (!heun) D1 = D1_1;
        else {
          D1 = D1_0.map((v, k) => (r0 * v - r1 * D1_1[k]) / (r0 - r1));
          D2 = D1_0.map((v, k) => (2 * (D1_1[k] - v)) / (r0 - r1));
          c2 = sde ? T.alpha * ((one - 2 * h) / (2 * h) ** 2 - 0.5) : -T.alpha * ((em + h) / h ** 2 - 0.5);
        }
      }
      const ratio = sde ? (T.st / S.st) * Math.exp(-h) : T.st / S.st;
      const c0 = sde ? T.alpha * one : -T.alpha * em;
      x = start.map((v, k) => ratio * v + c0 * D0[k] + c1 * D1[k] + c2 * D2[k] + (noise ? T.st * Math.sqrt(one) * noise[k] : 0));
      worst = Math.max(worst, assertClose(impl[i + 1], x, `${JSON.stringify(options)} step ${i} (order ${o})`));
    }
    t.diagnostic(`${JSON.stringify(options)}: worst ${worst.toExponential(2)}`);
  }
});
