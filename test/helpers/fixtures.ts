import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { TensorStore } from "../../src/safetensors/index.js";
import { decodePng } from "../../src/image/png.js";

/** Project root: dist/test/helpers -> ../../.. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** ../shared/fixtures, or SSD1B_FIXTURES (the device machine has no ../shared; bench/device-prep.sh carries a subset). */
export const FIXTURES = process.env.SSD1B_FIXTURES ?? resolve(PROJECT_ROOT, "../shared/fixtures");
export const HAVE_FIXTURES = existsSync(join(FIXTURES, "README.md"));
/** Pass as `{ skip: NO_FIXTURES }` to node:test: a clear reason when ../shared is absent. */
export const NO_FIXTURES = HAVE_FIXTURES ? false : `fixtures not found at ${FIXTURES}`;

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

export function openFixture(...parts: string[]): TensorStore {
  return TensorStore.open(fixture(...parts));
}

export interface Diff { relL2: number; maxAbs: number; maxRef: number }

export function diff(actual: ArrayLike<number>, expected: ArrayLike<number>): Diff {
  assert.equal(actual.length, expected.length, "length mismatch");
  let num = 0, den = 0, maxAbs = 0, maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    num += d * d;
    den += expected[i] * expected[i];
    const ad = Math.abs(d);
    if (!(ad <= maxAbs)) maxAbs = ad; // NaN-propagating
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
  }
  return { relL2: Math.sqrt(num / Math.max(den, 1e-30)), maxAbs, maxRef };
}

/** The module-output tolerance of the fixtures README: rel L2 <= 1e-4 and max|d| <= 1e-3 max|ref|. */
export function assertModuleClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): Diff {
  const d = diff(actual, expected);
  assert.ok(d.relL2 <= 1e-4 && d.maxAbs <= 1e-3 * d.maxRef,
    `${what}: relL2 ${d.relL2.toExponential(3)} (<= 1e-4), max|d| ${d.maxAbs.toExponential(3)} (<= ${(1e-3 * d.maxRef).toExponential(3)})`);
  return d;
}

/** Elementwise |a-b| <= tol for every element. */
export function assertMaxAbs(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): Diff {
  const d = diff(actual, expected);
  assert.ok(d.maxAbs <= tol, `${what}: max|d| ${d.maxAbs.toExponential(3)} > ${tol}`);
  return d;
}

/** Largest difference in 8-bit levels between a PNG and image `index` of a fixture's [N, H, W, 3] floats in [0, 1]. */
export function levelDiff(png: Buffer, ref: Float32Array, index = 0): number {
  const img = decodePng(png);
  const n = img.width * img.height * 3;
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(img.data[i] - ref[index * n + i] * 255));
  return m;
}
