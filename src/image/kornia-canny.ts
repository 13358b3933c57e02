/**
 * ComfyUI's Canny node (comfy_extras/nodes_canny.py, kornia's canny): not cv2's (image/canny.ts).
 * On the image in [0, 1]:
 *   1. grey = 0.299 R + 0.587 G + 0.114 B;
 *   2. a 5x5 Gaussian blur of sigma 1 (the outer product of exp(-x²/2) at x = -2..2, normalised), the
 *      borders mirrored without repeating the edge (torch's "reflect");
 *   3. Sobel gradients (unnormalised), the borders repeating the edge ("replicate");
 *   4. magnitude sqrt(gx² + gy² + 1e-6), direction atan2(gy, gx) rounded to 45° (halves to even);
 *   5. non-maximum suppression: kept where the magnitude is strictly above both neighbours along the
 *      direction (a neighbour outside the image counts 0);
 *   6. weak edges above `low`, strong above `high`; hysteresis keeps the weak ones connected (8
 *      neighbours, through weak ones) to a strong one, as kornia's iterated convolution converges to.
 * Thresholds are on that magnitude scale (ComfyUI's 0.01-0.99). The result is 0 or 1 per pixel.
 * Written from that algorithm; sums run in float64 here where torch's float32 convolutions add in
 * their own order, so a pixel at a threshold or a 22.5° boundary may fall the other way.
 */
import type { RgbImage } from "./png.js";
import type { GrayImage } from "./mask.js";

const reflect = (i: number, n: number) => (n === 1 ? 0 : i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
const replicate = (i: number, n: number) => (i < 0 ? 0 : i >= n ? n - 1 : i);

/** The 5x5 kernel as ComfyUI builds it: linspace(-2, 2, 5), exp(-0.5 x²), normalised, outer product. */
function gaussianKernel(): Float32Array {
  const x = [-2, -1, 0, 1, 2].map((v) => Math.fround(Math.exp(-0.5 * v * v)));
  const sum = x.reduce((a, b) => a + b, 0);
  const k1 = x.map((v) => Math.fround(v / sum));
  const k = new Float32Array(25);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) k[i * 5 + j] = Math.fround(k1[i] * k1[j]);
  return k;
}

/** torch.round: halves to the even neighbour. */
const roundEven = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** Neighbour offsets [dy, dx] by direction index (0: +x, then clockwise in image coordinates, y down). */
const DIRECTIONS: readonly [number, number][] = [[0, 1], [1, 1], [1, 0], [1, -1], [0, -1], [-1, -1], [-1, 0], [-1, 1]];

export function korniaCanny(img: RgbImage, low: number, high: number): GrayImage {
  const { width: w, height: h } = img, n = w * h;
  const grey = new Float32Array(n);
  for (let p = 0; p < n; p++) grey[p] = 0.299 * (img.data[3 * p] / 255) + 0.587 * (img.data[3 * p + 1] / 255) + 0.114 * (img.data[3 * p + 2] / 255);
  const k = gaussianKernel();
  const blurred = new Float32Array(n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < 5; i++) {
        const yy = reflect(y + i - 2, h);
        for (let j = 0; j < 5; j++) s += k[i * 5 + j] * grey[yy * w + reflect(x + j - 2, w)];
      }
      blurred[y * w + x] = s;
    }
  }
  const magnitude = new Float32Array(n), direction = new Uint8Array(n);
  const at = (y: number, x: number) => blurred[replicate(y, h) * w + replicate(x, w)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const gx = at(y - 1, x + 1) - at(y - 1, x - 1) + 2 * (at(y, x + 1) - at(y, x - 1)) + at(y + 1, x + 1) - at(y + 1, x - 1);
      const gy = at(y + 1, x - 1) - at(y - 1, x - 1) + 2 * (at(y + 1, x) - at(y - 1, x)) + at(y + 1, x + 1) - at(y - 1, x + 1);
      magnitude[y * w + x] = Math.sqrt(gx * gx + gy * gy + 1e-6);
      const octant = roundEven((Math.atan2(gy, gx) * 180 / Math.PI) / 45);
      direction[y * w + x] = ((octant % 8) + 8) % 8;
    }
  }
  // non-maximum suppression, then the weak (1) and strong (2) edges
  const mag = (y: number, x: number) => (y < 0 || y >= h || x < 0 || x >= w ? 0 : magnitude[y * w + x]);
  // torch compares float32 magnitudes with the thresholds as float32
  const lo = Math.fround(low), hi = Math.fround(high);
  const level = new Uint8Array(n);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x, m = magnitude[p], d = direction[p];
      const [dy, dx] = DIRECTIONS[d];
      if (!(m - mag(y + dy, x + dx) > 0 && m - mag(y - dy, x - dx) > 0)) continue;
      // as kornia: 0.5 for each threshold passed (so with low above high, "weak" is the band between)
      level[p] = (m > lo ? 1 : 0) + (m > hi ? 1 : 0);
    }
  }
  // hysteresis: flood from the strong edges through the weak ones
  const out = new Uint8Array(n);
  const stack: number[] = [];
  for (let p = 0; p < n; p++) if (level[p] === 2) { out[p] = 255; stack.push(p); }
  while (stack.length) {
    const p = stack.pop()!, y = Math.floor(p / w), x = p % w;
    for (const [dy, dx] of DIRECTIONS) {
      const yy = y + dy, xx = x + dx;
      if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
      const q = yy * w + xx;
      if (level[q] === 1 && out[q] === 0) { out[q] = 255; stack.push(q); }
    }
  }
  return { width: w, height: h, data: out };
}
