/**
 * A1111's "Masked content" (inpainting_fill): 0 fill, 1 original, 2 latent noise, 3 latent nothing.
 * A1111 runs the pixel fill (masking.fill) for every mode but "original", then for 2 and 3 also
 * replaces the masked part of the encoded init latents.
 */
import type { RgbImage } from "./png.js";
import type { GrayImage, Mask } from "./mask.js";
import { checkMaskSize } from "./mask.js";
import type { FloatTensor } from "./image.js";
import { pilGaussianBlur } from "./gaussian-blur.js";
import { alphaCompositeInPlace } from "./overlay.js";
import { resizeGray } from "./pil-resize.js";

/** A1111's inpainting_fill values. */
export type InpaintingFill = 0 | 1 | 2 | 3;

/** The blur radii and repeat counts of masking.fill: wide blurs first, then ever sharper ones composited over them. */
const FILL_PASSES: [radius: number, repeats: number][] = [[256, 1], [64, 1], [16, 2], [4, 4], [2, 2], [0, 1]];

/** PIL's RGBa -> RGBA: un-premultiply, c = min(255, floor(255·c / a)) for 0 < a < 255. */
function unpremultiply(rgba: Uint8Array): Uint8Array {
  const out = Uint8Array.from(rgba);
  for (let i = 0; i < out.length; i += 4) {
    const a = out[i + 3];
    if (a === 0 || a === 255) continue;
    for (let c = 0; c < 3; c++) out[i + c] = Math.min(255, Math.floor((255 * rgba[i + c]) / a));
  }
  return out;
}

/**
 * A1111 masking.fill(image, mask) ("fill"): the masked area (mask 255) takes colours smeared in from
 * the unmasked surroundings. The unmasked pixels, premultiplied by 255 - mask, are blurred with PIL's
 * GaussianBlur at radii 256, 64, 16, 4, 2, 0 and alpha-composited in that order, so each pixel ends
 * up with its nearest surroundings' colour, sharp where the mask is thin. PIL-exact 8-bit arithmetic.
 */
export function a1111Fill(image: RgbImage, mask: GrayImage): RgbImage {
  checkMaskSize(mask, image);
  const { width: w, height: h } = image;
  // the original pasted through the inverted mask, kept premultiplied ("RGBa"): c·(255-m)/255, alpha 255-m
  const premul = new Uint8Array(w * h * 4);
  for (let p = 0; p < w * h; p++) {
    const inv = 255 - mask.data[p];
    for (let c = 0; c < 3; c++) {
      const t = image.data[3 * p + c] * inv + 128;
      premul[4 * p + c] = ((t >> 8) + t) >> 8; // PIL's DIV255
    }
    premul[4 * p + 3] = inv;
  }
  const acc = new Uint8Array(w * h * 4); // Image.new("RGBA"): transparent black
  for (const [radius, repeats] of FILL_PASSES) {
    const blurred = unpremultiply(pilGaussianBlur(premul, w, h, 4, radius));
    for (let r = 0; r < repeats; r++) alphaCompositeInPlace(acc, blurred);
  }
  const out = new Uint8Array(w * h * 3);
  for (let p = 0; p < w * h; p++) for (let c = 0; c < 3; c++) out[3 * p + c] = acc[4 * p + c];
  return { width: w, height: h, data: out };
}

/**
 * The latent side of inpainting_fill 2 and 3, on init latents [N,C,h,w] and a latent mask [h,w] in
 * [0,1] (1 = repaint; A1111 rounds it by default): 2 (latent noise) gives latents·(1-m) + noise·m,
 * 3 (latent nothing) gives latents·(1-m); 0 and 1 return a copy. `noise` ([N,C,h,w], e.g. the seeded
 * randn the pipeline draws) is needed for 2 only.
 */
export function applyLatentFill(latents: FloatTensor, latentMask: Mask, mode: InpaintingFill, noise?: FloatTensor): FloatTensor {
  const [n, c, h, w] = latents.shape;
  if (latents.shape.length !== 4) throw new RangeError(`latents must be [N,C,h,w], got [${latents.shape}]`);
  if (latentMask.width !== w || latentMask.height !== h) throw new RangeError(`the latent mask is ${latentMask.width}x${latentMask.height} but the latents are ${w}x${h}`);
  const out = Float32Array.from(latents.data);
  if (mode === 0 || mode === 1) return { data: out, shape: [...latents.shape] };
  if (mode !== 2 && mode !== 3) throw new RangeError(`inpainting_fill ${mode} is not 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)`);
  if (mode === 2 && (!noise || noise.data.length !== out.length)) throw new RangeError(`latent noise needs a noise tensor of shape [${latents.shape}]`);
  const plane = h * w;
  for (let i = 0; i < n * c; i++) {
    for (let p = 0; p < plane; p++) {
      const m = latentMask.data[p], k = i * plane + p;
      out[k] = out[k] * (1 - m) + (mode === 2 ? noise!.data[k] * m : 0);
    }
  }
  return { data: out, shape: [...latents.shape] };
}

/**
 * A1111's latent mask: the (blurred) "L" mask resized to the latent size with PIL's default BICUBIC,
 * / 255, rounded to 0/1 when `round` (A1111's mask_round, on by default).
 */
export function a1111LatentMask(mask: GrayImage, latentW: number, latentH: number, round = true): Mask {
  const small = resizeGray(mask, latentW, latentH, "bicubic");
  const data = new Float32Array(small.data.length);
  for (let i = 0; i < data.length; i++) data[i] = round ? Math.round(small.data[i] / 255) : small.data[i] / 255;
  return { width: latentW, height: latentH, data };
}
