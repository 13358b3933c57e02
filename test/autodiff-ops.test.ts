/**
 * Every IR op's gradient rule against central finite differences (5-point stencil) of the same graph
 * run by onnxruntime in float32: loss = Σ op(x)·r for a fixed random r; each input checked per
 * coordinate (a random subset) and along one random direction of all inputs together.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Graph } from "../src/ir/graph.js";
import type { Tensor } from "../src/ir/tensor.js";
import { type OpDef, notDifferentiable } from "../src/ir/op.js";
import * as F from "../src/ir/functional.js";
import { Cast } from "../src/ir/ops/shape.js";
import { gradients } from "../src/ir/autodiff/backward.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { diff } from "./helpers/fixtures.js";

/** Deterministic uniform numbers (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface InputSpec { shape: number[]; lo?: number; hi?: number }
interface Case {
  name: string;
  inputs: InputSpec[];
  build: (xs: Tensor[]) => Tensor;
  /** Finite-difference step (inputs are O(1)). */
  h?: number;
  tol?: number;
}

async function checkCase(c: Case, seed = 1): Promise<void> {
  const rand = rng(seed);
  const values = c.inputs.map(({ shape, lo = -1, hi = 1 }) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * rand()));
  const g = new Graph();
  const xs = c.inputs.map((s, i) => g.input(`x${i}`, s.shape));
  const y = c.build(xs);
  const r = g.constant(Float32Array.from({ length: y.numel }, () => rand() * 2 - 1), [...y.shape]);
  const loss = F.sum(F.mul(y, r));
  g.output("loss", loss);
  gradients(g, loss, xs).forEach((d, i) => g.output(`d${i}`, d));
  const model = await CompiledGraph.create(g, c.name, { intraOpThreads: 1 });
  try {
    const feeds = () => Object.fromEntries(values.map((v, i) => [`x${i}`, v]));
    const analytic = await model.run(feeds());
    const lossAt = async () => (await model.run(feeds())).loss[0];
    const h = c.h ?? 1e-2;
    /** d loss / dt along `dir`, 5-point stencil; dir maps input index -> direction (same length). */
    const fd = async (dir: Map<number, Float32Array>) => {
      const base = [...dir.keys()].map((i) => Float32Array.from(values[i]));
      const at = async (t: number) => {
        for (const [k, [i, v]] of [...dir].entries()) for (let j = 0; j < v.length; j++) values[i][j] = base[k][j] + t * v[j];
        return lossAt();
      };
      const [m2, m1, p1, p2] = [await at(-2 * h), await at(-h), await at(h), await at(2 * h)];
      [...dir.keys()].forEach((i, k) => values[i].set(base[k]));
      return (m2 - 8 * m1 + 8 * p1 - p2) / (12 * h);
    };
    const tol = c.tol ?? 2e-3;
    for (let i = 0; i < values.length; i++) {
      const n = values[i].length;
      const picks = n <= 24 ? [...Array(n).keys()] : Array.from({ length: 24 }, () => Math.floor(rand() * n));
      const numeric: number[] = [];
      const got: number[] = [];
      for (const j of picks) {
        const e = new Float32Array(n);
        e[j] = 1;
        numeric.push(await fd(new Map([[i, e]])));
        got.push(analytic[`d${i}`][j]);
      }
      const d = diff(got, numeric);
      assert.ok(d.relL2 <= tol || d.maxAbs <= 1e-4, `${c.name}: d/dx${i} relL2 ${d.relL2.toExponential(2)} > ${tol} (got ${got.slice(0, 4)}, fd ${numeric.slice(0, 4)})`);
    }
    // All inputs at once along a random direction: catches a wrong coordinate outside the subset.
    const dirs = new Map(values.map((v, i) => [i, Float32Array.from(v, () => rand() * 2 - 1)] as const));
    let expected = 0;
    for (const [i, v] of dirs) for (let j = 0; j < v.length; j++) expected += analytic[`d${i}`][j] * v[j];
    const numeric = await fd(dirs);
    assert.ok(Math.abs(numeric - expected) <= tol * Math.max(1, Math.abs(expected)), `${c.name}: directional ${numeric} vs ${expected}`);
  } finally {
    await model.release();
  }
}

const positive = { lo: 0.5, hi: 2 };
const idx = (x: Tensor, values: number[], shape: number[]) => x.graph.constant(BigInt64Array.from(values, BigInt), shape);

/** Cases by op type; several per op where attributes change the rule (broadcasting, strides, groups, odd sizes). */
const CASES: Record<string, Case[]> = {
  Add: [{ name: "Add broadcast", inputs: [{ shape: [2, 3, 4] }, { shape: [3, 1] }], build: ([a, b]) => F.add(a, b) }],
  Sub: [{ name: "Sub broadcast", inputs: [{ shape: [4] }, { shape: [2, 3, 4] }], build: ([a, b]) => F.sub(a, b) }],
  Mul: [{ name: "Mul broadcast, fan-out", inputs: [{ shape: [2, 3, 4] }, { shape: [1, 3, 1] }], build: ([a, b]) => F.mul(F.mul(a, b), a) }],
  Div: [{ name: "Div broadcast", inputs: [{ shape: [2, 3] }, { shape: [3], ...positive }], build: ([a, b]) => F.div(a, b) }],
  Pow: [
    { name: "Pow constant exponent", inputs: [{ shape: [2, 5], ...positive }], build: ([a]) => F.pow(a, 2.5) },
    { name: "Pow tensor exponent", inputs: [{ shape: [2, 5], ...positive }, { shape: [5] }], build: ([a, b]) => F.pow(a, b) },
  ],
  Neg: [{ name: "Neg", inputs: [{ shape: [7] }], build: ([x]) => F.neg(x) }],
  Exp: [{ name: "Exp", inputs: [{ shape: [7] }], build: ([x]) => F.exp(x) }],
  Log: [{ name: "Log", inputs: [{ shape: [7], ...positive }], build: ([x]) => F.log(x) }],
  Sqrt: [{ name: "Sqrt", inputs: [{ shape: [7], ...positive }], build: ([x]) => F.sqrt(x) }],
  Sigmoid: [{ name: "Sigmoid", inputs: [{ shape: [7], lo: -3, hi: 3 }], build: ([x]) => F.sigmoid(x) }],
  Tanh: [{ name: "Tanh", inputs: [{ shape: [7], lo: -2, hi: 2 }], build: ([x]) => F.tanh(x) }],
  Erf: [{ name: "Erf", inputs: [{ shape: [7], lo: -2, hi: 2 }], build: ([x]) => F.erf(x) }],
  Sin: [{ name: "Sin", inputs: [{ shape: [7], lo: -3, hi: 3 }], build: ([x]) => F.sin(x) }],
  Cos: [{ name: "Cos", inputs: [{ shape: [7], lo: -3, hi: 3 }], build: ([x]) => F.cos(x) }],
  // The sampled points lie >= 0.04 from the kink at 0; the stencil (h = 1e-3, up to 2h per point) stays on one side.
  Relu: [{ name: "Relu", inputs: [{ shape: [12], lo: -2, hi: 2 }], build: ([x]) => F.relu(x), h: 1e-3 }],
  // As Relu: points >= 0.04 from the kink.
  LeakyRelu: [{ name: "LeakyRelu 0.2", inputs: [{ shape: [12], lo: -2, hi: 2 }], build: ([x]) => F.leakyRelu(x, 0.2), h: 1e-3 }],
  Gelu: [{ name: "Gelu", inputs: [{ shape: [9], lo: -3, hi: 3 }], build: ([x]) => F.gelu(x) }],
  BiasGeglu: [{ name: "BiasGeglu (diffusers' GEGLU)", inputs: [{ shape: [2, 3, 8], lo: -3, hi: 3 }, { shape: [8] }], build: ([x, b]) => F.biasGeglu(x, b) }],
  SigmoidGate: [
    { name: "SiLU", inputs: [{ shape: [9], lo: -3, hi: 3 }], build: ([x]) => F.silu(x) },
    { name: "quick_gelu", inputs: [{ shape: [9], lo: -3, hi: 3 }], build: ([x]) => F.quickGelu(x) },
  ],
  // Bounds chosen between the sampled values' grid so no point sits within h of a kink.
  Clamp: [{ name: "Clamp", inputs: [{ shape: [12], lo: -2, hi: 2 }], build: ([x]) => F.clamp(x, -0.97, 1.03), h: 1e-3, tol: 5e-3 }],
  Where: [{
    name: "Where broadcast", inputs: [{ shape: [2, 4] }, { shape: [4] }],
    build: ([a, b]) => F.where(F.less(F.sin(F.mul(a, 0)), a.graph.constant(Float32Array.of(-1, 1, -1, 1), [4])), a, b),
  }],
  MatMul: [
    { name: "MatMul batched broadcast", inputs: [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 5] }], build: ([a, b]) => F.matmul(a, b) },
    { name: "MatMul transB shared weight (Linear)", inputs: [{ shape: [2, 3, 4] }, { shape: [5, 4] }], build: ([a, b]) => F.matmulTransB(a, b) },
    { name: "MatMul transB batched", inputs: [{ shape: [2, 3, 4] }, { shape: [2, 5, 4] }], build: ([a, b]) => F.matmulTransB(a, b) },
  ],
  Conv2d: [
    { name: "Conv2d 3x3 pad 1 bias", inputs: [{ shape: [2, 3, 5, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }], build: ([x, w, b]) => F.conv2d(x, w, b, { pads: [1, 1, 1, 1] }) },
    { name: "Conv2d stride 2 odd size, asymmetric pads", inputs: [{ shape: [1, 2, 6, 7] }, { shape: [3, 2, 3, 3] }], build: ([x, w]) => F.conv2d(x, w, undefined, { stride: 2, pads: [1, 0, 0, 1] }) },
    { name: "Conv2d groups 2 dilation 2", inputs: [{ shape: [1, 4, 7, 7] }, { shape: [6, 2, 3, 3] }, { shape: [6] }], build: ([x, w, b]) => F.conv2d(x, w, b, { groups: 2, dilation: 2, pads: [1, 1, 1, 1] }) },
  ],
  ConvTranspose2d: [
    { name: "ConvTranspose2d stride 2", inputs: [{ shape: [1, 3, 3, 4] }, { shape: [3, 2, 3, 3] }], build: ([x, w]) => F.convTranspose2d(x, w, { stride: 2, pads: [1, 1, 1, 0], outputPadding: [1, 0] }) },
    { name: "ConvTranspose2d groups", inputs: [{ shape: [1, 4, 3, 3] }, { shape: [4, 1, 2, 2] }], build: ([x, w]) => F.convTranspose2d(x, w, { groups: 2 }) },
  ],
  AddLayerNorm: [{
    name: "AddLayerNorm (residual + LayerNorm), both outputs used", inputs: [{ shape: [2, 3, 6] }, { shape: [2, 3, 6] }, { shape: [6] }, { shape: [6] }],
    build: ([x, s, w, b]) => { const [n, sum] = F.addLayerNorm(x, s, w, b, 1e-5); return F.add(F.mul(n, n), F.mul(sum, 0.3)); },
  }],
  GroupNorm: [{
    name: "GroupNorm", inputs: [{ shape: [2, 4, 3, 3], lo: -2, hi: 2 }, { shape: [4], ...positive }, { shape: [4] }],
    build: ([x, w, b]) => F.groupNorm(x, w, b, 2, 1e-5),
  }],
  LayerNorm: [{
    name: "LayerNorm", inputs: [{ shape: [2, 3, 6], lo: -2, hi: 2 }, { shape: [6], ...positive }, { shape: [6] }],
    build: ([x, w, b]) => F.layerNorm(x, w, b, 1e-5),
  }],
  Reshape: [{ name: "Reshape", inputs: [{ shape: [2, 6] }], build: ([x]) => F.reshape(x, [3, 4]) }],
  Transpose: [{ name: "Transpose", inputs: [{ shape: [2, 3, 4] }], build: ([x]) => F.transpose(x, [2, 0, 1]) }],
  Concat: [{ name: "Concat", inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }], build: (xs) => F.concat(xs, -1) }],
  Slice: [{ name: "Slice", inputs: [{ shape: [3, 6] }], build: ([x]) => F.slice(x, 1, 1, 4) }],
  Pad: [{ name: "Pad", inputs: [{ shape: [2, 3] }], build: ([x]) => F.pad(x, [1, 0, 0, 2]) }],
  Gather: [{ name: "Gather repeated rows", inputs: [{ shape: [5, 3] }], build: ([t]) => F.gather(t, idx(t, [4, 0, 4, 2, -1, 1], [2, 3])) }],
  Cast: [{ name: "Cast float32", inputs: [{ shape: [4] }], build: ([x]) => x.graph.apply(Cast, [x], { to: "float32" })[0] }],
  UpsampleNearest: [
    { name: "UpsampleNearest 2x", inputs: [{ shape: [1, 2, 3, 2] }], build: ([x]) => F.upsampleNearest(x) },
    { name: "UpsampleNearest odd size", inputs: [{ shape: [1, 2, 3, 2] }], build: ([x]) => F.upsampleNearest(x, [5, 3]) },
  ],
  PixelUnshuffle: [{ name: "PixelUnshuffle 2", inputs: [{ shape: [1, 2, 4, 6] }], build: ([x]) => F.pixelUnshuffle(x, 2) }],
  MultiHeadAttention: [{
    name: "MultiHeadAttention cross, 2 heads", inputs: [{ shape: [2, 3, 4] }, { shape: [2, 5, 4] }, { shape: [2, 5, 4] }],
    build: ([q, k, v]) => F.multiHeadAttention(q, k, v, 2),
  }],
  Softmax: [{ name: "Softmax", inputs: [{ shape: [2, 5], lo: -2, hi: 2 }], build: ([x]) => F.softmax(x) }],
  ReduceSum: [{ name: "ReduceSum keepdims", inputs: [{ shape: [2, 3, 4] }], build: ([x]) => F.reduceSum(x, [0, 2], true) }],
  ReduceMean: [{ name: "ReduceMean", inputs: [{ shape: [2, 3, 4] }], build: ([x]) => F.reduceMean(x, [1]) }],
  ReduceMax: [{ name: "ReduceMax keepdims", inputs: [{ shape: [2, 3, 4] }], build: ([x]) => F.reduceMax(x, [1, 2], true) }],
  ReduceMin: [{ name: "ReduceMin", inputs: [{ shape: [2, 3, 4] }], build: ([x]) => F.reduceMin(x, [0]) }],
  Expand: [{ name: "Expand", inputs: [{ shape: [3, 1] }], build: ([x]) => F.expand(x, [2, 3, 4]) }],
};

/** Ops whose outputs carry no gradient (bool / one-hot results). */
const NON_DIFFERENTIABLE = ["Less", "Greater", "OneHot"];

for (const [op, cases] of Object.entries(CASES)) {
  test(`grad ${op} matches finite differences`, async () => {
    for (const c of cases) await checkCase(c);
  });
}

test("every op in src/ir/ops has a gradient rule, checked here or declared non-differentiable", async () => {
  const dir = join(dirname(fileURLToPath(import.meta.url)), "../src/ir/ops");
  const ops: OpDef<any>[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".js"))) {
    const mod = await import(pathToFileURL(join(dir, f)).href);
    for (const v of Object.values(mod)) if (v && typeof v === "object" && "type" in v && "infer" in v && "lower" in v) ops.push(v as OpDef<any>);
  }
  assert.ok(ops.length >= 30, `found only ${ops.length} ops`);
  for (const op of ops) {
    assert.ok(op.grad, `${op.type} has no grad rule`);
    if (op.grad === notDifferentiable) assert.ok(NON_DIFFERENTIABLE.includes(op.type), `${op.type} is declared non-differentiable but not listed`);
    else assert.ok(CASES[op.type], `${op.type} has no finite-difference case`);
  }
});

test("gradients: cotangents of a tensor used several times are summed; unrelated inputs get zeros", async () => {
  const g = new Graph();
  const x = g.input("x", [3]);
  const unrelated = g.input("u", [2]);
  const loss = F.sum(F.add(F.mul(x, x), F.sin(x)));
  g.output("loss", F.add(loss, F.sum(unrelated)));
  const [dx, du] = gradients(g, loss, [x, unrelated]);
  g.output("dx", dx);
  g.output("du", du);
  const m = await CompiledGraph.create(g, "fan-out", { intraOpThreads: 1 });
  const xv = Float32Array.of(0.5, -1, 2);
  const out = await m.run({ x: xv, u: Float32Array.of(1, 2) });
  await m.release();
  const expected = Array.from(xv, (v) => 2 * v + Math.cos(v));
  assert.ok(diff(out.dx, expected).maxAbs < 1e-6);
  assert.deepEqual(Array.from(out.du), [0, 0]);
});
