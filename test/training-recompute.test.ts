/** Gradient checkpointing (recompute.ts) changes where activations come from, not the gradients. */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, fixture, diff } from "./helpers/fixtures.js";
import { TensorStore } from "../src/safetensors/index.js";
import { storeSource } from "../src/loaders/component.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { buildTrainGraph, type TrainMode } from "../src/training/graph/train-graph.js";
import { TrainingRng } from "../src/training/rng.js";
import { compileTrainingGraph } from "../src/training/graph/train-session.js";
import { parameterFeeds } from "../src/ir/autodiff/trainable.js";

const tmp = mkdtempSync(join(tmpdir(), "training-recompute-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function unet(name: string) {
  const file = join(tmp, `${name}.safetensors`);
  writeSynthFile(file, Object.entries(JSON.parse(readFileSync(fixture("unet", name, "manifest.json"), "utf8")) as Record<string, number[]>));
  return { config: JSON.parse(readFileSync(fixture("unet", name, "config.json"), "utf8")), source: storeSource(TensorStore.open(file)), where: name };
}

async function run(mode: TrainMode, checkpointing: boolean, student = unet("tiny-ssd")) {
  const rng = new TrainingRng(1);
  const tg = buildTrainGraph({ unet: student, batch: 2, latentSize: 16, mode, rng, checkpointing });
  // non-zero LoRA B so that every factor has a gradient
  if (mode.kind === "lora") for (const p of tg.params) p.value.set(new TrainingRng(5).randn(p.value.length).map((v) => v * 0.1));
  const c = await compileTrainingGraph(tg.graph, "recompute test");
  const n = 2 * 4 * 16 * 16;
  const out = await c.run({
    ...parameterFeeds(tg.params), noisy: rng.randn(n), target: rng.randn(n), timestep: Float32Array.of(999, 250),
    time_ids: Float32Array.of(32, 32, 0, 0, 32, 32, 32, 32, 0, 0, 32, 32), loss_weights: Float32Array.of(0.5, 0.5),
    encoder_hidden_states: rng.randn(2 * 77 * 64), text_embeds: rng.randn(2 * 32),
  });
  await c.release();
  return { out, nodes: tg.graph.nodes.length };
}

for (const [what, mode] of [
  ["LoRA", { kind: "lora", rank: 4, alpha: 4, targets: ["to_q", "to_k", "to_v", "to_out.0"] }],
  ["full UNet", { kind: "full" }],
  ["distillation", { kind: "distill", teacher: null, weights: { task: 1, kd: 0.5, features: 0.5 } }],
] as [string, TrainMode][]) {
  test(`gradient checkpointing: ${what} gradients equal the plain graph's`, { skip: NO_FIXTURES, timeout: 2 * 60_000 }, async (t) => {
    const m = mode.kind === "distill" ? { ...mode, teacher: unet("tiny-sdxl") } : mode;
    const plain = await run(m, false), ck = await run(m, true);
    assert.ok(ck.nodes > plain.nodes, "recompute nodes were added");
    let worst = 0;
    for (const k of Object.keys(plain.out)) {
      const d = diff(ck.out[k], plain.out[k]);
      // gradients that are zero in exact arithmetic are float noise in both: compared absolutely
      if (d.maxAbs > 1e-7) worst = Math.max(worst, d.relL2);
      assert.ok(d.relL2 <= 1e-5 || d.maxAbs <= 1e-7, `${k}: relL2 ${d.relL2}`);
    }
    t.diagnostic(`${Object.keys(plain.out).length} outputs, ${ck.nodes - plain.nodes} nodes added, worst relL2 ${worst.toExponential(2)}`);
  });
}
