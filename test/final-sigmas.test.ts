/**
 * final_sigmas_type: the sigma after the last step. Current diffusers gives UniPC, Euler and DPM-Solver
 * the option with default "zero"; diffusers 0.27.2 (the fixtures) ended UniPC on sigma_min. The UniPC
 * runs below are checked against its B(h) formulas re-derived here in float64, where a zero final sigma
 * makes lambda_t = -log(0) = +inf and h = +inf, as in torch.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TorchGenerator } from "../src/random/torch-generator.js";
import { createScheduler, type Scheduler } from "../src/schedulers/index.js";

/** SSD-1B's scheduler_config.json (an EulerDiscreteScheduler config, without final_sigmas_type). */
const SDXL_CONFIG = {
  _class_name: "EulerDiscreteScheduler", beta_end: 0.012, beta_schedule: "scaled_linear", beta_start: 0.00085,
  clip_sample: false, interpolation_type: "linear", num_train_timesteps: 1000, prediction_type: "epsilon",
  sample_max_value: 1.0, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: "leading",
  trained_betas: null, use_karras_sigmas: false,
};
/** diffusers' smallest training sigma of these betas, sqrt((1 - ac[0]) / ac[0]) in float32 (the fixtures' final sigma_min). */
const SIGMA_MIN = 0.029167532920837402;
const SHAPE = [1, 4, 8, 8];

/** The toy model of the fixtures (UniPC does not scale its input): eps = 0.5 * x * cos(t / 1000) + 0.1. */
const eps = (x: ArrayLike<number>, t: number) => Array.from(x, (v) => 0.5 * v * Math.cos(t / 1000) + 0.1);
function toyModel(x: Float32Array, t: number): Float32Array {
  const c = Math.fround(Math.cos(Math.fround(t / 1000)));
  return x.map((v) => Math.fround(Math.fround(0.5 * v) * c) + Math.fround(0.1));
}

function run(s: Scheduler, steps: number): Float32Array {
  s.setTimesteps(steps);
  let x: Float32Array = new TorchGenerator(5).randn(SHAPE);
  for (const t of s.timesteps) x = s.step(toyModel(x, t), t, x);
  return x;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / m;
}

// ---- diffusers' UniPC (data prediction, solver_order 2) in float64 --------------------------------

interface Variant { bh1?: boolean; lowerOrderFinal?: boolean }

const alphaOf = (sigma: number) => 1 / Math.sqrt(sigma * sigma + 1);
const lambdaOf = (sigma: number) => Math.log(alphaOf(sigma)) - Math.log(sigma * alphaOf(sigma));
const axpby = (a: number, x: number[], b: number, y: number[]) => x.map((v, k) => a * v + b * y[k]);

/**
 * One B(h) update over [sigmas[s], sigmas[s + 1]] from sample x with the data predictions `ms` (newest
 * last, ms[ms.length - 1] the one at s): UniP (mT null) or UniC (mT the prediction at s + 1).
 */
function update(sigmas: number[], s: number, x: number[], ms: number[][], order: number, mT: number[] | null, v: Variant = {}): number[] {
  const sT = sigmas[s + 1], sS = sigmas[s];
  const h = lambdaOf(sT) - lambdaOf(sS);
  const m0 = ms[ms.length - 1];
  const rks: number[] = [], D1s: number[][] = [];
  for (let k = 1; k < order; k++) {
    const rk = (lambdaOf(sigmas[s - k]) - lambdaOf(sS)) / h;
    rks.push(rk);
    D1s.push(ms[ms.length - 1 - k].map((v, e) => (v - m0[e]) / rk));
  }
  const hh = -h, hPhi1 = Math.expm1(hh), Bh = v.bh1 ? hh : hPhi1;
  let res = new Array<number>(x.length).fill(0);
  if (mT === null) {
    if (order === 2) res = D1s[0].map((d) => 0.5 * d);
  } else if (order === 1) {
    res = mT.map((v, e) => 0.5 * (v - m0[e]));
  } else {
    // order 2: R = [[r1, 1], [1, 1]] rows of rks^0 and rks^1, b_k = h_phi_k * k! / B(h)
    const b1 = (hPhi1 / hh - 1) / Bh, b2 = (((hPhi1 / hh - 1) / hh - 0.5) * 2) / Bh;
    const r1 = rks[0];
    const rho1 = (b2 - b1) / (r1 - 1), rhoT = b1 - rho1;
    res = D1s[0].map((d, e) => rho1 * d + rhoT * (mT[e] - m0[e]));
  }
  // sigma_t / sigma_s0 * x - alpha_t * h_phi_1 * m0 - alpha_t * B(h) * res
  const alphaT = alphaOf(sT), ratio = (sT * alphaT) / (sS * alphaOf(sS));
  return axpby(1, axpby(ratio, x, -alphaT * hPhi1, m0), -alphaT * Bh, res);
}

/**
 * UniPC's step loop with the corrector, its lower-order start and (unless turned off) lower_order_final.
 * `torchFinal` is the last step as torch computes it; `x` takes the data prediction instead where that
 * is not finite (this port's choice).
 */
function uniPcReference(sigmas: number[], timesteps: number[], v: Variant = {}): { x: number[]; lastPrediction: number[]; torchFinal: number[] } {
  let x = Array.from(new TorchGenerator(5).randn(SHAPE));
  const ms: number[][] = [];
  let last: number[] = [], lastOrder = 1, m: number[] = [];
  const n = timesteps.length;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const e = eps(x, timesteps[i]);
    m = x.map((v, k) => (v - sigma * alphaOf(sigma) * e[k]) / alphaOf(sigma));
    if (i > 0) x = update(sigmas, i - 1, last, ms, lastOrder, m, v);
    ms.push(m);
    const order = Math.min(2, v.lowerOrderFinal === false ? 2 : n - i, ms.length);
    last = x;
    x = update(sigmas, i, x, ms, order, null, v);
    lastOrder = order;
  }
  return { x: x.every(Number.isFinite) ? x : m, lastPrediction: m, torchFinal: x };
}

// ---- the tests -------------------------------------------------------------------------------------

test("UniPC final_sigmas_type: \"zero\" by default (current diffusers), \"sigma_min\" as diffusers 0.27.2", () => {
  const zero = createScheduler("UniPC", SDXL_CONFIG), min = createScheduler("UniPC", SDXL_CONFIG, { final_sigmas_type: "sigma_min" });
  assert.equal((zero.config as unknown as Record<string, unknown>).final_sigmas_type, "zero");
  zero.setTimesteps(4);
  min.setTimesteps(4);
  assert.equal(zero.sigmas!.length, 5);
  assert.equal(zero.sigmas![4], 0);
  assert.equal(min.sigmas![4], SIGMA_MIN);
  assert.deepEqual(Array.from(zero.sigmas!.subarray(0, 4)), Array.from(min.sigmas!.subarray(0, 4)), "only the final sigma differs");
  // the Karras path appends the schedule's own last sigma for "sigma_min"
  const karras = createScheduler("UniPC Karras", SDXL_CONFIG), karrasMin = createScheduler("UniPC Karras", SDXL_CONFIG, { final_sigmas_type: "sigma_min" });
  karras.setTimesteps(5);
  karrasMin.setTimesteps(5);
  assert.equal(karras.sigmas![5], 0);
  assert.equal(karrasMin.sigmas![5], karrasMin.sigmas![4]);
  assert.throws(() => createScheduler("UniPC", SDXL_CONFIG, { final_sigmas_type: "max" }), /final_sigmas_type "max" is not supported/);
});

test("UniPC onto a zero sigma: 1 step gives diffusers' predictor with h = inf, exactly the data prediction", () => {
  const s = createScheduler("UniPC", SDXL_CONFIG);
  s.setTimesteps(1);
  const t = s.timesteps[0], sigma = s.sigmas![0];
  assert.equal(s.sigmas![1], 0);
  const x = new TorchGenerator(5).randn(SHAPE);
  const out = s.step(toyModel(x, t), t, x);
  // torch, term by term: alpha_t = 1, sigma_t = 0, lambda_t = log 1 - log 0 = inf, h = inf, hh = -inf
  const f = Math.fround, model = toyModel(x, t);
  const alphaS = f(1 / f(Math.sqrt(f(f(sigma * sigma) + 1)))), sigmaS = f(sigma * alphaS);
  const m0 = x.map((v, k) => f(f(v - f(sigmaS * model[k])) / alphaS));
  const lambdaT = Math.log(1) - Math.log(0), h = lambdaT - lambdaOf(sigma), hPhi1 = Math.expm1(-h);
  assert.equal(h, Infinity);
  assert.equal(hPhi1, -1);
  const torch = m0.map((m, k) => ((0 / sigmaS) * x[k] - 1 * hPhi1 * m) - 1 * hPhi1 * 0);
  assert.ok(out.every(Number.isFinite));
  assert.deepEqual(Array.from(out), Array.from(torch));
  // with sigma_min the step ends at a nonzero sigma: another result
  const min = createScheduler("UniPC", SDXL_CONFIG, { final_sigmas_type: "sigma_min" });
  min.setTimesteps(1);
  assert.ok(relErr(min.step(toyModel(x, t), t, x), out) > 1e-3);
});

test("UniPC onto a zero sigma: 4 steps (corrector, order 2) match the float64 B(h) formulas; the image is the last data prediction", () => {
  const s = createScheduler("UniPC", SDXL_CONFIG);
  const out = run(s, 4);
  const ref = uniPcReference(Array.from(s.sigmas!), Array.from(s.timesteps));
  assert.ok(ref.x.every(Number.isFinite));
  assert.deepEqual(ref.x, ref.lastPrediction, "in float64 too, the last step returns its data prediction");
  assert.ok(relErr(out, ref.x) <= 1e-5, `relative error ${relErr(out, ref.x).toExponential(2)}`);
  // the reference does see the final sigma: with sigma_min's schedule it lands elsewhere
  const min = createScheduler("UniPC", SDXL_CONFIG, { final_sigmas_type: "sigma_min" });
  const outMin = run(min, 4);
  const refMin = uniPcReference(Array.from(min.sigmas!), Array.from(min.timesteps));
  assert.ok(relErr(outMin, refMin.x) <= 1e-5);
  assert.ok(relErr(outMin, out) > 1e-3);
});

test("UniPC onto a zero sigma where torch's formula is not finite (bh1, lower_order_final false): the data prediction", () => {
  const variants: [object, Variant][] = [[{ solver_type: "bh1" }, { bh1: true }], [{ lower_order_final: false }, { lowerOrderFinal: false }], [{ solver_type: "bh1", lower_order_final: false }, { bh1: true, lowerOrderFinal: false }]];
  for (const [overrides, v] of variants) {
    const s = createScheduler("UniPC", SDXL_CONFIG, overrides);
    const out = run(s, 4);
    const ref = uniPcReference(Array.from(s.sigmas!), Array.from(s.timesteps), v);
    // torch: bh1 multiplies B(h) = -h = -inf by a zero residual (NaN); order 2 divides by rk = 0 (inf)
    assert.ok(!ref.torchFinal.every(Number.isFinite), `${JSON.stringify(overrides)}: torch's last step is not finite`);
    assert.ok(out.every(Number.isFinite), JSON.stringify(overrides));
    assert.ok(relErr(out, ref.lastPrediction) <= 1e-5, `${JSON.stringify(overrides)}: ${relErr(out, ref.lastPrediction).toExponential(2)}`);
  }
  // a third order runs too (the reference stops at order 2)
  assert.ok(run(createScheduler("UniPC", SDXL_CONFIG, { solver_type: "bh1", solver_order: 3, lower_order_final: false }), 5).every(Number.isFinite));
});

test("Euler and DPM-Solver: final_sigmas_type \"zero\" by default, as current diffusers; \"sigma_min\" the smallest training sigma", () => {
  for (const name of ["Euler", "DPM++ 2M", "DPMSolverSinglestepScheduler"]) {
    const zero = createScheduler(name, SDXL_CONFIG), min = createScheduler(name, SDXL_CONFIG, { final_sigmas_type: "sigma_min" });
    zero.setTimesteps(6);
    min.setTimesteps(6);
    assert.equal((zero.config as unknown as Record<string, unknown>).final_sigmas_type, "zero", name);
    assert.equal(zero.sigmas![zero.sigmas!.length - 1], 0, name);
    assert.equal(min.sigmas![min.sigmas!.length - 1], SIGMA_MIN, name);
  }
  assert.throws(() => createScheduler("Euler", SDXL_CONFIG, { final_sigmas_type: "one" }), /final_sigmas_type "one" is not supported/);
});
