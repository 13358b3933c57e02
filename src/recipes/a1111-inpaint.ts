/**
 * AUTOMATIC1111's inpainting settings (modules/processing.py, StableDiffusionProcessingImg2Img) over
 * the pipeline's inpaint (diffusers' algorithm):
 *   - the mask: an RGBA mask's alpha (> 128) or the grey level; inverted when asked; blurred
 *     (mask_blur_x / _y, OpenCV's Gaussian as A1111 calls it);
 *   - inpaint_full_res ("only masked"): the mask's box grown by the padding and widened to the
 *     output's aspect ratio, cropped from image and mask, resized to the full size (A1111's resize
 *     mode 2), inpainted, and pasted back into the box;
 *   - inpainting_fill: 0 the masked area pre-filled from its surroundings (A1111's masking.fill),
 *     1 the original, 2 latent noise, 3 latent nothing (the masked init latents replaced before noising);
 *   - the original laid over the result outside the (blurred) mask, as A1111's apply_overlay.
 * The denoising itself binarizes the blurred mask at 0.5, as diffusers does (A1111's default
 * mask_round rounds its latent mask the same way).
 */
import type { InpaintOptions, PipelineOutput, StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { rgbToTensor, toRgb8, type FloatTensor } from "../image/image.js";
import type { RgbImage } from "../image/png.js";
import { rgbToRgba, type RgbaImage } from "../image/rgba.js";
import { a1111BinaryMask, grayToMask, type GrayImage } from "../image/mask.js";
import { a1111MaskBlur } from "../image/cv-gaussian.js";
import { a1111CropRegion } from "../image/crop-region.js";
import { crop } from "../image/raster.js";
import { a1111Resize } from "../image/resize-modes.js";
import { a1111ApplyOverlay, a1111OverlayMask, maskedOriginal } from "../image/overlay.js";
import { a1111Fill, type InpaintingFill } from "../image/inpaint-fill.js";
import { PipelineInputError } from "../pipelines/errors.js";

/** A1111's masked_content choices (inpainting_fill 0..3). */
export const INPAINTING_FILLS = ["fill", "original", "latent noise", "latent nothing"] as const;

export interface A1111InpaintSettings {
  /** inpainting_mask_invert: repaint the black area instead of the white one. */
  invertMask?: boolean;
  /** mask_blur_x / mask_blur_y (mask_blur sets both), pixels. Default 0 here (A1111's API default is 4: the server sets it). */
  maskBlurX?: number;
  maskBlurY?: number;
  /** inpainting_fill: 0 fill, 1 original (default), 2 latent noise, 3 latent nothing. */
  inpaintingFill?: InpaintingFill;
  /** inpaint_full_res ("only masked"): inpaint the padded crop around the mask at full size. */
  inpaintFullRes?: boolean;
  /** inpaint_full_res_padding in pixels. Default 32, as A1111. */
  inpaintFullResPadding?: number;
}

export interface A1111InpaintOptions extends Omit<InpaintOptions, "image" | "maskImage" | "paddingMaskCrop"> {
  image: RgbImage;
  /** White = repaint (before invertMask); RGB, or RGBA whose alpha is the mask when it has transparency. */
  maskImage: RgbImage | RgbaImage;
  settings?: A1111InpaintSettings;
}

const isRgba = (m: RgbImage | RgbaImage): boolean => m.data.length === 4 * m.width * m.height;

/** A1111's processed mask (binary for alpha masks, grey otherwise), inverted and blurred as asked. */
export function a1111Mask(maskImage: RgbImage | RgbaImage, s: A1111InpaintSettings): GrayImage {
  const rgba: RgbaImage = isRgba(maskImage) ? maskImage : rgbToRgba(maskImage);
  let mask = a1111BinaryMask(rgba);
  if (s.invertMask) mask = { ...mask, data: mask.data.map((v) => 255 - v) };
  const bx = s.maskBlurX ?? 0, by = s.maskBlurY ?? 0;
  for (const [name, v] of [["mask_blur_x", bx], ["mask_blur_y", by]] as const) {
    if (!(Number.isInteger(v) && v >= 0 && v <= 64)) throw new PipelineInputError(`${name} must be a whole number in [0, 64], got ${v}`);
  }
  return bx > 0 || by > 0 ? a1111MaskBlur(mask, bx, by) : mask;
}

/**
 * Inpaints with A1111's settings; the output images have the init image's size. `inpaint` runs the
 * prepared call (default pipe.inpaint; with a refiner, recipes/refiner.ts inpaintRefined).
 */
export async function a1111Inpaint(pipe: StableDiffusionXLPipeline, opts: A1111InpaintOptions, inpaint = (o: InpaintOptions) => pipe.inpaint(o)): Promise<PipelineOutput> {
  const { settings = {}, image, maskImage, ...rest } = opts;
  if (maskImage.width !== image.width || maskImage.height !== image.height) {
    throw new PipelineInputError(`the mask is ${maskImage.width}x${maskImage.height} but the image is ${image.width}x${image.height}; they must be the same size`);
  }
  const fillMode = settings.inpaintingFill ?? 1;
  if (![0, 1, 2, 3].includes(fillMode)) throw new PipelineInputError(`inpainting_fill must be 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing), got ${fillMode}`);
  const mask = a1111Mask(maskImage, settings);
  if (!mask.data.some((v) => v >= 128)) throw new PipelineInputError("the mask is all black: nothing to repaint (white marks the area to repaint)");
  const { width, height } = image;
  let work = image, workMask = mask, pasteTo: [number, number, number, number] | undefined;
  let overlayMask = a1111OverlayMask(mask);
  if (settings.inpaintFullRes) {
    const padding = settings.inpaintFullResPadding ?? 32;
    if (!(Number.isInteger(padding) && padding >= 0)) throw new PipelineInputError(`inpaint_full_res_padding must be a whole number >= 0, got ${padding}`);
    const box = a1111CropRegion(mask, width, height, padding)!;
    const [x1, y1, x2, y2] = box;
    pasteTo = [x1, y1, x2 - x1, y2 - y1];
    overlayMask = mask;
    work = a1111Resize(crop(image, ...box), width, height, 2) as RgbImage;
    workMask = a1111Resize(crop(mask, ...box), width, height, 2) as GrayImage;
    if (workMask.data.length !== width * height) workMask = { width, height, data: workMask.data.filter((_, i) => i % 3 === 0) };
  }
  const overlay = { width, height, data: maskedOriginal(image, overlayMask) };
  if (fillMode !== 1) work = a1111Fill(work, workMask);
  const m = grayToMask(workMask);
  const maskTensor: FloatTensor = { data: m.data, shape: [height, width] };
  const out = await inpaint({ ...rest, image: work, maskImage: maskTensor, latentFill: fillMode === 2 ? "noise" : fillMode === 3 ? "zeros" : undefined });
  if (rest.outputType === "latent") return out;
  const [n, h, w] = out.images.shape;
  const data = new Float32Array(out.images.data.length);
  for (let i = 0; i < n; i++) {
    const t = rgbToTensor(a1111ApplyOverlay(toRgb8(out.images, i), overlay, pasteTo)).data;
    for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) data[(i * h * w + p) * 3 + c] = t[c * h * w + p];
  }
  return { ...out, images: { data, shape: out.images.shape } };
}
