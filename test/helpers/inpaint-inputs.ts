/** The inpainting fixtures' input images (../shared/fixtures/README-inpaint-controlnet.md formulas). */
import type { RgbImage } from "../../src/image/png.js";
import type { GrayImage } from "../../src/image/mask.js";

/** The rect mask: 255 where y0 <= y < y1 and x0 <= x < x1. */
export function rectMask(w: number, h: number, y0: number, y1: number, x0: number, x1: number): GrayImage {
  const data = new Uint8Array(w * h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) data[y * w + x] = 255;
  return { width: w, height: h, data };
}

/** The grad_checker init image. */
export function gradChecker(w: number, h: number): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 3;
    data[o] = Math.floor((x * 255) / (w - 1)); data[o + 1] = Math.floor((y * 255) / (h - 1));
    data[o + 2] = (Math.floor(x / 8) + Math.floor(y / 8)) % 2 === 0 ? 200 : 40;
  }
  return { width: w, height: h, data };
}
