/** The hires fix's target size, by A1111's rules (processing.py StableDiffusionProcessingTxt2Img). */
import { PipelineInputError } from "../pipelines/errors.js";

export interface HiresSize {
  /** The size of the second pass and of the result (multiples of 8). */
  width: number;
  height: number;
  /** The size upscaled to before a centre crop (both hr_resize_x and hr_resize_y given at another aspect ratio); else width, height. */
  upscaleWidth: number;
  upscaleHeight: number;
}

/** A1111 samples at size // 8 latent pixels: the result is the size rounded down to a multiple of 8. */
const down8 = (v: number) => Math.floor(v / 8) * 8;

/**
 * width x height (the first phase) to the target: x scale (truncated, as int() does) when neither
 * side is given; one side keeps the aspect ratio (the other floor-divided); both: upscaled to cover
 * them, then centre-cropped to them.
 */
export function hiresTargetSize(width: number, height: number, h: { scale?: number; width?: number; height?: number }): HiresSize {
  const rx = h.width ?? 0, ry = h.height ?? 0;
  for (const [name, v] of [["hires width", rx], ["hires height", ry]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new PipelineInputError(`${name} must be a non-negative integer, got ${v}`);
  }
  let ux: number, uy: number;
  if (rx === 0 && ry === 0) {
    const scale = h.scale ?? 2;
    if (!(Number.isFinite(scale) && scale > 0)) throw new PipelineInputError(`hires scale must be a positive number, got ${scale}`);
    ux = Math.trunc(width * scale); uy = Math.trunc(height * scale);
  } else if (ry === 0) {
    ux = rx; uy = Math.floor((rx * height) / width);
  } else if (rx === 0) {
    ux = Math.floor((ry * width) / height); uy = ry;
  } else if (width / height < rx / ry) {
    ux = rx; uy = Math.floor((rx * height) / width);
  } else {
    ux = Math.floor((ry * width) / height); uy = ry;
  }
  const tx = rx && ry ? rx : ux, ty = rx && ry ? ry : uy;
  const size = { width: down8(tx), height: down8(ty), upscaleWidth: down8(ux), upscaleHeight: down8(uy) };
  if (size.width < 8 || size.height < 8) throw new PipelineInputError(`the hires target ${tx}x${ty} is smaller than 8 pixels`);
  return size;
}
