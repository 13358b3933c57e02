/**
 * src/image/canny.ts against (a) edges derived by hand for step images and (b) an independent,
 * deliberately plain implementation written here from OpenCV's documented algorithm (Sobel by kernel
 * tables, direction by atan2 angle buckets at 22.5° and 67.5°, hysteresis by growing to a fixed
 * point). Tolerance: exact, every pixel. The only place the two could differ is OpenCV's fixed-point
 * tan(22.5°) (13573 / 2^15) against the true angle, for |dy|/|dx| within 2e-6 of tan 22.5° or tan 67.5°;
 * the test asserts no pixel of these images is that close, so exactness is the right bar.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { canny, rgbToGray } from "../src/image/canny.js";
import type { RgbImage } from "../src/image/png.js";

function image(w: number, h: number, rgb: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(rgb(x, y), 3 * (y * w + x));
  return { width: w, height: h, data };
}

/** Edge pixels (x, y) of a canny() result, checking the three channels agree and hold only 0/255. */
function edges(img: RgbImage): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < img.width * img.height; i++) {
    const [r, g, b] = img.data.subarray(3 * i, 3 * i + 3);
    assert.ok(r === g && g === b && (r === 0 || r === 255), `pixel ${i}: ${r},${g},${b}`);
    if (r === 255) out.add(`${i % img.width},${Math.floor(i / img.width)}`);
  }
  return out;
}

/** The independent reference: OpenCV's algorithm, written out the long way. */
function reference(img: RgbImage, low: number, high: number): { edges: Set<string>; nearTie: boolean } {
  const { width: w, height: h } = img;
  const kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]];
  const ky = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]];
  const px = (x: number, y: number, c: number) => img.data[3 * (Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) + c];
  const G: { gx: number; gy: number; m: number }[][] = [];
  let nearTie = false;
  for (let y = 0; y < h; y++) {
    G.push([]);
    for (let x = 0; x < w; x++) {
      let best = { gx: 0, gy: 0, m: -1 };
      for (let c = 0; c < 3; c++) {
        let gx = 0, gy = 0;
        for (let j = 0; j < 3; j++) for (let i = 0; i < 3; i++) { gx += kx[j][i] * px(x + i - 1, y + j - 1, c); gy += ky[j][i] * px(x + i - 1, y + j - 1, c); }
        const m = Math.abs(gx) + Math.abs(gy);
        if (m > best.m) best = { gx, gy, m };
      }
      G[y].push(best);
    }
  }
  const mag = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : G[y][x].m);
  const strong = new Set<string>(), weak = new Set<string>();
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const { gx, gy, m } = G[y][x];
    if (m <= Math.floor(low)) continue;
    const deg = (Math.atan2(Math.abs(gy), Math.abs(gx)) * 180) / Math.PI;
    if (Math.abs(deg - 22.5) < 1e-4 || Math.abs(deg - 67.5) < 1e-4) nearTie = true;
    let keep: boolean;
    if (deg < 22.5) keep = m > mag(x - 1, y) && m >= mag(x + 1, y);
    else if (deg > 67.5) keep = m > mag(x, y - 1) && m >= mag(x, y + 1);
    else if (gx * gy > 0) keep = m > mag(x - 1, y - 1) && m > mag(x + 1, y + 1);
    else keep = m > mag(x + 1, y - 1) && m > mag(x - 1, y + 1);
    if (!keep) continue;
    (m > Math.floor(high) ? strong : weak).add(`${x},${y}`);
  }
  for (let grew = true; grew;) {
    grew = false;
    for (const p of weak) {
      const [x, y] = p.split(",").map(Number);
      let touches = false;
      for (let oy = -1; oy <= 1; oy++) for (let ox = -1; ox <= 1; ox++) if (strong.has(`${x + ox},${y + oy}`)) touches = true;
      if (touches) { strong.add(p); weak.delete(p); grew = true; }
    }
  }
  return { edges: strong, nearTie };
}

const sorted = (s: Set<string>) => [...s].sort();

test("canny: a vertical step keeps exactly the column before it (OpenCV's > / >= tie rule), all rows", () => {
  const img = image(16, 16, (x) => (x >= 8 ? [255, 255, 255] : [0, 0, 0]));
  assert.deepEqual(sorted(edges(canny(img, 100, 200))), sorted(new Set(Array.from({ length: 16 }, (_, y) => `7,${y}`))));
  const horizontal = image(16, 16, (_x, y) => (y >= 8 ? [255, 255, 255] : [0, 0, 0]));
  assert.deepEqual(sorted(edges(canny(horizontal, 100, 200))), sorted(new Set(Array.from({ length: 16 }, (_, x) => `${x},7`))));
});

test("canny: a step whose gradient (4·40 = 160) is under high but over low has no seed, so no edges", () => {
  const img = image(16, 16, (x) => (x >= 8 ? [70, 70, 70] : [30, 30, 30]));
  assert.equal(edges(canny(img, 100, 200)).size, 0);
  assert.equal(edges(canny(img, 100, 159)).size, 16);
  assert.equal(edges(canny(img, 159, 100)).size, 16, "thresholds are swapped when low > high");
  assert.equal(edges(canny(img, 100, 160)).size, 0, "seeds need magnitude > high");
});

const squareAndDiagonal = (colour: boolean) => image(16, 16, (x, y) => {
  if (x >= 3 && x < 9 && y >= 3 && y < 9) return colour ? [200, 40, 30] : [200, 200, 200];
  if (x + y === 20) return colour ? [30, 60, 160] : [120, 120, 120];
  if (x === y && x > 9) return colour ? [30, 170, 30] : [90, 90, 90];
  return [30, 30, 30];
});

for (const colour of [false, true]) {
  for (const [low, high] of [[100, 200], [50, 100], [20, 300]]) {
    test(`canny: square and diagonals (${colour ? "colour, channel maximum" : "grey"}, ${low}/${high}) equal the plain reference exactly`, () => {
      const img = squareAndDiagonal(colour);
      const ref = reference(img, low, high);
      assert.equal(ref.nearTie, false, "no pixel at a fixed-point direction tie");
      const got = edges(canny(img, low, high));
      assert.ok(ref.edges.size > 10, `reference found ${ref.edges.size} edge pixels`);
      assert.deepEqual(sorted(got), sorted(ref.edges));
    });
  }
}

test("canny: grayscale option uses OpenCV's fixed-point RGB2GRAY; grey images give the same edges either way", () => {
  const rgb = image(3, 1, (x) => (x === 0 ? [255, 0, 0] : x === 1 ? [0, 255, 0] : [0, 0, 255]));
  assert.deepEqual([...rgbToGray(rgb)], [76, 150, 29]);
  const grey = squareAndDiagonal(false);
  assert.deepEqual(canny(grey, 50, 100, { grayscale: true }).data, canny(grey, 50, 100).data);
  // In colour the red square's edge is seen at full strength per channel; grey conversion weakens it.
  const colour = squareAndDiagonal(true);
  assert.notDeepEqual(canny(colour, 100, 200, { grayscale: true }).data, canny(colour, 100, 200).data);
});

test("canny: L2 gradient compares squared magnitudes with squared thresholds", () => {
  const img = image(16, 16, (x) => (x >= 8 ? [70, 70, 70] : [30, 30, 30]));
  assert.equal(edges(canny(img, 100, 159, { l2Gradient: true })).size, 16);
  assert.equal(edges(canny(img, 100, 160, { l2Gradient: true })).size, 0);
});
