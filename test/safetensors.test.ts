import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TensorStore, saveTensors, f32ToF16, f16ToF32, readHeader } from "../src/safetensors/index.js";

test("safetensors round trip F32/F16/I64", () => {
  const dir = mkdtempSync(join(tmpdir(), "st-"));
  try {
    const f = join(dir, "a.safetensors");
    const x = Float32Array.from([1, -2.5, 3.25, 65504, 1e-8]);
    saveTensors(f, {
      x: { dtype: "F32", shape: [5], data: x },
      h: { dtype: "F16", shape: [5], data: f32ToF16(x) },
      i: { dtype: "I64", shape: [2], data: BigInt64Array.from([3n, -4n]) },
    });
    const s = TensorStore.open(f);
    assert.deepEqual(Array.from(s.float32("x")), Array.from(x));
    assert.deepEqual(Array.from(s.float32("h")).slice(0, 4), [1, -2.5, 3.25, 65504]);
    assert.throws(() => s.get("nope"), /missing tensor "nope"/);
    // truncation is detected at open, naming file and tensor
    const bytes = readFileSync(f);
    writeFileSync(f, bytes.subarray(0, bytes.length - 3));
    assert.throws(() => TensorStore.open(f), /truncated: tensor "i"/);
    writeFileSync(f, bytes.subarray(0, 20));
    assert.throws(() => readHeader(f), /corrupt or truncated safetensors header/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("float16 conversion rounds to nearest even", () => {
  const vals = Float32Array.from([0.1, 1 / 3, 2049, 2051, 65520, 1e-7, -0.0, 6.1e-5]);
  const back = f16ToF32(f32ToF16(vals));
  assert.deepEqual(Array.from(back), [0.0999755859375, 0.333251953125, 2048, 2052, Infinity, 1.1920928955078125e-7, -0, 0.00006097555160522461]);
});
