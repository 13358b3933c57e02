/**
 * Training graphs put frozen weights on the left of matrix products (held once, never pre-packed by
 * onnxruntime): the lowering changes, the values do not.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { diff } from "./helpers/fixtures.js";
import { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { storeSource } from "../src/loaders/component.js";
import { TensorStore } from "../src/safetensors/index.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import { CompiledGraph } from "../src/runtime/session.js";

test("weightsOnTheLeft: x·Wᵀ and g·W with W as FusedMatMul's left operand give the same values", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weights-left-"));
  try {
    const file = join(dir, "w.safetensors");
    writeSynthFile(file, [["proj.weight", [4, 6]]]);
    const build = () => {
      const g = new Graph();
      const w = WeightBuilder.root(g, storeSource(TensorStore.open(file))).pp("proj").get("weight", [4, 6]);
      const x = g.input("x", [2, 5, 6]);
      const y = F.matmulTransB(x, w); // forward: [2, 5, 4]
      g.output("y", y);
      g.output("back", F.matmul(y, w)); // backward-style: [2, 5, 6]
      g.output("flat", F.matmulTransB(F.reshape(x, [10, 6]), w)); // 2-D operand
      return g;
    };
    const x = Float32Array.from({ length: 60 }, (_, i) => Math.sin(i * 0.9));
    const results = [];
    for (const weightsOnTheLeft of [false, true]) {
      const g = build();
      const nodes = onnxProto.onnx.ModelProto.decode(lowerToOnnx(g, "t", { weightsOnTheLeft }).bytes).graph!.node!;
      const products = nodes.filter((n) => n.opType === "FusedMatMul" || n.opType === "MatMul");
      assert.equal(products.length, 3);
      for (const n of products) assert.equal(n.input![0] === "proj.weight", weightsOnTheLeft, `${n.opType}(${n.input})`);
      const m = await CompiledGraph.create(g, "weights left", { weightsOnTheLeft });
      results.push(await m.run({ x }));
      await m.release();
    }
    for (const k of ["y", "back", "flat"]) assert.ok(diff(results[1][k], results[0][k]).relL2 < 1e-6, k);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
