/**
 * Outpainting: a larger canvas with the original inside, the new area pre-filled, and the inpainting
 * mask (255 = repaint) over the new area plus an optional overlap into the original. This is
 * A1111's "Poor man's outpainting" image preparation, whose masked-content modes map as:
 * "fill" = fill: "fill" (masking.fill smears the surrounding colours in), "original" = fill: "black"
 * (Image.new("RGB") is black and nothing fills it), "latent noise" / "latent nothing" = fill: "fill" in
 * pixels (A1111 runs masking.fill for every mode but "original") and then applyLatentFill 2 / 3 on
 * the latents. "edge", "mean" and "noise" are extra pre-fills for a plain inpainting model. A1111
 * draws its masks with PIL rectangles whose far corner is inclusive, so its right/bottom overlap is one
 * pixel less than its left/top one; here the overlap is the same on every side.
 */
import type { RgbImage } from "./png.js";
import type { GrayImage } from "./mask.js";
import { MT19937 } from "../random/mt19937.js";
import { a1111Fill } from "./inpaint-fill.js";

export type OutpaintFill = "edge" | "mean" | "noise" | "black" | "fill";

export interface OutpaintOptions {
  left?: number;
  top?: number;
  right?: number;
  bottom?: number;
  /**
   * How far (pixels) the mask reaches into the original on each extended side, so the seam is
   * repainted too. A1111's poor man's outpainting uses 2·mask_blur (its latent mask mask_blur // 2).
   */
  overlap?: number;
  /** Pre-fill of the new area (default "edge"). */
  fill?: OutpaintFill;
  /** Seed of the "noise" fill (default 0): the same seed gives the same pixels. */
  seed?: number;
  /** Round the new width and height up to a multiple of this (default 8, the VAE factor; A1111 uses 64; 1 = none). */
  multipleOf?: number;
}

export interface Outpainted {
  image: RgbImage;
  /** 255 = repaint (new area and overlap), 0 = keep. */
  mask: GrayImage;
  /** Where the original sits on the canvas, and the margins actually added (after rounding). */
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/**
 * Margins after rounding the total up to `m`: like A1111's poor man's outpainting, the extra pixels
 * are shared in proportion to the margins asked for (before = floor(asked·total / (before+after)));
 * with neither side asked for, the extra goes after (right / bottom) and is repainted too.
 */
export function roundMargins(size: number, before: number, after: number, m: number): [number, number] {
  const target = Math.ceil((size + before + after) / m) * m;
  const total = target - size;
  if (before + after === 0) return [0, total];
  const b = Math.floor((before * total) / (before + after));
  return [b, total - b];
}

function checkMargin(name: string, v: number): number {
  if (!(Number.isInteger(v) && v >= 0)) throw new RangeError(`outpaint ${name} must be a whole number >= 0, got ${v}`);
  return v;
}

/** Extends `image` by the margins, fills the new area and builds the mask. */
export function outpaint(image: RgbImage, opts: OutpaintOptions = {}): Outpainted {
  const m = opts.multipleOf ?? 8;
  if (!(Number.isInteger(m) && m >= 1)) throw new RangeError(`multipleOf must be a whole number >= 1, got ${m}`);
  const overlap = checkMargin("overlap", opts.overlap ?? 0);
  const [left, right] = roundMargins(image.width, checkMargin("left", opts.left ?? 0), checkMargin("right", opts.right ?? 0), m);
  const [top, bottom] = roundMargins(image.height, checkMargin("top", opts.top ?? 0), checkMargin("bottom", opts.bottom ?? 0), m);
  const W = image.width + left + right, H = image.height + top + bottom;
  const data = new Uint8Array(W * H * 3);
  const mask = new Uint8Array(W * H);
  // the kept rectangle: the original less the overlap on each side that grew
  const kx0 = left + (left > 0 ? overlap : 0), ky0 = top + (top > 0 ? overlap : 0);
  const kx1 = left + image.width - (right > 0 ? overlap : 0), ky1 = top + image.height - (bottom > 0 ? overlap : 0);
  const fill = newAreaFill(image, opts.fill ?? "edge", opts.seed ?? 0);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = y * W + x, sx = x - left, sy = y - top;
      const inside = sx >= 0 && sy >= 0 && sx < image.width && sy < image.height;
      if (inside) data.set(image.data.subarray((sy * image.width + sx) * 3, (sy * image.width + sx) * 3 + 3), p * 3);
      else fill(data, p, sx, sy);
      mask[p] = x >= kx0 && x < kx1 && y >= ky0 && y < ky1 ? 0 : 255;
    }
  }
  let out: RgbImage = { width: W, height: H, data };
  const maskImg = { width: W, height: H, data: mask };
  if (opts.fill === "fill") {
    // masking.fill smears from what is not masked, i.e. the kept rectangle; new pixels start black
    out = a1111Fill(out, maskImg);
  }
  return { image: out, mask: maskImg, left, top, right, bottom };
}

type Filler = (dst: Uint8Array, p: number, sx: number, sy: number) => void;

/** Per-pixel writer for the new area; sx, sy are coordinates in the original (outside it). */
function newAreaFill(img: RgbImage, mode: OutpaintFill, seed: number): Filler {
  const { width: w, height: h, data } = img;
  const n = w * h;
  const mean = [0, 0, 0], std = [0, 0, 0];
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) mean[c] += data[3 * p + c];
  for (let c = 0; c < 3; c++) mean[c] /= n;
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) std[c] += (data[3 * p + c] - mean[c]) ** 2;
  for (let c = 0; c < 3; c++) std[c] = Math.sqrt(std[c] / n);
  switch (mode) {
    case "black":
    case "fill":
      return () => {};
    case "edge":
      return (dst, p, sx, sy) => {
        const cx = Math.min(w - 1, Math.max(0, sx)), cy = Math.min(h - 1, Math.max(0, sy));
        dst.set(data.subarray((cy * w + cx) * 3, (cy * w + cx) * 3 + 3), p * 3);
      };
    case "mean":
      return (dst, p) => { for (let c = 0; c < 3; c++) dst[p * 3 + c] = Math.round(mean[c]); };
    case "noise": {
      // Gaussian noise with the original's per-channel mean and spread, Box-Muller on MT19937 in canvas order
      const rng = new MT19937(seed >>> 0);
      const uniform = () => (rng.nextU32() + 0.5) / 4294967296;
      return (dst, p) => {
        for (let c = 0; c < 3; c++) {
          const g = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
          dst[p * 3 + c] = Math.min(255, Math.max(0, Math.round(mean[c] + std[c] * g)));
        }
      };
    }
    default:
      throw new RangeError(`outpaint fill ${JSON.stringify(mode)} is not edge, mean, noise, black or fill`);
  }
}
