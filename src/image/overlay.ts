/**
 * diffusers 0.27.2 `VaeImageProcessor.apply_overlay(mask, init_image, image, crop_coords)`: puts the
 * generated image (or, with padding_mask_crop, the generated crop resized back into its box) under
 * the original image, which is alpha-composited over it with alpha = 255 - mask. Unmasked pixels
 * (mask 0) come out exactly as the original. PIL's 8-bit arithmetic throughout: premultiplied "RGBa"
 * paste through an "L" mask, un-premultiply, and the integer alpha_composite.
 */
import type { RgbImage } from "./png.js";
import type { GrayImage } from "./mask.js";
import { checkMaskSize } from "./mask.js";
import type { CropBox } from "./crop-region.js";
import { diffusersResize } from "./resize-modes.js";
import { blank, paste } from "./raster.js";

/** PIL's DIV255: (v + 128 + ((v + 128) >> 8)) >> 8, exact rounding of v / 255 for v < 65536. */
const div255 = (v: number) => { const t = v + 128; return ((t >> 8) + t) >> 8; };
const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * The original image as straight RGBA whose alpha is 255 - mask, as PIL builds it: an empty "RGBa"
 * image, the (premultiplied, opaque) original pasted through the inverted mask, then convert("RGBA").
 */
export function maskedOriginal(init: RgbImage, mask: GrayImage): Uint8Array {
  checkMaskSize(mask, init, "original image");
  const n = init.width * init.height;
  const out = new Uint8Array(n * 4);
  for (let p = 0; p < n; p++) {
    const a = 255 - mask.data[p];
    const pa = div255(255 * a); // = a
    for (let c = 0; c < 3; c++) {
      const pc = div255(init.data[3 * p + c] * a); // premultiplied colour after the paste
      out[4 * p + c] = pa === 0 || pa === 255 ? pc : clip8(Math.floor((255 * pc) / pa));
    }
    out[4 * p + 3] = pa;
  }
  return out;
}

/** PIL's Image.alpha_composite(dst, src) in place on straight RGBA (7 extra bits of precision, rounded). */
export function alphaCompositeInPlace(dst: Uint8Array, src: Uint8Array): void {
  const PB = 7;
  const shiftDiv255 = (a: number) => Math.floor((Math.floor(a / 256) + a) / 256);
  for (let i = 0; i < dst.length; i += 4) {
    const sa = src[i + 3];
    if (sa === 0) continue;
    const blend = dst[i + 3] * (255 - sa);
    const outa255 = sa * 255 + blend;
    const coef1 = Math.floor((sa * 255 * 255 * (1 << PB)) / outa255);
    const coef2 = 255 * (1 << PB) - coef1;
    for (let c = 0; c < 3; c++) {
      const t = src[i + c] * coef1 + dst[i + c] * coef2;
      dst[i + c] = Math.floor(shiftDiv255(t + (0x80 << PB)) / (1 << PB));
    }
    dst[i + 3] = shiftDiv255(outa255 + 0x80);
  }
}

/**
 * diffusers 0.27.2 apply_overlay. `mask`: the user's (unbinarized) "L" mask; `init`: the original
 * image; `image`: the generated image; `crop`: the padding_mask_crop box, or undefined. The canvas is
 * the generated image's size and the original and mask are resized to it ("default" Lanczos): as in
 * diffusers, the original must already be that size for the crop box to line up.
 */
export function applyOverlay(mask: GrayImage, init: RgbImage, image: RgbImage, crop?: CropBox): RgbImage {
  const { width, height } = image;
  const initR = diffusersResize(init, width, height) as RgbImage;
  const maskR = diffusersResize(mask, width, height) as GrayImage;
  let base: RgbImage = image;
  if (crop) {
    const [x, y, x2, y2] = crop;
    if (!(x2 > x && y2 > y)) throw new RangeError(`crop box [${crop}] is empty`);
    const canvas = blank(width, height, 3);
    paste(canvas, diffusersResize(image, x2 - x, y2 - y, "crop"), x, y);
    base = canvas;
  }
  const rgba = new Uint8Array(width * height * 4);
  paste({ width, height, data: rgba }, base, 0, 0);
  alphaCompositeInPlace(rgba, maskedOriginal(initR, maskR));
  const out = blank(width, height, 3);
  paste(out, { width, height, data: rgba }, 0, 0);
  return out;
}

/**
 * A1111's overlay mask when the whole picture is inpainted (not "only masked"): the blurred mask
 * doubled and clipped, min(255, 2·m), so the generated image shows fully from the blur's midpoint in.
 */
export function a1111OverlayMask(mask: GrayImage): GrayImage {
  return { width: mask.width, height: mask.height, data: Uint8Array.from(mask.data, (v) => Math.min(255, 2 * v)) };
}

/**
 * A1111 processing.apply_overlay: `overlay` = maskedOriginal(original, overlay mask) (A1111's
 * overlay_images entry); with `pasteTo` = [x, y, w, h] (inpaint_full_res) the generated image is first
 * resized into that box (resize mode 1, crop) on a transparent canvas of the overlay's size
 * (uncrop). Then the overlay is alpha-composited over it. Unlike diffusers, the canvas outside the
 * box stays transparent black, so the overlay's colour shows there as is.
 */
export function a1111ApplyOverlay(image: RgbImage, overlay: { width: number; height: number; data: Uint8Array }, pasteTo?: [x: number, y: number, w: number, h: number]): RgbImage {
  const { width, height } = overlay;
  const rgba = new Uint8Array(width * height * 4);
  const canvas = { width, height, data: rgba };
  if (pasteTo) {
    const [x, y, w, h] = pasteTo;
    paste(canvas, diffusersResize(image, w, h, "crop"), x, y);
  } else {
    if (image.width !== width || image.height !== height) throw new RangeError(`the generated image is ${image.width}x${image.height} but the overlay is ${width}x${height}`);
    paste(canvas, image, 0, 0);
  }
  alphaCompositeInPlace(rgba, overlay.data);
  const out = blank(width, height, 3);
  paste(out, canvas, 0, 0);
  return out;
}
