/**
 * A1111-side inpainting helpers: the OpenCV mask blur, masked-content fill (pixels and latents),
 * the latent mask, and outpainting's canvas, mask and pre-fills.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { RgbImage } from "../src/image/png.js";
import { a1111BlurKernelSize, a1111MaskBlur, cvGaussianBlur } from "../src/image/gaussian-blur.js";
import { cvGaussianKernelFixed } from "../src/image/cv-gaussian.js";
import { a1111Fill, a1111LatentMask, applyLatentFill } from "../src/image/inpaint-fill.js";
import { outpaint, roundMargins } from "../src/image/outpaint.js";
import { rectMask } from "./helpers/inpaint-inputs.js";


function gradient(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([(x * 255) / (w - 1), (y * 255) / (h - 1), 100], (y * w + x) * 3);
  return { width: w, height: h, data };
}

test("OpenCV Gaussian kernel: Q8 taps by error diffusion sum to 256 (OpenCV's (7, sigma 2) kernel is 18 34 48 56 48 34 18)", () => {
  assert.deepEqual([...cvGaussianKernelFixed(7, 2)], [18, 34, 48, 56, 48, 34, 18]);
  for (const [n, s] of [[21, 4], [9, 1.5], [41, 8], [3, 0.5]] as const) {
    const k = cvGaussianKernelFixed(n, s);
    assert.equal(k.reduce((a, b) => a + b, 0), 256, `${n}, ${s}`);
    assert.deepEqual([...k], [...k].reverse());
  }
  assert.equal(a1111BlurKernelSize(4), 21); // 2 * int(10.5) + 1
  assert.equal(a1111BlurKernelSize(1), 7); // 2 * int(3.0) + 1
});

test("A1111 mask blur: horizontal then vertical, constant areas unchanged, a step becomes a symmetric ramp", () => {
  const m = rectMask(40, 40, 10, 30, 10, 30);
  const bx = a1111MaskBlur(m, 4, 0);
  for (let y = 0; y < 40; y++) {
    const inRows = y >= 10 && y < 30;
    for (let x = 0; x < 40; x++) if (!inRows) assert.equal(bx.data[y * 40 + x], 0); // (k, 1) kernel: rows stay apart
  }
  const row = [...bx.data.subarray(20 * 40, 21 * 40)];
  assert.equal(row[20], 254); // the 21-tap kernel at the centre of a 20-wide step still sees one 0 pixel (weight 1/256)
  assert.equal(row[0], 2); // reflect-101: pixel 10 enters the window of x = 0 from both sides, weight 1/256 each
  // left edge at 10 (first 255 pixel) mirrors the right edge at 29: v(10 - 1 - i) + v(10 + i) = 255 ± 1
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(row[9 - i] + row[10 + i] - 255) <= 1, `${i}: ${row[9 - i]} ${row[10 + i]}`);
  for (let i = 0; i < 20; i++) assert.equal(row[10 + i], row[29 - i]);
  const both = a1111MaskBlur(m, 4);
  assert.deepEqual(both.data, cvGaussianBlur(bx, 1, 21, 4).data);
  assert.deepEqual(a1111MaskBlur(m, 0, 0).data, m.data);
  assert.throws(() => a1111MaskBlur(m, -1), /mask blur must be >= 0/);
});

test("A1111 masked-content fill: unmasked pixels unchanged, masked ones take the surrounding colours", () => {
  const img = gradient(48, 32);
  const mask = rectMask(48, 32, 8, 24, 16, 32);
  // the masked pixels start as garbage: fill must not see them
  const dirty: RgbImage = { ...img, data: Uint8Array.from(img.data) };
  for (let y = 8; y < 24; y++) for (let x = 16; x < 32; x++) dirty.data.set([255, 0, 255], (y * 48 + x) * 3);
  const out = a1111Fill(dirty, mask);
  for (let p = 0; p < 48 * 32; p++) if (!mask.data[p]) for (let c = 0; c < 3; c++) assert.equal(out.data[3 * p + c], img.data[3 * p + c]);
  // blue is 100 everywhere around: the fill has about that too; red follows x roughly (left side darker than right)
  for (let y = 8; y < 24; y++) for (let x = 16; x < 32; x++) assert.ok(Math.abs(out.data[(y * 48 + x) * 3 + 2] - 100) <= 4); // 8-bit premultiply/blur/composite rounding
  const red = (x: number) => out.data[(16 * 48 + x) * 3];
  assert.ok(red(17) < red(30), `${red(17)} < ${red(30)}`);
  assert.throws(() => a1111Fill(img, rectMask(10, 10, 0, 1, 0, 1)), /mask is 10x10 but the image is 48x32/);
});

test("latent fill: 2 = latent noise replaces the masked latents with the given noise, 3 = latent nothing zeroes them", () => {
  const latents = { data: Float32Array.from({ length: 2 * 4 * 2 * 3 }, (_, i) => i + 1), shape: [2, 4, 2, 3] };
  const noise = { data: new Float32Array(48).fill(-7), shape: [2, 4, 2, 3] };
  const lm = { width: 3, height: 2, data: Float32Array.of(0, 1, 0, 1, 0.5, 0) };
  const nothing = applyLatentFill(latents, lm, 3);
  assert.deepEqual([...nothing.data.subarray(0, 6)], [1, 0, 3, 0, 2.5, 6]);
  const noised = applyLatentFill(latents, lm, 2, noise);
  assert.deepEqual([...noised.data.subarray(42, 48)], [43, -7, 45, -7, (47 - 7) / 2, 48]);
  assert.deepEqual(applyLatentFill(latents, lm, 1).data, latents.data);
  assert.throws(() => applyLatentFill(latents, lm, 2), /needs a noise tensor/);
  assert.throws(() => applyLatentFill(latents, { width: 2, height: 2, data: new Float32Array(4) }, 3), /latent mask is 2x2 but the latents are 3x2/);
  // A1111's latent mask: bicubic to the latent size, rounded
  const small = a1111LatentMask(rectMask(32, 32, 0, 16, 0, 32), 4, 4);
  assert.deepEqual([...small.data], [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test("outpaint: canvas, mask with overlap, margins rounded up to a multiple of 8, fills", () => {
  const img = gradient(20, 12);
  const o = outpaint(img, { left: 6, right: 0, top: 0, bottom: 5, overlap: 2, fill: "edge" });
  // width 26 -> 32: all 6 extra go left (right asked for 0); height 17 -> 24: all 7 extra go to the bottom
  assert.deepEqual([o.image.width, o.image.height, o.left, o.right, o.top, o.bottom], [32, 24, 12, 0, 0, 12]);
  const at = (x: number, y: number) => [...o.image.data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)];
  const src = (x: number, y: number) => [...img.data.subarray((y * 20 + x) * 3, (y * 20 + x) * 3 + 3)];
  assert.deepEqual(at(12, 0), src(0, 0));
  assert.deepEqual(at(0, 5), src(0, 5)); // edge: repeats the nearest original pixel
  assert.deepEqual(at(31, 23), src(19, 11));
  const mask = (x: number, y: number) => o.mask.data[y * 32 + x];
  assert.equal(mask(11, 0), 255); // new
  assert.equal(mask(12, 0), 255); // overlap
  assert.equal(mask(13, 0), 255);
  assert.equal(mask(14, 0), 0); // kept
  assert.equal(mask(31, 0), 0); // right side did not grow: no overlap there
  assert.equal(mask(20, 9), 0);
  assert.equal(mask(20, 10), 255); // bottom overlap
  assert.deepEqual(roundMargins(100, 30, 10, 64), [69, 23]); // 140 -> 192; A1111: 30 * 92 // 40
  assert.deepEqual(roundMargins(60, 0, 0, 8), [0, 4]);
  assert.deepEqual(roundMargins(64, 0, 0, 8), [0, 0]);
  const mean = outpaint(img, { right: 4, fill: "mean", multipleOf: 1 });
  assert.equal(mean.image.width, 24);
  const avg = [0, 1, 2].map((c) => Math.round(img.data.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / 240));
  assert.deepEqual([...mean.image.data.subarray((5 * 24 + 23) * 3, (5 * 24 + 23) * 3 + 3)], avg);
  const n1 = outpaint(img, { top: 8, fill: "noise", seed: 5 }), n2 = outpaint(img, { top: 8, fill: "noise", seed: 5 });
  assert.deepEqual(n1.image.data, n2.image.data);
  assert.notDeepEqual(n1.image.data, outpaint(img, { top: 8, fill: "noise", seed: 6 }).image.data);
  const black = outpaint(img, { top: 4, fill: "black" });
  assert.deepEqual([...black.image.data.subarray(0, 3)], [0, 0, 0]);
  const filled = outpaint(img, { left: 8, fill: "fill" }); // 28 -> 32 wide: the original at x 12
  assert.equal(filled.left, 12);
  // the new (black) area takes colours smeared in from the kept part (blue is 100 there), the kept part is unchanged
  assert.ok(Math.abs(filled.image.data[2] - 100) <= 4, `blue ${filled.image.data[2]}`);
  assert.deepEqual([...filled.image.data.subarray((3 * 32 + 12) * 3, (3 * 32 + 12) * 3 + 3)], [0, (3 * 255) / 11 | 0, 100]);
  assert.throws(() => outpaint(img, { left: -1 }), /left must be a whole number/);
  assert.throws(() => outpaint(img, { fill: "magic" as "edge" }), /fill "magic"/);
});
