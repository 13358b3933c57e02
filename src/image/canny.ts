/**
 * Canny edges as OpenCV's cv2.Canny(image, low, high) computes them (apertureSize 3), which is what
 * AUTOMATIC1111's sd-webui-controlnet "canny" preprocessor and diffusers' SDXL canny examples call.
 *
 * - Gradients: 3x3 Sobel on 8-bit values, border replicated, integer dx and dy.
 * - Colour input (the default, as those tools pass their RGB array straight to cv2.Canny): OpenCV
 *   takes, per pixel, the channel with the largest magnitude (the first on ties) and its dx, dy.
 *   `{ grayscale: true }` first converts with OpenCV's RGB2GRAY (fixed point, 14 bits).
 * - Magnitude |dx| + |dy| (L2gradient false), or dx² + dy² against squared thresholds.
 * - Non-maximum suppression in 4 directions, chosen by OpenCV's fixed-point tan(22.5°) tests; along
 *   the direction a pixel must beat the neighbour before it (>) and at least tie the one after (>=),
 *   so a two-pixel-wide ridge keeps exactly one pixel; diagonals need > on both sides.
 * - Hysteresis: pixels above high seed edges that grow, 8-connected, through suppressed-maximum pixels
 *   above low. Thresholds are floored, and swapped when low > high, as OpenCV does.
 */
import type { RgbImage } from "./png.js";

export interface CannyOptions {
  /** Convert to grey first (OpenCV COLOR_RGB2GRAY) instead of OpenCV's per-channel maximum. */
  grayscale?: boolean;
  /** Euclidean magnitude (cv2.Canny's L2gradient=True). */
  l2Gradient?: boolean;
}

/** OpenCV's 8-bit RGB2GRAY: round((4899 R + 9617 G + 1868 B) / 2^14). */
export function rgbToGray(img: RgbImage): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const d = img.data;
    out[i] = (d[3 * i] * 4899 + d[3 * i + 1] * 9617 + d[3 * i + 2] * 1868 + 8192) >> 14;
  }
  return out;
}

/** Per-pixel dx, dy and magnitude of the strongest of `channels` interleaved 8-bit planes. */
function gradients(src: Uint8Array, w: number, h: number, channels: number, l2: boolean) {
  const dx = new Int32Array(w * h), dy = new Int32Array(w * h), mag = new Int32Array(w * h);
  const at = (x: number, y: number, c: number) => src[(Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))) * channels + c];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let best = -1;
      for (let c = 0; c < channels; c++) {
        const gx = at(x + 1, y - 1, c) + 2 * at(x + 1, y, c) + at(x + 1, y + 1, c) - at(x - 1, y - 1, c) - 2 * at(x - 1, y, c) - at(x - 1, y + 1, c);
        const gy = at(x - 1, y + 1, c) + 2 * at(x, y + 1, c) + at(x + 1, y + 1, c) - at(x - 1, y - 1, c) - 2 * at(x, y - 1, c) - at(x + 1, y - 1, c);
        const m = l2 ? gx * gx + gy * gy : Math.abs(gx) + Math.abs(gy);
        if (m > best) { best = m; dx[y * w + x] = gx; dy[y * w + x] = gy; }
      }
      mag[y * w + x] = best;
    }
  }
  return { dx, dy, mag };
}

const SHIFT = 15;
/** round(tan(22.5°) · 2^15), OpenCV's constant. */
const TG22 = Math.round(0.4142135623730950488 * (1 << SHIFT));

/** The edge map (0 or 255) of an RGB image, in all three channels. */
export function canny(img: RgbImage, lowThreshold: number, highThreshold: number, opts: CannyOptions = {}): RgbImage {
  const { width: w, height: h } = img;
  const l2 = opts.l2Gradient ?? false;
  const channels = opts.grayscale ? 1 : 3;
  const { dx, dy, mag } = gradients(opts.grayscale ? rgbToGray(img) : img.data, w, h, channels, l2);
  let lo = lowThreshold, hi = highThreshold;
  if (lo > hi) [lo, hi] = [hi, lo];
  if (l2) {
    lo = Math.min(32767, lo); hi = Math.min(32767, hi);
    if (lo > 0) lo *= lo;
    if (hi > 0) hi *= hi;
  }
  const low = Math.floor(lo), high = Math.floor(hi);
  // Magnitude outside the image counts as 0 for the comparisons.
  const m = (x: number, y: number) => (x < 0 || y < 0 || x >= w || y >= h ? 0 : mag[y * w + x]);

  // 2: edge seed, 1: candidate (a maximum above low), 0: not an edge.
  const state = new Uint8Array(w * h);
  const stack: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = mag[i];
      if (v <= low) continue;
      const ax = Math.abs(dx[i]);
      const ay = Math.abs(dy[i]) * 2 ** SHIFT;
      const tg22x = ax * TG22;
      let isMax: boolean;
      if (ay < tg22x) {
        isMax = v > m(x - 1, y) && v >= m(x + 1, y);
      } else if (ay > tg22x + ax * 2 ** (SHIFT + 1)) {
        isMax = v > m(x, y - 1) && v >= m(x, y + 1);
      } else {
        // Same signs: the gradient runs along the main diagonal (down-right in image rows).
        const s = (dx[i] < 0) !== (dy[i] < 0) ? -1 : 1;
        isMax = v > m(x - s, y - 1) && v > m(x + s, y + 1);
      }
      if (!isMax) continue;
      if (v > high) { state[i] = 2; stack.push(i); } else state[i] = 1;
    }
  }
  while (stack.length) {
    const i = stack.pop()!;
    const x = i % w, y = (i - x) / w;
    for (let oy = -1; oy <= 1; oy++) {
      for (let ox = -1; ox <= 1; ox++) {
        const nx = x + ox, ny = y + oy;
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const j = ny * w + nx;
        if (state[j] === 1) { state[j] = 2; stack.push(j); }
      }
    }
  }
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) if (state[i] === 2) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = 255;
  return { width: w, height: h, data };
}
