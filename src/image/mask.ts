/**
 * Inpainting masks. Two forms: `GrayImage` (8-bit, PIL mode "L": what PIL-exact filters such as the
 * Gaussian blur and the Lanczos resize work on) and `Mask` (float [H,W] in [0,1], 1 = repaint: what
 * diffusers' mask_processor hands the pipeline).
 */
import type { RgbImage } from "./png.js";
import type { RgbaImage } from "./rgba.js";

/** An 8-bit single-channel image (PIL mode "L"), row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A float mask, row-major [height, width], values in [0,1]; 1 = repaint, 0 = keep. */
export interface Mask {
  width: number;
  height: number;
  data: Float32Array;
}

/** A mask or image given to inpainting is unusable (wrong size, nothing to repaint): the message says why. */
export class MaskError extends Error {}

/** PIL's convert("L"): ITU-R 601-2 luma in 16-bit fixed point, L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16. */
export function rgbToGray(img: RgbImage): GrayImage {
  const n = img.width * img.height;
  if (img.data.length !== n * 3) throw new MaskError(`RGB data has ${img.data.length} bytes for ${img.width}x${img.height}`);
  const out = new Uint8Array(n);
  for (let p = 0, i = 0; p < n; p++, i += 3) out[p] = (img.data[i] * 19595 + img.data[i + 1] * 38470 + img.data[i + 2] * 7471 + 0x8000) >>> 16;
  return { width: img.width, height: img.height, data: out };
}

/** A grey level as R = G = B (PIL's convert("RGB") of an "L" image). */
export function grayToRgb(g: GrayImage): RgbImage {
  const data = new Uint8Array(g.data.length * 3);
  for (let p = 0; p < g.data.length; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = g.data[p];
  return { width: g.width, height: g.height, data };
}

/** 8-bit levels -> [0,1] (level / 255, in float32 like numpy's pil_to_numpy). */
export function grayToMask(g: GrayImage): Mask {
  const data = new Float32Array(g.data.length);
  for (let i = 0; i < data.length; i++) data[i] = g.data[i] / 255;
  return { width: g.width, height: g.height, data };
}

/** A mask image given as RGB (a user's black/white PNG): its luma as PIL's convert("L") gives, as [0,1]. */
export function maskFromRgb(img: RgbImage): Mask {
  return grayToMask(rgbToGray(img));
}

/**
 * OpenAI images.edit convention: the transparent pixels of the RGBA image are the ones to edit, so
 * mask = 1 - alpha/255 (fully transparent = 1 = repaint, opaque = 0 = keep).
 */
export function maskFromAlpha(img: RgbaImage): Mask {
  const n = img.width * img.height;
  if (img.data.length !== n * 4) throw new MaskError(`RGBA data has ${img.data.length} bytes for ${img.width}x${img.height}`);
  const data = new Float32Array(n);
  for (let p = 0; p < n; p++) data[p] = (255 - img.data[4 * p + 3]) / 255;
  return { width: img.width, height: img.height, data };
}

/** True when any pixel of the RGBA image is not fully opaque (an images.edit image that carries its own mask). */
export function hasTransparency(img: RgbaImage): boolean {
  for (let p = 3; p < img.data.length; p += 4) if (img.data[p] !== 255) return true;
  return false;
}

/** 1 - mask: repaint what was kept (A1111's inpainting_mask_invert). */
export function invertMask(m: Mask): Mask {
  const data = new Float32Array(m.data.length);
  for (let i = 0; i < data.length; i++) data[i] = 1 - m.data[i];
  return { width: m.width, height: m.height, data };
}

/** diffusers' mask_processor binarize: < 0.5 -> 0, else 1. */
export function binarizeMask(m: Mask): Mask {
  const data = new Float32Array(m.data.length);
  for (let i = 0; i < data.length; i++) data[i] = m.data[i] < 0.5 ? 0 : 1;
  return { width: m.width, height: m.height, data };
}

/** Float mask -> 8-bit levels, round(v * 255) clamped (for PIL-exact filters on a mask built in float). */
export function maskToGray(m: Mask): GrayImage {
  const data = new Uint8Array(m.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, Math.round(m.data[i] * 255)));
  return { width: m.width, height: m.height, data };
}

/** Number of pixels that would be repainted after binarizing (mask >= 0.5). */
export function repaintedPixels(m: Mask): number {
  let n = 0;
  for (let i = 0; i < m.data.length; i++) if (!(m.data[i] < 0.5)) n++;
  return n;
}

/**
 * Undefined when something is to be repainted; otherwise a message the caller can raise (all pixels
 * are < 0.5 after binarize, so inpainting would return the input unchanged).
 */
export function emptyMaskReason(m: Mask): string | undefined {
  if (repaintedPixels(m) > 0) return undefined;
  let max = 0;
  for (let i = 0; i < m.data.length; i++) max = Math.max(max, m.data[i]);
  return `the mask has nothing to repaint: all ${m.width}x${m.height} pixels are below 0.5 (max ${max.toFixed(3)}); white (or, for an RGBA image, transparent) marks the area to repaint`;
}

/** Throws a MaskError with emptyMaskReason when nothing is to be repainted. */
export function assertMaskNotEmpty(m: Mask): void {
  const why = emptyMaskReason(m);
  if (why) throw new MaskError(why);
}

/** Throws a MaskError naming both sizes when the mask is not the image's size. */
export function checkMaskSize(m: { width: number; height: number }, img: { width: number; height: number }, what = "image"): void {
  if (m.width !== img.width || m.height !== img.height) {
    throw new MaskError(`the mask is ${m.width}x${m.height} but the ${what} is ${img.width}x${img.height}; they must be the same size`);
  }
}

/** [H,W] mask as a FloatTensor-like [1,1,H,W] plane (diffusers' mask_processor output layout). */
export function maskTensor(m: Mask): { data: Float32Array; shape: number[] } {
  return { data: Float32Array.from(m.data), shape: [1, 1, m.height, m.width] };
}

/**
 * A1111's create_binary_mask: an RGBA mask image that has transparency uses its alpha (> 128 -> 255,
 * else 0, when `round`; as is otherwise); anything else its convert("L") luma. Note the polarity: in
 * A1111 an opaque painted pixel (alpha 255) is the one to repaint, unlike OpenAI's maskFromAlpha.
 */
export function a1111BinaryMask(img: RgbaImage, round = true): GrayImage {
  const n = img.width * img.height;
  if (hasTransparency(img)) {
    const data = new Uint8Array(n);
    for (let p = 0; p < n; p++) { const a = img.data[4 * p + 3]; data[p] = round ? (a > 128 ? 255 : 0) : a; }
    return { width: img.width, height: img.height, data };
  }
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) rgb.set(img.data.subarray(4 * p, 4 * p + 3), 3 * p);
  return rgbToGray({ width: img.width, height: img.height, data: rgb });
}
