/** Optimizers, schedules, clipping, EMA, accumulation and the training RNG against hand-computed values. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { SGD } from "../src/training/optim/sgd.js";
import { AdamW } from "../src/training/optim/adamw.js";
import { EMA } from "../src/training/optim/ema.js";
import { GradientAccumulator } from "../src/training/optim/accumulate.js";
import { clipGradNorm } from "../src/training/optim/clip-grad.js";
import { learningRate, lrFactor } from "../src/training/optim/schedule.js";
import { TrainingRng } from "../src/training/rng.js";

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
const param = (...v: number[]) => ({ key: "w", value: Float32Array.from(v) });

test("SGD: plain, weight decay, momentum (first step copies the gradient), dampening, Nesterov", () => {
  let p = param(1, -2);
  new SGD([p], { lr: 0.1 }).step({ w: Float32Array.of(0.5, 1) });
  close(p.value[0], 0.95); close(p.value[1], -2.1);

  p = param(1);
  new SGD([p], { lr: 0.1, weightDecay: 0.5 }).step({ w: Float32Array.of(0.5) }); // d = 0.5 + 0.5·1 = 1
  close(p.value[0], 0.9);

  // momentum 0.9, dampening 0.1: buf1 = g1 = 1 → w = 1 - 0.1·1 = 0.9; buf2 = 0.9·1 + 0.9·2 = 2.7 → w = 0.9 - 0.27 = 0.63
  p = param(1);
  const sgd = new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1 });
  sgd.step({ w: Float32Array.of(1) });
  close(p.value[0], 0.9);
  sgd.step({ w: Float32Array.of(2) });
  close(p.value[0], 0.63);

  // Nesterov: buf1 = 1, d = 1 + 0.9·1 = 1.9 → w = 1 - 0.19
  p = param(1);
  new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true }).step({ w: Float32Array.of(1) });
  close(p.value[0], 0.81);
  assert.throws(() => new SGD([p], { momentum: 0, nesterov: true }), /Nesterov/);
});

test("SGD and AdamW state round-trips: a restored optimizer continues identically", () => {
  for (const make of [(q: ReturnType<typeof param>) => new SGD([q], { lr: 0.1, momentum: 0.9 }), (q: ReturnType<typeof param>) => new AdamW([q], { lr: 0.1 })]) {
    const a = param(1, 2), b = param(1, 2);
    const oa = make(a), ob = make(b);
    oa.step({ w: Float32Array.of(0.3, -0.2) });
    ob.step({ w: Float32Array.of(0.3, -0.2) });
    const saved = oa.state();
    const c = { key: "w", value: a.value.slice() };
    const oc = make(c);
    oc.loadState({ kind: saved.kind, steps: saved.steps, buffers: Object.fromEntries(Object.entries(saved.buffers).map(([k, v]) => [k, v.slice()])) });
    ob.step({ w: Float32Array.of(-0.1, 0.4) });
    oc.step({ w: Float32Array.of(-0.1, 0.4) });
    assert.deepEqual([...c.value], [...b.value]);
    assert.equal(oc.steps, 2);
  }
});

test("AdamW: first step moves each weight by lr·sign(g) after decay (hand-computed)", () => {
  const p = param(1, -1);
  new AdamW([p], { lr: 0.01, weightDecay: 0.1 }).step({ w: Float32Array.of(0.2, -3) });
  // w·(1 - lr·wd) then m̂/(sqrt(v̂)+eps) = sign(g) on step 1
  close(p.value[0], 1 * (1 - 0.001) - 0.01, 1e-6);
  close(p.value[1], -1 * (1 - 0.001) + 0.01, 1e-6);
});

test("LR schedules follow diffusers' get_scheduler", () => {
  const o = { warmupSteps: 10, totalSteps: 110 };
  close(lrFactor(0, { name: "constant", ...o }), 1);
  close(lrFactor(0, { name: "constant_with_warmup", ...o }), 0);
  close(lrFactor(5, { name: "constant_with_warmup", ...o }), 0.5);
  close(lrFactor(50, { name: "constant_with_warmup", ...o }), 1);
  close(lrFactor(5, { name: "linear", ...o }), 0.5);
  close(lrFactor(10, { name: "linear", ...o }), 1);
  close(lrFactor(60, { name: "linear", ...o }), 0.5);
  close(lrFactor(110, { name: "linear", ...o }), 0);
  close(lrFactor(200, { name: "linear", ...o }), 0);
  close(lrFactor(10, { name: "cosine", ...o }), 1);
  close(lrFactor(60, { name: "cosine", ...o }), 0.5);
  close(lrFactor(35, { name: "cosine", ...o }), 0.5 * (1 + Math.cos(Math.PI * 0.25)));
  close(lrFactor(110, { name: "cosine", ...o }), 0);
  close(learningRate(1e-4, 5, { name: "linear", ...o }), 5e-5);
});

test("clip_grad_norm_: total 2-norm over tensors, scale min(max/(norm+1e-6), 1)", () => {
  const a = Float32Array.of(3, 0), b = Float32Array.of(0, 4); // total norm 5
  close(clipGradNorm([a, b], 1), 5);
  close(a[0], 3 / (5 + 1e-6), 1e-6);
  close(b[1], 4 / (5 + 1e-6), 1e-6);
  const c = Float32Array.of(0.3, 0.4);
  close(clipGradNorm([c], 1), 0.5);
  assert.deepEqual([...c], [Math.fround(0.3), Math.fround(0.4)]);
});

test("EMA: decay (1 + s)/(10 + s) capped, zero (copy) on the first step", () => {
  const p = param(0);
  const ema = new EMA([p], { decay: 0.5 });
  p.value[0] = 1;
  ema.step(); // step 1: s = 0 → decay 0 → copy
  close(ema.shadow.get("w")![0], 1);
  close(ema.decayAt(2), 2 / 11);
  close(ema.decayAt(100), 0.5);
  p.value[0] = 3;
  ema.step(); // decay 2/11: 1 - (9/11)·(1 - 3)
  close(ema.shadow.get("w")![0], 1 + (9 / 11) * 2, 1e-6);
});

test("gradient accumulation: the mean of micro-batch gradients, ready on the last micro-step", () => {
  const acc = new GradientAccumulator(2);
  assert.equal(acc.add({ w: Float32Array.of(1, 2) }), false);
  assert.equal(acc.add({ w: Float32Array.of(3, 6) }), true);
  assert.deepEqual([...acc.take().w], [2, 4]);
  assert.throws(() => new GradientAccumulator(0), /whole number/);
});

test("training RNG: seeded, resumable from its state, normal draws", () => {
  const a = new TrainingRng(42);
  a.randn(7);
  const b = TrainingRng.fromState(a.state());
  assert.deepEqual([...a.randn(5)], [...b.randn(5)]);
  assert.deepEqual(a.permutation(10), b.permutation(10));
  assert.deepEqual([...a.permutation(10)].sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const n = new TrainingRng(1).randn(20000);
  const mean = n.reduce((s, v) => s + v, 0) / n.length, varc = n.reduce((s, v) => s + v * v, 0) / n.length - mean ** 2;
  assert.ok(Math.abs(mean) < 0.03 && Math.abs(varc - 1) < 0.05, `mean ${mean} var ${varc}`);
});
