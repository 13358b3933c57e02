import { test } from "node:test";
import assert from "node:assert/strict";
import { TorchGenerator } from "../src/random/index.js";
import { TensorStore, readBytes } from "../src/safetensors/index.js";
import { NO_FIXTURES, assertMaxAbs, fixture } from "./helpers/fixtures.js";

const TOL = 2e-6;

function exactCount(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let same = 0;
  for (let i = 0; i < b.length; i++) if (a[i] === b[i]) same++;
  return same;
}

/** Replays one fixture key `seed{S}_{what}` on a fresh generator. */
function replay(seed: bigint, what: string): Float32Array | Float64Array {
  const g = new TorchGenerator(seed);
  if (what === "rand_100") return g.rand([100]);
  if (what === "randn_f64_20") return g.randnFloat64([20]);
  const seq = /^seq_(.+)_then_(.+)$/.exec(what);
  if (seq) {
    const a = g.randn(seq[1].split("x").map(Number));
    const b = g.randn(seq[2].split("x").map(Number));
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  }
  return g.randn(what.split("x").map(Number));
}

test("torch CPU randn/rand fixtures: every key", { skip: NO_FIXTURES }, () => {
  const store = TensorStore.open(fixture("randn", "torch_cpu_randn.safetensors"));
  assert.ok(store.tensors.size >= 60, `expected the full fixture set, got ${store.tensors.size} keys`);
  let worst = 0, total = 0, same = 0;
  for (const [name, entry] of store.tensors) {
    const m = /^seed(\d+)_(.+)$/.exec(name);
    assert.ok(m, `unexpected fixture key ${name}`);
    const got = replay(BigInt(m[1]), m[2]);
    if (entry.dtype === "F64") {
      const bytes = readBytes(entry);
      const expected = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
      // V8's libm (fdlibm) and glibc differ by an ulp now and then; torch's double path uses libm,
      // so require ulp-level agreement, and exactness once rounded to float32.
      worst = Math.max(worst, assertMaxAbs(got, expected, 1e-15, name).maxAbs);
      const f = exactCount(Float32Array.from(got), Float32Array.from(expected)) / expected.length;
      assert.ok(f >= 0.99, `${name}: only ${(100 * f).toFixed(2)}% equal after rounding to float32`);
      same += exactCount(got, expected);
      total += expected.length;
    } else {
      const expected = store.float32(name);
      assert.equal(got.length, expected.length, `${name}: length`);
      worst = Math.max(worst, assertMaxAbs(got, expected, TOL, name).maxAbs);
      const n = exactCount(got, expected);
      assert.ok(n >= 0.99 * expected.length, `${name}: only ${n}/${expected.length} elements exactly equal`);
      same += n;
      total += expected.length;
    }
  }
  assert.ok(same / total >= 0.99, `overall exact fraction ${same / total}`);
  console.log(`randn fixtures: ${store.tensors.size} keys, max |d| ${worst.toExponential(2)}, exact ${same}/${total}`);
});

test("seed: only the low 32 bits reach mt19937; number, bigint and negative seeds", () => {
  const ref = new TorchGenerator(7).rand([8]);
  assert.deepEqual(new TorchGenerator(7n).rand([8]), ref);
  assert.deepEqual(new TorchGenerator((1n << 32n) + 7n).rand([8]), ref);
  assert.deepEqual(new TorchGenerator(2 ** 32 + 7).rand([8]), ref);
  // manual_seed(-1) wraps to 2^64 - 1, whose low 32 bits are 0xffffffff.
  assert.deepEqual(new TorchGenerator(-1).rand([8]), new TorchGenerator((1n << 64n) - 1n).rand([8]));
  assert.deepEqual(new TorchGenerator(-1).rand([8]), new TorchGenerator(0xffffffff).rand([8]));
  assert.throws(() => new TorchGenerator(1n << 64n), RangeError);
  assert.throws(() => new TorchGenerator(0.5), RangeError);
  assert.throws(() => new TorchGenerator(2 ** 60), RangeError); // not exactly representable: pass a bigint
});

test("mt19937 stream: std::mt19937 reference value", () => {
  // The 10000th output of std::mt19937 with the default seed 5489 is 4123659995 (C++ standard).
  // rand() uses the low 24 bits of each output.
  const x = new TorchGenerator(5489).rand([10000])[9999];
  assert.equal(x, (4123659995 & 0xffffff) / 2 ** 24);
});

test("streams continue across calls like torch", () => {
  // rand and the >= 16 randn path consume one 32-bit output per element (plus 16 for a tail).
  const g = new TorchGenerator(3);
  const joined = [...g.rand([5]), ...g.rand([11])];
  assert.deepEqual(joined, [...new TorchGenerator(3).rand([16])]);

  // The scalar path (numel < 16) caches the second Box–Muller value across calls:
  // randn(3) then randn(1) is randn(4).
  const h = new TorchGenerator(11);
  const parts = [...h.randn([3]), ...h.randn([1])];
  assert.deepEqual(parts, [...new TorchGenerator(11).randn([4])]);

  // Small float32 and float64 tensors share that double-precision path.
  const f64 = new TorchGenerator(5).randnFloat64([7]);
  assert.deepEqual(new TorchGenerator(5).randn([7]), Float32Array.from(f64));

  // Only numel matters, not the shape; empty tensors draw nothing.
  const k = new TorchGenerator(9);
  assert.equal(k.randn([2, 0, 3]).length, 0);
  assert.deepEqual(k.randn([1, 4, 7]), new TorchGenerator(9).randn([28]));
  assert.equal(new TorchGenerator(9).randn([]).length, 1);
});

test("randn [1,4,128,128] is fast and well distributed", () => {
  const g = new TorchGenerator(0);
  g.randn([1, 4, 16, 16]); // warm up the JIT
  const t0 = performance.now();
  const x = g.randn([1, 4, 128, 128]);
  const ms = performance.now() - t0;
  let sum = 0, sq = 0;
  for (const v of x) { sum += v; sq += v * v; }
  const mean = sum / x.length, std = Math.sqrt(sq / x.length - mean * mean);
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(std - 1) < 0.02, `mean ${mean}, std ${std}`);
  assert.ok(ms < 200, `randn [1,4,128,128] took ${ms.toFixed(1)} ms`);
});
