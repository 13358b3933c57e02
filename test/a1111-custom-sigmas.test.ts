/**
 * A1111's Polyexponential, KL Optimal and Align Your Steps schedule types with the Euler sampler:
 * diffusers' EulerDiscreteScheduler.set_timesteps(sigmas=...) with the sigma lists A1111 computes
 * (modules/sd_schedulers.py), sigma_min and sigma_max being the training sigma table's ends. The
 * sigmas are re-derived here from the formulas, written another way; the timesteps are diffusers'
 * _sigma_to_t of the float32 sigmas run in numpy 2.4 (float32 log, float64 interpolation).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TorchGenerator } from "../src/random/torch-generator.js";
import { createScheduler, img2imgTimesteps, resolveA1111, type Scheduler } from "../src/schedulers/index.js";
import { samplerLabel } from "../src/image/infotext.js";

/** SSD-1B's scheduler_config.json ("leading" spacing: the schedule types replace it with "linspace"). */
const SDXL_CONFIG = {
  _class_name: "EulerDiscreteScheduler", beta_end: 0.012, beta_schedule: "scaled_linear", beta_start: 0.00085,
  clip_sample: false, interpolation_type: "linear", num_train_timesteps: 1000, prediction_type: "epsilon",
  sample_max_value: 1.0, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: "leading",
  trained_betas: null, use_karras_sigmas: false,
};
/** diffusers' training sigma table ends for these betas (float32; the dpmpp-2m-karras fixture's first and last sigma). */
const SIGMA_MIN = 0.029167532920837402, SIGMA_MAX = 14.614645004272461;
const AYS_SDXL = [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029];
const f32 = Math.fround;

// ---- A1111's formulas, rearranged ------------------------------------------------------------------

/** sigma_max^r * sigma_min^(1 - r) for r from 1 to 0 (rho 1), then 0. */
const polyexponential = (n: number) => [...Array.from({ length: n }, (_, i) => {
  const r = n === 1 ? 1 : (n - 1 - i) / (n - 1);
  return SIGMA_MAX ** r * SIGMA_MIN ** (1 - r);
}), 0];

/** tan(atan(sigma_max) + (i / n) (atan(sigma_min) - atan(sigma_max))), i = 0..n. */
const klOptimal = (n: number) => Array.from({ length: n + 1 }, (_, i) => Math.tan(Math.atan(SIGMA_MAX) + (i / n) * (Math.atan(SIGMA_MIN) - Math.atan(SIGMA_MAX))));

/** The list itself for 11 steps; else entry k at position 10k / (n - 1) of the list, linear in log sigma; then 0. */
function alignYourSteps(n: number): number[] {
  if (n === 11) return [...AYS_SDXL, 0];
  return [...Array.from({ length: n }, (_, k) => {
    const u = n === 1 ? 10 : (10 * k) / (n - 1), j = Math.min(Math.floor(u), 9), w = u - j;
    return Math.exp((1 - w) * Math.log(AYS_SDXL[j]) + w * Math.log(AYS_SDXL[j + 1]));
  }), 0];
}

/** Equal as float32 to within one unit in the last place (the two float64 forms can round apart). */
function assertSigmas(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const e = f32(expected[i]);
    assert.ok(Math.abs(actual[i] - e) <= Math.abs(e) * 2 ** -23, `${what}[${i}]: ${actual[i]} vs ${e}`);
  }
}

const schedule = (name: string, n: number): Scheduler => {
  const s = createScheduler(name, SDXL_CONFIG);
  s.setTimesteps(n);
  return s;
};

// numpy: np.array([_sigma_to_t(s, np.log(sigma_table)) for s in np.float32(sigmas)[:-1]]).astype(np.float32).
// The 20-step lists hold timesteps where a float64 log of the sigma would round to another float32.
const NUMPY_TIMESTEPS: Record<string, number[]> = {
  "Euler Polyexponential 20": [999, 942.8982543945312, 881.8671875, 814.964111328125, 741.14599609375, 659.4801025390625, 569.664306640625, 472.9736633300781, 373.3271484375, 277.3846435546875, 192.7007293701172, 124.8579330444336, 75.65360260009766, 43.1976318359375, 23.468019485473633, 12.186050415039062, 5.988286972045898, 2.700697183609009, 0.9397948980331421, 0],
  "Euler Align Your Steps 20": [999, 922.1609497070312, 839.2859497070312, 780.694091796875, 716.1864013671875, 642.4012451171875, 565.1500854492188, 489.8381042480469, 414.88397216796875, 344.3084411621094, 276.9300842285156, 215.4477996826172, 166.0079803466797, 126.53858947753906, 88.5053939819336, 58.203948974609375, 30.62744903564453, 14.481715202331543, 3.1074163913726807, 0],
  "Euler Polyexponential 6": [999, 756.5120849609375, 413.1634216308594, 102.97428131103516, 10.631168365478516, 0],
  "Euler KL Optimal 4": [999, 581.977783203125, 342.17315673828125, 133.87408447265625],
  "Euler Align Your Steps 7": [999, 770.44873046875, 540.4461059570312, 309.9755859375, 138.91766357421875, 34.494632720947266, 0],
  "Euler Align Your Steps 11": [999, 844.8876342773438, 730.179931640625, 586.980712890625, 443.3353271484375, 309.9755859375, 192.97047424316406, 116.06510925292969, 53.3032112121582, 13.390400886535645, 0],
};

// ---- the tests -------------------------------------------------------------------------------------

test("A1111 custom schedules: the sigma lists of A1111's formulas, as float32; n steps each", () => {
  for (const n of [1, 2, 6, 25]) {
    assertSigmas(schedule("Euler Polyexponential", n).sigmas!, polyexponential(n), `polyexponential ${n}`);
    assertSigmas(schedule("Euler KL Optimal", n).sigmas!, klOptimal(n), `kl_optimal ${n}`);
    assertSigmas(schedule("Euler Align Your Steps", n).sigmas!, alignYourSteps(n), `align_your_steps ${n}`);
    for (const name of ["Euler Polyexponential", "Euler KL Optimal", "Euler Align Your Steps"]) assert.equal(schedule(name, n).timesteps.length, n, `${name} ${n}`);
  }
  // the ends: sigma_max first; KL Optimal stops at sigma_min (no 0), the others append a 0
  assert.equal(schedule("Euler Polyexponential", 6).sigmas![0], SIGMA_MAX);
  assert.equal(schedule("Euler Polyexponential", 6).sigmas![5], SIGMA_MIN);
  const kl = schedule("Euler KL Optimal", 4).sigmas!;
  assert.deepEqual([kl[0], kl[4], kl.length], [SIGMA_MAX, SIGMA_MIN, 5]);
  assert.deepEqual(Array.from(schedule("Euler Align Your Steps", 11).sigmas!), [...AYS_SDXL.map(f32), 0]);
  // 10 steps interpolate the 11 values into 10, from 14.615 to 0.029
  const ays10 = schedule("Euler Align Your Steps", 10).sigmas!;
  assert.deepEqual([ays10[0], ays10[9], ays10[10]], [f32(14.615), f32(0.029), 0]);
});

test("A1111 custom schedules: timesteps are diffusers' unrounded _sigma_to_t of the float32 sigmas; initial noise sigma_max", () => {
  for (const [key, expected] of Object.entries(NUMPY_TIMESTEPS)) {
    const [name, n] = [key.slice(0, key.lastIndexOf(" ")), Number(key.slice(key.lastIndexOf(" ") + 1))];
    const s = schedule(name, n);
    assert.deepEqual(Array.from(s.timesteps), expected, key);
    assert.equal(s.initNoiseSigma, s.sigmas![0], `${key}: init_noise_sigma is the first sigma ("linspace")`);
  }
});

/** The fixtures' toy model on the scaled input: eps = 0.5 * x / sqrt(sigma^2 + 1) * cos(t / 1000) + 0.1. */
function toyModel(s: Scheduler, x: Float32Array, t: number): Float32Array {
  const c = f32(Math.cos(f32(t / 1000)));
  return s.scaleModelInput(x, t).map((v) => f32(f32(0.5 * v) * c) + f32(0.1));
}

/** Euler (Karras et al. Algorithm 2, no churn) in float64: x += (x - x0) / sigma * (sigma_next - sigma), x0 = x - sigma * eps. */
function eulerReference(sigmas: ArrayLike<number>, timesteps: ArrayLike<number>, x: number[], from = 0): number[] {
  for (let i = from; i < timesteps.length; i++) {
    const sigma = sigmas[i], c = Math.cos(timesteps[i] / 1000);
    x = x.map((v) => {
      const eps = 0.5 * (v / Math.sqrt(sigma * sigma + 1)) * c + 0.1;
      return v + ((v - (v - sigma * eps)) / sigma) * (sigmas[i + 1] - sigma);
    });
  }
  return x;
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(b[i])); }
  return d / m;
}

test("A1111 custom schedules: Euler steps along the given sigmas, as the float64 formula", () => {
  for (const [name, n] of [["Euler Polyexponential", 6], ["Euler KL Optimal", 4], ["Euler Align Your Steps", 7]] as const) {
    const s = schedule(name, n);
    const start = new TorchGenerator(5).randn([256]).map((v) => v * f32(s.initNoiseSigma));
    let x: Float32Array = start;
    for (const t of s.timesteps) x = s.step(toyModel(s, x, t), t, x);
    const ref = eulerReference(s.sigmas!, s.timesteps, Array.from(start));
    assert.ok(relErr(x, ref) <= 1e-5, `${name}: ${relErr(x, ref).toExponential(2)}`);
    assert.ok(relErr(x, start) > 0.5, `${name}: the steps moved the sample`);
  }
});

test("A1111 custom schedules: img2img starts at sigmas[begin], timesteps and begin index as diffusers' custom-sigma pipeline", () => {
  const clean = new TorchGenerator(4).randn([256]), noise = new TorchGenerator(3).randn([256]);
  for (const name of ["Euler Polyexponential", "Euler KL Optimal", "Euler Align Your Steps"]) {
    const s = schedule(name, 10);
    const all = Array.from(s.timesteps);
    const r = img2imgTimesteps(s, 10, 0.5);
    assert.equal(r.beginIndex, 5, name);
    assert.deepEqual(Array.from(r.timesteps), all.slice(5), name);
    let x = s.addNoise(clean, noise, r.timesteps[0]);
    assert.deepEqual(Array.from(x), Array.from(clean, (v, k) => f32(v + f32(noise[k] * s.sigmas![5]))), `${name}: noised to sigmas[5]`);
    const start = Array.from(x);
    for (const t of r.timesteps) x = s.step(toyModel(s, x, t), t, x);
    const ref = eulerReference(s.sigmas!, s.timesteps, start, 5);
    assert.ok(relErr(x, ref) <= 1e-5, `${name}: ${relErr(x, ref).toExponential(2)}`);
  }
});

test("A1111 custom schedules: the names resolve for Euler only, alone or in the sampler name; the infotext names them", () => {
  const cases: [string, string | undefined, string, string][] = [
    ["Euler", "Polyexponential", "polyexponential", "Euler Polyexponential"],
    ["Euler", "polyexponential", "polyexponential", "Euler Polyexponential"],
    ["k_euler", "KL Optimal", "kl_optimal", "Euler KL Optimal"],
    ["Euler", "kl_optimal", "kl_optimal", "Euler KL Optimal"],
    ["Euler", "Align Your Steps", "align_your_steps", "Euler Align Your Steps"],
    ["Euler Align Your Steps", undefined, "align_your_steps", "Euler Align Your Steps"],
    ["euler  align_your_steps", "Automatic", "align_your_steps", "Euler Align Your Steps"],
  ];
  for (const [sampler, scheduleType, custom, name] of cases) {
    const r = resolveA1111(sampler, scheduleType);
    assert.deepEqual([r.className, r.name, r.overrides.custom_sigmas], ["EulerDiscreteScheduler", name, custom], `${sampler} / ${scheduleType}`);
    const config = createScheduler(r.name, SDXL_CONFIG).config as unknown as Record<string, unknown>;
    assert.deepEqual([config.custom_sigmas, config.timestep_spacing, config.use_karras_sigmas], [custom, "linspace", false], name);
    assert.equal(samplerLabel("EulerDiscreteScheduler", config), name, "the infotext's sampler");
  }
  // the model config's own schedule again with another type; other samplers are refused, naming what they take
  assert.equal((createScheduler("Euler Karras", SDXL_CONFIG).config as unknown as Record<string, unknown>).custom_sigmas, null);
  for (const sampler of ["Euler a", "DPM++ 2M", "Heun", "UniPC"]) {
    assert.throws(() => resolveA1111(sampler, "Align Your Steps"), (e: Error) => e.message.includes("only Euler (EulerDiscreteScheduler) takes") && e.message.includes(`with ${sampler} use "Automatic"`), sampler);
  }
  assert.throws(() => createScheduler("DPM++ 2M KL Optimal", SDXL_CONFIG), /scheduler "DPM\+\+ 2M KL Optimal": "KL Optimal" has no diffusers option/);
  assert.throws(() => createScheduler("Euler", SDXL_CONFIG, { custom_sigmas: "sometimes" }), /custom_sigmas "sometimes" is not supported/);
});
