/**
 * diffusers 0.27.2 StableDiffusionXLInpaintPipeline's input preparation in one call: optional
 * padding_mask_crop box, crop, resize ("default", or "fill" with a crop), image -> [-1,1], mask ->
 * grey -> binarized, masked_image = image · (mask < 0.5). Unlike diffusers it refuses a mask of another
 * size than the image and a mask with nothing to repaint, with errors that say so.
 */
import type { FloatTensor } from "./image.js";
import type { RgbImage } from "./png.js";
import { MaskError, assertMaskNotEmpty, binarizeMask, checkMaskSize, grayToMask, rgbToGray, type GrayImage, type Mask } from "./mask.js";
import { getCropRegion, type CropBox } from "./crop-region.js";
import { crop } from "./raster.js";
import { diffusersResize } from "./resize-modes.js";

export interface InpaintInputs {
  /** [1,3,H,W] in [-1,1] (CASE.init_image_preprocessed). */
  image: FloatTensor;
  /** Binarized [H,W] mask, 1 = repaint (CASE.mask_preprocessed). */
  mask: Mask;
  /** [1,3,H,W]: image where mask < 0.5, else 0 (what the masked-image latents encode). */
  maskedImage: FloatTensor;
  /** The padding_mask_crop box in the original image, for applyOverlay; undefined without it. */
  crop?: CropBox;
  width: number;
  height: number;
}

export interface InpaintPreprocessOptions {
  /** diffusers' padding_mask_crop: inpaint only the masked region's box, grown by this many pixels. */
  paddingMaskCrop?: number;
  /** Width and height are rounded down to a multiple of this (get_default_height_width; SDXL: 8). */
  vaeScaleFactor?: number;
}

/** `mask` as the "L" image diffusers' mask_processor reads: grey as is, RGB through convert("L"). */
function asGray(mask: GrayImage | RgbImage): GrayImage {
  return mask.data.length === mask.width * mask.height * 3 ? rgbToGray(mask) : mask;
}

export function prepareInpaintInputs(image: RgbImage, maskImage: GrayImage | RgbImage, width: number, height: number, opts: InpaintPreprocessOptions = {}): InpaintInputs {
  const vsf = opts.vaeScaleFactor ?? 8;
  const w = width - (width % vsf), h = height - (height % vsf);
  if (!(w > 0 && h > 0)) throw new RangeError(`width and height must be at least ${vsf}, got ${width}x${height}`);
  const mask = asGray(maskImage);
  checkMaskSize(mask, image);
  let box: CropBox | undefined;
  let img: RgbImage = image, m: GrayImage = mask;
  if (opts.paddingMaskCrop !== undefined) {
    box = getCropRegion(mask, w, h, opts.paddingMaskCrop);
    img = crop(image, ...box) as RgbImage;
    m = crop(mask, ...box);
  }
  const mode = box ? "fill" : "default";
  const imgR = diffusersResize(img, w, h, mode);
  const maskR = asGray(diffusersResize(m, w, h, mode));
  const bin = binarizeMask(grayToMask(maskR));
  try {
    assertMaskNotEmpty(bin);
  } catch (e) {
    throw new MaskError(`${(e as Error).message}${box ? " (after cropping and resizing)" : ""}`);
  }
  const plane = w * h;
  const t = new Float32Array(3 * plane), masked = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      // float32 as numpy: level / 255, then 2x - 1
      const v = Math.fround(2 * Math.fround(imgR.data[3 * p + c] / 255) - 1);
      t[c * plane + p] = v;
      masked[c * plane + p] = bin.data[p] < 0.5 ? v : 0;
    }
  }
  return { image: { data: t, shape: [1, 3, h, w] }, mask: bin, maskedImage: { data: masked, shape: [1, 3, h, w] }, crop: box, width: w, height: h };
}
