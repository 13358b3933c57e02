/**
 * AUTOMATIC1111's inpainting settings over the pipeline's inpaint (diffusers' algorithm): the mask
 * inverted when asked, then blurred (mask_blur), "only masked" inpainting (inpaint_full_res: the
 * padded crop around the mask inpainted at full size and pasted back), what the masked area starts
 * from (inpainting_fill), and the final composite of the original over the result outside the mask.
 */
import type { InpaintOptions, PipelineOutput, StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import type { FloatTensor } from "../image/image.js";
import type { RgbImage } from "../image/png.js";
import { PipelineInputError } from "../pipelines/errors.js";

/** A1111's masked_content choices (inpainting_fill). */
export const INPAINTING_FILLS = ["fill", "original", "latent noise", "latent nothing"] as const;

export interface A1111InpaintSettings {
  /** inpainting_mask_invert: repaint the black area instead of the white one. */
  invertMask?: boolean;
  /** mask_blur_x / mask_blur_y (mask_blur sets both): Gaussian blur of the mask in pixels. Default 4, as A1111. */
  maskBlurX?: number;
  maskBlurY?: number;
  /** inpainting_fill: 0 fill, 1 original (default), 2 latent noise, 3 latent nothing. */
  inpaintingFill?: 0 | 1 | 2 | 3;
  /** inpaint_full_res ("only masked"): inpaint the padded crop around the mask at full size. */
  inpaintFullRes?: boolean;
  /** inpaint_full_res_padding in pixels. Default 32. */
  inpaintFullResPadding?: number;
}

export interface A1111InpaintOptions extends Omit<InpaintOptions, "image" | "maskImage"> {
  image: RgbImage;
  /** White = repaint (before invertMask). */
  maskImage: RgbImage;
  settings?: A1111InpaintSettings;
}

/** Inverts an 8-bit mask image. */
export function invertMaskImage(mask: RgbImage): RgbImage {
  return { width: mask.width, height: mask.height, data: mask.data.map((v) => 255 - v) };
}

/** Inpaints with A1111's settings; the output images have the init image's size. */
export async function a1111Inpaint(pipe: StableDiffusionXLPipeline, opts: A1111InpaintOptions): Promise<PipelineOutput> {
  const s = opts.settings ?? {};
  const mask = s.invertMask ? invertMaskImage(opts.maskImage) : opts.maskImage;
  if (mask.width !== opts.image.width || mask.height !== opts.image.height) {
    throw new PipelineInputError(`the mask is ${mask.width}x${mask.height} but the image is ${opts.image.width}x${opts.image.height}; they must be the same size`);
  }
  if ((s.maskBlurX ?? 0) > 0 || (s.maskBlurY ?? 0) > 0 || s.inpaintFullRes || (s.inpaintingFill ?? 1) !== 1) {
    throw new PipelineInputError("mask blur, inpaint_full_res and inpainting_fill other than 1 (original) are not wired yet");
  }
  const { settings: _, ...rest } = opts;
  return pipe.inpaint({ ...rest, image: opts.image, maskImage: mask as RgbImage | FloatTensor });
}
