/** The hires fix's upscale step: A1111's latent modes on the latents, or a pixel upscaler on the decoded image. */
import { rgbToTensor, toRgb8, type FloatTensor } from "../image/image.js";
import type { RgbImage } from "../image/png.js";
import { interpolate, type LatentInterpolation } from "../image/latent-resize.js";
import { resizePlanes, type ResizeFilter } from "../image/resize.js";
import type { Upscaler } from "../pipelines/upscaler.js";
import type { PipelineOutput } from "../pipelines/sdxl/index.js";
import { PipelineInputError } from "../pipelines/errors.js";
import type { HiresSize } from "./hires-size.js";

/** An image upscaler for the second pass: the image to exactly width x height. */
export type PixelUpscale = (image: RgbImage, width: number, height: number, signal?: AbortSignal) => Promise<RgbImage>;

/** A1111's latent upscale modes (modules/shared.py) as interpolate modes; null: not implemented here. */
export const LATENT_MODES: Readonly<Record<string, LatentInterpolation | null>> = {
  "Latent": "bilinear", "Latent (antialiased)": null, "Latent (bicubic)": "bicubic",
  "Latent (bicubic antialiased)": null, "Latent (nearest)": "nearest", "Latent (nearest-exact)": "nearest-exact",
};

export const isLatentMode = (name: string): boolean => Object.hasOwn(LATENT_MODES, name);

/** The interpolation of a latent mode; PipelineInputError for an unknown or antialiased one. */
export function checkLatentMode(mode: string): LatentInterpolation {
  if (!isLatentMode(mode)) throw new PipelineInputError(`unknown latent upscale mode ${JSON.stringify(mode)} (known: ${Object.keys(LATENT_MODES).join(", ")})`);
  const interp = LATENT_MODES[mode];
  if (!interp) throw new PipelineInputError(`the latent upscaler ${JSON.stringify(mode)} is not implemented (antialiased modes); use ${Object.keys(LATENT_MODES).filter((k) => LATENT_MODES[k]).join(", ")}`);
  return interp;
}

/** Latents [N, C, h, w] upscaled as A1111 does: interpolate to the size // f (the VAE scale factor, 8), then the centre crop. */
export function upscaleLatents(latents: FloatTensor, size: HiresSize, mode: string, f = 8): FloatTensor {
  const interp = checkLatentMode(mode);
  const up = interpolate(latents, size.upscaleHeight / f, size.upscaleWidth / f, interp);
  return crop(up, size.height / f, size.width / f);
}

/** A1111's truncate, in latent pixels (`unit` 8 for images): (extra // 2) off the top / left, the rest off the bottom / right. */
function crop(x: FloatTensor, h: number, w: number, unit = 1): FloatTensor {
  const [n, c, H, W] = x.shape;
  if (H === h && W === w) return x;
  const top = Math.floor((H - h) / unit / 2) * unit, left = Math.floor((W - w) / unit / 2) * unit;
  const out = new Float32Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) for (let y = 0; y < h; y++) {
    const from = p * H * W + (top + y) * W + left;
    out.set(x.data.subarray(from, from + w), (p * h + y) * w);
  }
  return { data: out, shape: [n, c, h, w] };
}

/** 8-bit RGB resized with PIL's filter to exactly w x h. */
function resizeRgb(image: RgbImage, w: number, h: number, filter: ResizeFilter): RgbImage {
  if (image.width === w && image.height === h) return image;
  const planes = resizePlanes(rgbToTensor(image).data, 3, image.height, image.width, h, w, filter);
  const data = new Uint8Array(w * h * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < w * h; p++) data[p * 3 + c] = Math.min(255, Math.max(0, Math.round(planes[c * w * h + p] * 255)));
  return { width: w, height: h, data };
}

/** A1111's model-free upscalers for the hires fix: "Lanczos", "Nearest", and "None" (which then resizes with Lanczos). */
export function builtinPixelUpscale(name: string): PixelUpscale {
  const filter: ResizeFilter | undefined = name === "Nearest" ? "nearest" : name === "Lanczos" || name === "None" ? "lanczos" : undefined;
  if (!filter) throw new PipelineInputError(`unknown upscaler ${JSON.stringify(name)} (known: ${[...Object.keys(LATENT_MODES), "Lanczos", "Nearest", "None"].join(", ")}, or an ESRGAN model)`);
  return async (image, w, h) => resizeRgb(image, w, h, filter);
}

/** An ESRGAN model as A1111's resize_image uses it: scale by the larger ratio, then Lanczos to the exact size. */
export function esrganPixelUpscale(upscaler: Upscaler): PixelUpscale {
  return async (image, w, h, signal) => {
    const scale = Math.max(w / image.width, h / image.height);
    return resizeRgb(await upscaler.upscale(image, { scale, signal }), w, h, "lanczos");
  };
}

/** The second pass's init: upscaled latents [N, C, h, w] or upscaled images [N, 3, H, W]. */
export async function upscaleFirstPass(first: PipelineOutput, size: HiresSize, upscaler: string | PixelUpscale, f: number, signal?: AbortSignal): Promise<FloatTensor> {
  if (typeof upscaler === "string" && isLatentMode(upscaler)) return upscaleLatents(first.latents, size, upscaler, f);
  const fn = typeof upscaler === "string" ? builtinPixelUpscale(upscaler) : upscaler;
  const n = first.images.shape[0];
  const { width: w, height: h } = size;
  const per = 3 * w * h, data = new Float32Array(n * per);
  for (let i = 0; i < n; i++) {
    const up = await fn(toRgb8(first.images, i), size.upscaleWidth, size.upscaleHeight, signal);
    const t = crop(rgbToTensor(up), h, w, f);
    data.set(t.data, i * per);
  }
  return { data, shape: [n, 3, h, w] };
}
