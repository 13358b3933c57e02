/**
 * Training gradients equal torch autograd's (../shared/fixtures/training): forward + backward graphs
 * lowered to ONNX and run by onnxruntime, every parameter gradient within relative L2 1e-4.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, openFixture, diff, NO_FIXTURES } from "./helpers/fixtures.js";
import { Graph } from "../src/ir/graph.js";
import type { Tensor } from "../src/ir/tensor.js";
import * as F from "../src/ir/functional.js";
import { WeightBuilder, type WeightSource } from "../src/nn/weights.js";
import { storeSource } from "../src/loaders/component.js";
import { TensorStore, readInt64 } from "../src/safetensors/index.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { parseUNetConfig, UNet2DConditionModel, type UNetInputs } from "../src/models/unet/index.js";
import { compileTrainingGraph } from "../src/training/graph/train-session.js";
import { makeTrainable, addParameter, addGradientOutputs, parameterFeeds, type TrainableParameter } from "../src/ir/autodiff/trainable.js";
import { addLoraBranches } from "../src/ir/autodiff/lora-branch.js";
import { AdamW } from "../src/training/optim/adamw.js";

const TOL = 1e-4;
/** Below this fraction of the largest gradient a reference tensor is float noise around an exact zero. */
const ZERO = 1e-6;

/** Synth weights of a fixture UNet in a temp file; the caller removes the folder. */
function synthUNet(name: string): { dir: string; source: WeightSource } {
  const dir = mkdtempSync(join(tmpdir(), `train-${name}-`));
  const file = join(dir, "diffusion_pytorch_model.safetensors");
  writeSynthFile(file, Object.entries(JSON.parse(readFileSync(fixture("unet", name, "manifest.json"), "utf8")) as Record<string, number[]>));
  return { dir, source: storeSource(TensorStore.open(file)) };
}

const unetConfig = (name: string) => parseUNetConfig(JSON.parse(readFileSync(fixture("unet", name, "config.json"), "utf8")));

/** The batch every training fixture holds: `in.*` as graph inputs (timestep fed as float, as the UNet takes it). */
function batchInputs(g: Graph, io: TensorStore) {
  const shape = (k: string) => io.get(`in.${k}`).shape;
  const unet: UNetInputs = {
    sample: g.input("noisy", shape("noisy")),
    timestep: g.input("timestep", shape("timestep")),
    encoderHiddenStates: g.input("encoder_hidden_states", shape("encoder_hidden_states")),
    textEmbeds: g.input("text_embeds", shape("text_embeds")),
    timeIds: g.input("time_ids", shape("time_ids")),
  };
  const noise = g.input("noise", shape("noise"));
  const feeds: Record<string, Float32Array> = {
    timestep: Float32Array.from(readInt64(io.get("in.timestep")), Number),
  };
  for (const k of ["noisy", "encoder_hidden_states", "text_embeds", "time_ids", "noise"]) feeds[k] = io.float32(`in.${k}`);
  return { unet, noise, feeds };
}

const mse = (a: Tensor, b: Tensor) => {
  const d = F.sub(a, b);
  return F.mean(F.mul(d, d));
};

/** Compiles, runs once and compares `loss` (when given) and every `grad.<key>` the fixture holds. */
async function checkGradients(g: Graph, params: TrainableParameter[], feeds: Record<string, Float32Array>, io: TensorStore, gradKey: (p: TrainableParameter) => string, what: string) {
  const model = await compileTrainingGraph(g, what);
  const out = await model.run({ ...feeds, ...parameterFeeds(params) });
  await model.release();
  if (io.has("out.loss")) assert.ok(Math.abs(out.loss[0] - io.float32("out.loss")[0]) <= 1e-5 * Math.abs(io.float32("out.loss")[0]), `${what} loss ${out.loss[0]} vs ${io.float32("out.loss")[0]}`);
  const expectedKeys = [...io.tensors.keys()].filter((k) => k.startsWith("grad."));
  assert.deepEqual(params.map(gradKey).sort(), expectedKeys.sort(), `${what}: parameter set`);
  const refs = new Map(params.map((p) => [p.key, io.float32(gradKey(p))]));
  const globalMax = Math.max(...[...refs.values()].map((r) => r.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  let worst = { key: "", relL2: 0 };
  const zeros: string[] = [];
  const failures: string[] = [];
  for (const p of params) {
    const ours = out[`grad.${p.key}`];
    const d = diff(ours, refs.get(p.key)!);
    // Gradients that are zero in exact arithmetic (a per-channel shift feeding a one-channel GroupNorm
    // group) are float noise (~1e-8 of the largest gradient) in torch and here alike: compare them absolutely.
    if (d.maxRef <= ZERO * globalMax) {
      zeros.push(p.key);
      const mine = ours.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      if (!(mine <= ZERO * globalMax)) failures.push(`${p.key}: zero in torch (max ${d.maxRef.toExponential(2)}) but max ${mine.toExponential(2)} here`);
      continue;
    }
    if (d.relL2 > worst.relL2) worst = { key: p.key, relL2: d.relL2 };
    if (!(d.relL2 <= TOL)) failures.push(`${p.key}: relL2 ${d.relL2.toExponential(2)} (max|ref| ${d.maxRef.toExponential(2)}, max|d| ${d.maxAbs.toExponential(2)})`);
  }
  console.log(`${what}: ${params.length - zeros.length} gradients, worst relL2 ${worst.relL2.toExponential(2)} (${worst.key}); ${zeros.length} zero by construction`);
  assert.deepEqual(failures, [], `${what}: gradients off`);
  return out;
}

/** The tiny-ssd UNet's task loss (MSE against the fixture's noise) with every parameter trainable. */
function taskLossGraph(io: TensorStore, source: WeightSource) {
  const g = new Graph();
  const { unet: inputs, noise, feeds } = batchInputs(g, io);
  const pred = new UNet2DConditionModel(WeightBuilder.root(g, source), unetConfig("tiny-ssd")).forward(inputs).sample;
  const params = makeTrainable(g, () => true);
  addGradientOutputs(g, mse(pred, noise), params);
  return { g, params, feeds };
}

test("tiny-ssd task loss: every parameter gradient equals torch's", { skip: NO_FIXTURES, timeout: 10 * 60_000 }, async () => {
  const io = openFixture("training", "unet-task-grad.safetensors");
  const { dir, source } = synthUNet("tiny-ssd");
  try {
    const { g, params, feeds } = taskLossGraph(io, source);
    await checkGradients(g, params, feeds, io, (p) => `grad.${p.key}`, "unet-task-grad");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const LORA_TARGET = /^(.*attentions\.\d+\.transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0))\.weight$/;

test("tiny-ssd LoRA (rank 4, every attention projection): gradients of A and B equal torch's", { skip: NO_FIXTURES, timeout: 10 * 60_000 }, async () => {
  const io = openFixture("training", "lora-grad.safetensors");
  const { dir, source } = synthUNet("tiny-ssd");
  try {
    const g = new Graph();
    const { unet: inputs, noise, feeds } = batchInputs(g, io);
    const vb = WeightBuilder.root(g, source);
    const pred = new UNet2DConditionModel(vb, unetConfig("tiny-ssd")).forward(inputs).sample;
    const params: TrainableParameter[] = [];
    const branches = new Map<string, { down: Tensor; up: Tensor }>();
    for (const [key, [out, inF]] of vb.requested()) {
      const module = LORA_TARGET.exec(key)?.[1];
      if (!module) continue;
      const a = `unet.${module}.lora_A.weight`;
      const b = `unet.${module}.lora_B.weight`;
      const down = addParameter(g, a, [4, inF], synthTensor(a, [4, inF]));
      // 0.1·B as a float32 product, as torch scales a float tensor.
      const up = addParameter(g, b, [out, 4], synthTensor(b, [out, 4]).map((v) => v * Math.fround(0.1)));
      for (const p of [down, up]) assert.ok(diff(p.value, io.float32(`lora.${p.key}`)).maxAbs === 0, `${p.key}: initial value differs from the fixture's`);
      params.push(down, up);
      branches.set(key, { down: down.tensor, up: up.tensor });
    }
    addLoraBranches(g, branches);
    addGradientOutputs(g, mse(pred, noise), params);
    await checkGradients(g, params, feeds, io, (p) => `grad.${p.key}`, "lora-grad");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Serves `source` under `prefix.` keys, so a second model's weights cannot clash with the first one's names. */
function prefixedSource(source: WeightSource, prefix: string): WeightSource {
  return {
    description: source.description,
    lookup: (key, shape) => (key.startsWith(prefix) ? source.lookup(key.slice(prefix.length), shape) : undefined),
    keys: () => [...source.keys()].map((k) => prefix + k),
  };
}

test("SSD-1B distillation (teacher tiny-sdxl frozen, student tiny-ssd): every student gradient equals torch's", { skip: NO_FIXTURES, timeout: 10 * 60_000 }, async () => {
  const io = openFixture("training", "distill-grad.safetensors");
  const student = synthUNet("tiny-ssd");
  const teacher = synthUNet("tiny-sdxl");
  try {
    const g = new Graph();
    const { unet: inputs, noise, feeds } = batchInputs(g, io);
    const s = new UNet2DConditionModel(WeightBuilder.root(g, student.source), unetConfig("tiny-ssd")).forward(inputs);
    const params = makeTrainable(g, () => true);
    const t = new UNet2DConditionModel(WeightBuilder.root(g, prefixedSource(teacher.source, "teacher.")).pp("teacher"), unetConfig("tiny-sdxl")).forward(inputs);
    const task = mse(s.sample, noise);
    const kd = mse(s.sample, t.sample);
    const features = [...s.blocks].map(([name, x]) => mse(x, t.blocks.get(name)!)).reduce((a, b) => F.add(a, b));
    g.output("loss_task", task);
    g.output("loss_kd", kd);
    g.output("loss_features", features);
    g.output("teacher_pred", t.sample);
    addGradientOutputs(g, F.add(task, F.add(F.mul(kd, 0.5), F.mul(features, 0.5))), params);
    const out = await checkGradients(g, params, feeds, io, (p) => `grad.${p.key}`, "distill-grad");
    for (const k of ["loss_task", "loss_kd", "loss_features"]) {
      assert.ok(diff(out[k], io.float32(`out.${k}`)).relL2 <= 1e-5, `${k}: ${out[k][0]} vs ${io.float32(`out.${k}`)[0]}`);
    }
    assert.ok(diff(out.teacher_pred, io.float32("out.teacher_pred")).relL2 <= 1e-4, "teacher prediction");
  } finally {
    rmSync(student.dir, { recursive: true, force: true });
    rmSync(teacher.dir, { recursive: true, force: true });
  }
});

/** The parameters the fixture records (torch's optimizer held all of them). */
const ADAMW_SCOPE = "down_blocks.1.attentions.0.";

/** Parameters after a step, compared through their change since the start (the change is what the optimizer computes). */
function compareUpdates(watched: TrainableParameter[], initial: Map<string, Float32Array>, expected: TensorStore, prefix: string, tol: number): void {
  const failures: string[] = [];
  let worst = { key: "", relL2: 0, maxAbs: 0 };
  for (const p of watched) {
    const start = initial.get(p.key)!;
    const ref = expected.float32(`${prefix}.${p.key}`);
    const d = diff(p.value.map((v, i) => v - start[i]), ref.map((v, i) => v - start[i]));
    const maxAbs = diff(p.value, ref).maxAbs;
    if (d.relL2 >= worst.relL2) worst = { key: p.key, relL2: d.relL2, maxAbs };
    if (!(d.relL2 <= tol)) failures.push(`${p.key}: update relL2 ${d.relL2.toExponential(2)}, value max|d| ${maxAbs.toExponential(2)}`);
  }
  console.log(`adamw ${prefix}: ${watched.length} parameters, worst update relL2 ${worst.relL2.toExponential(2)} (${worst.key}, value max|d| ${worst.maxAbs.toExponential(2)})`);
  assert.deepEqual(failures, [], `adamw ${prefix}`);
}

/**
 * Step 1 takes torch's own step-1 gradients (the fixture's definition), so it checks the optimizer
 * alone: it must be exact. (From our gradients the update differs by up to ~1e-4 relative: where
 * |g| is near eps, m/(sqrt(v)+eps) amplifies 1e-5-relative gradient noise.) Step 2 takes gradients
 * recomputed by our training graph at the updated weights.
 */
test("AdamW: two torch.optim.AdamW steps on the task loss give torch's parameters", { skip: NO_FIXTURES, timeout: 10 * 60_000 }, async () => {
  const io = openFixture("training", "unet-task-grad.safetensors");
  const expected = openFixture("training", "adamw-two-steps.safetensors");
  const { dir, source } = synthUNet("tiny-ssd");
  try {
    const { g, params, feeds } = taskLossGraph(io, source);
    const model = await compileTrainingGraph(g, "adamw");
    const watched = params.filter((p) => p.key.startsWith(ADAMW_SCOPE));
    const initial = new Map(watched.map((p) => [p.key, Float32Array.from(p.value)]));
    const opt = new AdamW(params, { lr: 1e-4, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 });
    opt.step(Object.fromEntries(params.map((p) => [p.key, io.float32(`grad.${p.key}`)])));
    compareUpdates(watched, initial, expected, "after1", 0);
    const second = await model.run({ ...feeds, ...parameterFeeds(params) });
    const torchLoss = expected.float32("out.loss_step2")[0];
    assert.ok(Math.abs(second.loss[0] - torchLoss) <= 1e-5 * torchLoss, `loss at step 2: ${second.loss[0]} vs ${torchLoss}`);
    opt.step(Object.fromEntries(params.map((p) => [p.key, second[`grad.${p.key}`]])));
    compareUpdates(watched, initial, expected, "after2", TOL);
    assert.equal(opt.steps, 2);
    await model.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
