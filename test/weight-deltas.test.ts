import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Graph } from "../src/ir/graph.js";
import { Linear } from "../src/nn/layers.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { WeightDeltas } from "../src/nn/weight-deltas.js";
import { storeSource } from "../src/loaders/component.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { TensorStore, saveTensors, f32ToF16 } from "../src/safetensors/index.js";

test("low-rank deltas are added to the weights they name (LoRA on a Linear)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "deltas-"));
  try {
    const W = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2,3]
    const up = Float32Array.from([0.5, -1]); // [2,1]
    const down = Float32Array.from([1, 0, 2]); // [1,3]
    saveTensors(join(dir, "base.safetensors"), { "lin.weight": { dtype: "F32", shape: [2, 3], data: W }, "lin.bias": { dtype: "F32", shape: [2], data: Float32Array.from([0.1, 0.2]) } });
    saveTensors(join(dir, "lora.safetensors"), { u: { dtype: "F16", shape: [2, 1], data: f32ToF16(up) }, d: { dtype: "F32", shape: [1, 3], data: down } });
    const lora = TensorStore.open(join(dir, "lora.safetensors"));
    const deltas = new WeightDeltas();
    deltas.add("lin.weight", { up: lora.get("u"), down: lora.get("d"), scale: 0.8, origin: "lora.safetensors: lin" });
    deltas.add("other.weight", { up: lora.get("u"), down: lora.get("d"), scale: 1, origin: "lora.safetensors: other" });
    const g = new Graph();
    const vb = WeightBuilder.root(g, storeSource(TensorStore.open(join(dir, "base.safetensors"))), deltas);
    const x = g.input("x", [1, 3]);
    g.output("y", new Linear(vb.pp("lin"), 3, 2).forward(x));
    assert.deepEqual(deltas.unapplied(), ["other.weight"]);
    const m = await CompiledGraph.create(g, "lora test");
    const { y } = await m.run({ x: Float32Array.from([1, 1, 1]) });
    // W' = W + 0.8 · up·down = [[1.4,2,3.8],[3.2,5,4.4]]; y = W'·1 + b
    assert.ok(Math.abs(y[0] - (1.4 + 2 + 3.8 + 0.1)) < 1e-5 && Math.abs(y[1] - (3.2 + 5 + 4.4 + 0.2)) < 1e-5, `got ${Array.from(y)}`);
    await m.release();

    const bad = new WeightDeltas();
    bad.add("lin.weight", { up: lora.get("d"), down: lora.get("u"), scale: 1, origin: "lora.safetensors: lin" });
    const g2 = new Graph();
    const vb2 = WeightBuilder.root(g2, storeSource(TensorStore.open(join(dir, "base.safetensors"))), bad);
    assert.throws(() => new Linear(vb2.pp("lin"), 3, 2), /does not fit "lin.weight" \[2,3\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
