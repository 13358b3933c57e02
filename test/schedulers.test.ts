import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TensorStore, readBytes, readFloat32, readInt64 } from "../src/safetensors/index.js";
import { TorchGenerator } from "../src/random/torch-generator.js";
import {
  SCHEDULER_NAMES, createScheduler, img2imgTimesteps, loadSchedulerConfig, parsePythonJson, type Scheduler,
} from "../src/schedulers/index.js";
import { NO_FIXTURES, HAVE_FIXTURES, diff, fixture } from "./helpers/fixtures.js";

const TOL = 1e-5;

interface Case { class: string; config: Record<string, unknown>; init_noise_sigma: number; steps: number }

function float64(store: TensorStore, name: string): Float64Array {
  const e = store.get(name);
  if (e.dtype === "F64") return new Float64Array(readBytes(e).buffer, 0, e.byteLength / 8);
  if (e.dtype === "I64") return Float64Array.from(readInt64(e), Number);
  return Float64Array.from(readFloat32(e));
}

/** Asserts relative L2 and max|d|/max|ref| <= TOL; returns the larger of the two. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): number {
  const d = diff(actual, expected);
  const maxRel = d.maxRef > 0 ? d.maxAbs / d.maxRef : d.maxAbs;
  assert.ok(d.relL2 <= TOL && maxRel <= TOL, `${what}: relL2 ${d.relL2.toExponential(2)}, max|d|/max|ref| ${maxRel.toExponential(2)} (<= ${TOL})`);
  return Math.max(d.relL2, maxRel);
}

/** The fixture protocol: eps = 0.5 * scale_model_input(x, t) * cos(t / 1000) + 0.1, in float32. */
function fakeModel(s: Scheduler, x: Float32Array, t: number): Float32Array {
  const c = Math.fround(Math.cos(Math.fround(t / 1000)));
  return s.scaleModelInput(x, t).map((v) => Math.fround(Math.fround(0.5 * v) * c) + Math.fround(0.1));
}

const CASES: Record<string, Case> = HAVE_FIXTURES
  ? parsePythonJson(readFileSync(fixture("schedulers", "cases.json"), "utf8")) as Record<string, Case>
  : {};

/**
 * The fixtures come from diffusers 0.27.2, whose UniPC always ended on the smallest sigma: current
 * diffusers' final_sigmas_type "sigma_min", which a config without the field now has to ask for.
 */
function fixtureOverrides(c: Case): object {
  return c.class === "UniPCMultistepScheduler" && !("final_sigmas_type" in c.config) ? { final_sigmas_type: "sigma_min" } : {};
}

for (const [name, c] of Object.entries(CASES)) {
  test(`scheduler parity: ${name} (${c.class}, ${c.steps} steps)`, { skip: NO_FIXTURES }, (t) => {
    const store = TensorStore.open(fixture("schedulers", `${name}.safetensors`));
    const s = createScheduler(c.class, c.config, fixtureOverrides(c));
    s.setTimesteps(c.steps);
    assert.deepEqual(Array.from(s.timesteps), Array.from(float64(store, "timesteps")), "timesteps");
    if (store.has("sigmas")) {
      assert.ok(s.sigmas, "scheduler has sigmas");
      assertClose(s.sigmas, float64(store, "sigmas"), "sigmas");
    }
    assert.ok(Math.abs(s.initNoiseSigma - c.init_noise_sigma) <= 1e-6 * c.init_noise_sigma, `init_noise_sigma ${s.initNoiseSigma} vs ${c.init_noise_sigma}`);

    const traj = store.float32("trajectory"), mo = store.float32("model_output");
    const n = 4 * 8 * 8;
    const x0 = new TorchGenerator(5).randn([1, 4, 8, 8]).map((v) => v * Math.fround(c.init_noise_sigma));
    assertClose(x0, traj.subarray(0, n), "x0");
    let x: Float32Array = traj.slice(0, n);
    const gen = new TorchGenerator(6);
    let worst = 0;
    s.timesteps.forEach((ts, i) => {
      const eps = fakeModel(s, x, ts);
      assertClose(eps, mo.subarray(i * n, (i + 1) * n), `model_output ${i}`);
      x = s.step(eps, ts, x, gen, [1, 4, 8, 8]);
      worst = Math.max(worst, assertClose(x, traj.subarray((i + 1) * n, (i + 2) * n), `trajectory step ${i} (t=${ts})`));
    });
    t.diagnostic(`worst trajectory error ${worst.toExponential(2)}`);
  });
}

/** The scheduler_config.json that SSD-1B and SDXL ship (EulerDiscreteScheduler). */
const SDXL_CONFIG = {
  _class_name: "EulerDiscreteScheduler", beta_end: 0.012, beta_schedule: "scaled_linear", beta_start: 0.00085,
  clip_sample: false, interpolation_type: "linear", num_train_timesteps: 1000, prediction_type: "epsilon",
  sample_max_value: 1.0, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: "leading",
  trained_betas: null, use_karras_sigmas: false,
};

test("createScheduler: an unknown name fails, listing the known names", () => {
  assert.throws(() => createScheduler("Euler b", SDXL_CONFIG), (e: Error) =>
    e.message.startsWith('unknown scheduler "Euler b"; known: ') &&
    ["EulerDiscreteScheduler", "DPM++ 2M SDE Karras", "Euler a", "UniPC", "LCM"].every((n) => e.message.includes(`"${n}"`)));
  assert.throws(() => createScheduler("Euler", SDXL_CONFIG, { use_karas_sigmas: true }), /no config field "use_karas_sigmas"/);
});

test("createScheduler: AUTOMATIC1111 names map to diffusers classes and options", () => {
  const expected: [string, string, Record<string, unknown>][] = [
    ["Euler", "EulerDiscreteScheduler", { use_karras_sigmas: false }],
    ["Euler a", "EulerAncestralDiscreteScheduler", {}],
    ["DPM++ 2M", "DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: false }],
    ["DPM++ 2M Karras", "DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
    ["DPM++ 2M SDE Karras", "DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++", solver_order: 2, use_karras_sigmas: true }],
    ["DDIM", "DDIMScheduler", { set_alpha_to_one: false, clip_sample: false }],
    ["UniPC", "UniPCMultistepScheduler", { solver_type: "bh2", predict_x0: true }],
    ["LCM", "LCMScheduler", { original_inference_steps: 50 }],
    ["Heun", "HeunDiscreteScheduler", {}],
    ["DDPM", "DDPMScheduler", { variance_type: "fixed_small" }],
    ["dpm++ 2m karras", "DPMSolverMultistepScheduler", { use_karras_sigmas: true }],
    ["HeunDiscreteScheduler", "HeunDiscreteScheduler", {}],
  ];
  for (const [name, cls, options] of expected) {
    const s = createScheduler(name, SDXL_CONFIG);
    assert.equal(s.className, cls, name);
    // the model's schedule carries over to every class
    assert.equal(s.config.beta_schedule, "scaled_linear", name);
    assert.equal(s.config.steps_offset, 1, name);
    assert.equal(s.config.timestep_spacing, "leading", name);
    const config = s.config as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(options)) assert.equal(config[k], v, `${name}: ${k}`);
  }
  // explicit overrides win over the alias options
  const s = createScheduler("DPM++ 2M Karras", SDXL_CONFIG, { use_karras_sigmas: false, timestep_spacing: "trailing" });
  assert.equal((s.config as unknown as Record<string, unknown>).use_karras_sigmas, false);
  assert.equal(s.config.timestep_spacing, "trailing");
});

test("loadSchedulerConfig reads Python-style JSON (-Infinity) and honours _use_default_values", () => {
  const dir = mkdtempSync(join(tmpdir(), "sched-"));
  try {
    mkdirSync(join(dir, "scheduler"));
    writeFileSync(join(dir, "scheduler", "scheduler_config.json"), JSON.stringify({
      _class_name: "DPMSolverMultistepScheduler", beta_schedule: "scaled_linear", timestep_spacing: "trailing",
      final_sigmas_type: "sigma_min", _use_default_values: ["final_sigmas_type"], name: "a \"-Infinity\" string",
    }, null, 2).replace('"final_sigmas_type"', '"lambda_min_clipped": -Infinity, "final_sigmas_type"'));
    const cfg = loadSchedulerConfig(dir);
    assert.equal(cfg.lambda_min_clipped, -Infinity);
    assert.equal(cfg.name, 'a "-Infinity" string');
    const s = createScheduler(String(cfg._class_name), cfg);
    const config = s.config as unknown as Record<string, unknown>;
    assert.equal(config.lambda_min_clipped, -Infinity);
    assert.equal(config.timestep_spacing, "trailing");
    assert.equal(config.final_sigmas_type, "zero"); // listed as a default of the writer: not taken
    assert.throws(() => loadSchedulerConfig(join(dir, "nope")), /cannot read scheduler config/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("loadSchedulerConfig: the tiny-ssd pipeline folder", { skip: NO_FIXTURES }, () => {
  const cfg = loadSchedulerConfig(fixture("pipeline", "tiny-ssd"));
  const s = createScheduler(String(cfg._class_name), cfg);
  s.setTimesteps(4);
  assert.deepEqual(Array.from(s.timesteps), [751, 501, 251, 1]);
});

test("every scheduler name runs a 10-step loop on the SDXL config", () => {
  const shape = [1, 4, 8, 8];
  for (const name of SCHEDULER_NAMES) {
    const s = createScheduler(name, SDXL_CONFIG);
    s.setTimesteps(10);
    // second-order schedulers evaluate twice per step but the first; PLMS repeats its second timestep
    assert.equal(s.timesteps.length, s.order === 2 ? 19 : s.className === "PNDMScheduler" ? 11 : 10, name);
    // (DPM2 a's midpoint is sigma_next itself: its timestep is the next one's, unrounded where Karras rounds that)
    for (let i = 1; i < s.timesteps.length; i++) assert.ok(s.timesteps[i] <= s.timesteps[i - 1] + 0.5, `${name}: timesteps descend`);
    const gen = new TorchGenerator(1);
    let x: Float32Array = gen.randn(shape).map((v) => v * s.initNoiseSigma);
    for (const t of s.timesteps) x = s.step(fakeModel(s, x, t), t, x, gen, shape);
    assert.ok(x.every(Number.isFinite), `${name}: finite result`);
  }
});

test("stochastic steps need a generator", () => {
  for (const name of ["Euler a", "DPM++ 2M SDE Karras", "DDPM", "LCM"]) {
    const s = createScheduler(name, SDXL_CONFIG);
    s.setTimesteps(4);
    const x = new Float32Array(64);
    assert.throws(() => s.step(x, s.timesteps[0], x), /step draws noise: pass a generator/, name);
  }
});

test("img2img: strength keeps the tail of the schedule and starts there", () => {
  const noise = new TorchGenerator(3).randn([64]), clean = new TorchGenerator(4).randn([64]);
  // Euler, 5 steps at strength 0.6: three steps remain, from index 2 (the pipeline img2img case)
  const euler = createScheduler("Euler", SDXL_CONFIG);
  euler.setTimesteps(5);
  const r = img2imgTimesteps(euler, 5, 0.6);
  assert.deepEqual([r.beginIndex, r.numInferenceSteps, Array.from(r.timesteps)], [2, 3, [401, 201, 1]]);
  const sigma = euler.sigmas![2];
  assert.deepEqual(euler.addNoise(clean, noise, r.timesteps[0]), clean.map((v, k) => v + Math.fround(noise[k] * sigma)));
  const scaled = euler.scaleModelInput(clean, r.timesteps[0]);
  assert.deepEqual(scaled, clean.map((v) => v / Math.fround(Math.sqrt(Math.fround(Math.fround(sigma * sigma) + 1)))));

  // Heun duplicates timesteps: the begin index (t_start * order) picks the right copy
  const heun = createScheduler("Heun", SDXL_CONFIG);
  heun.setTimesteps(5);
  const h = img2imgTimesteps(heun, 5, 0.6);
  assert.deepEqual([h.beginIndex, h.timesteps.length, h.numInferenceSteps], [4, 5, 3]);
  assert.equal(h.timesteps[0], heun.timesteps[4]);
  assert.equal(heun.timesteps[3], heun.timesteps[4]);
  let x: Float32Array = heun.addNoise(clean, noise, h.timesteps[0]);
  for (const t of h.timesteps) x = heun.step(fakeModel(heun, x, t), t, x);
  assert.ok(x.every(Number.isFinite));

  // DPM-Solver noises with alpha_t, sigma_t; strength 1 keeps everything
  const dpm = createScheduler("DPM++ 2M Karras", SDXL_CONFIG);
  dpm.setTimesteps(8);
  const d = img2imgTimesteps(dpm, 8, 1);
  assert.deepEqual([d.beginIndex, d.timesteps.length], [0, 8]);

  // denoising_start (SDXL refiner style): the timesteps below the cutoff
  const e2 = createScheduler("Euler", SDXL_CONFIG);
  e2.setTimesteps(10);
  const ds = img2imgTimesteps(e2, 10, 0.3, 0.5);
  assert.deepEqual(Array.from(ds.timesteps), Array.from(e2.timesteps).filter((t) => t < 500));
  assert.equal(ds.beginIndex, 10 - ds.timesteps.length);
});
