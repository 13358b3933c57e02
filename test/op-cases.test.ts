import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../src/ir/graph.js";
import { OP_CASES } from "../bench/op-cases.js";

// The ops benchmark (bench/ops-worker.ts) divides (t(2R) - t(R)) by R and reports TFLOP/s from the IR's
// count: each chain must map its input back to the input's shape, and R more ops must add R times one op's
// arithmetic, checked here against the products' textbook counts.
const LAT = 16, B = 2;
const EXPECTED: Record<string, number> = {
  "linear-640": 2 * B * (LAT / 2) ** 2 * 640 * 640,
  "linear-640-bias": 2 * B * (LAT / 2) ** 2 * 640 * 640,
  "linear-1280": 2 * B * (LAT / 4) ** 2 * 1280 * 1280,
  "ff-640": 2 * B * (LAT / 2) ** 2 * 640 * 5120,
  "ff-1280": 2 * B * (LAT / 4) ** 2 * 1280 * 10240,
  "linear-640-q8": 2 * B * (LAT / 2) ** 2 * 640 * 640,
  "linear-1280-q8": 2 * B * (LAT / 4) ** 2 * 1280 * 1280,
  "ff-640-q8": 2 * B * (LAT / 2) ** 2 * 640 * 5120,
  "ff-1280-q8": 2 * B * (LAT / 4) ** 2 * 1280 * 10240,
  "conv-320": 2 * B * 320 * 320 * 9 * LAT ** 2,
  "conv-640": 2 * B * 640 * 640 * 9 * (LAT / 2) ** 2,
  "conv-1280": 2 * B * 1280 * 1280 * 9 * (LAT / 4) ** 2,
  "conv-320-q8": 2 * B * 320 * 320 * 9 * LAT ** 2,
  "conv-640-q8": 2 * B * 640 * 640 * 9 * (LAT / 2) ** 2,
  "conv-1280-q8": 2 * B * 1280 * 1280 * 9 * (LAT / 4) ** 2,
  "attn-self-640": 4 * B * (LAT / 2) ** 4 * 640,
  "attn-self-1280": 4 * B * (LAT / 4) ** 4 * 1280,
  "attn-cross-1280": 4 * B * (LAT / 4) ** 2 * 77 * 1280,
};

function chainFlops(name: string, r: number): number {
  const op = OP_CASES[name](LAT);
  const g = new Graph();
  const x = g.input("x", op.input);
  const y = op.chain(g, x, r);
  assert.deepEqual(y.shape, op.input, `${name}: the chain of ${r} must end in the input's shape`);
  g.output("y", y);
  return g.flops();
}

test("ops benchmark cases: each chain keeps its input's shape, and one op costs the product's textbook FLOPs (bias adds within 1 %)", () => {
  assert.deepEqual(Object.keys(OP_CASES).sort(), Object.keys(EXPECTED).sort());
  for (const name of Object.keys(OP_CASES)) {
    const perOp = (chainFlops(name, 8) - chainFlops(name, 4)) / 4;
    const want = EXPECTED[name];
    assert.ok(perOp >= want && perOp <= want * 1.01, `${name}: ${perOp} FLOPs an op, expected ${want} (+ at most 1 % for the bias)`);
  }
});
