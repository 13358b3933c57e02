/**
 * diffusers' padding_mask_crop ("only masked" inpainting): the mask's bounding box, grown by the
 * padding and widened to the output's aspect ratio, is cropped from the image and the mask and
 * resized to the full size (PIL Lanczos, resize_mode "fill"); after inpainting that crop, the result
 * is resized back into the box and the original image is laid over it outside the mask (apply_overlay).
 * As in diffusers this works on 8-bit images.
 */
import { isRgbImage, rgbToTensor, toRgb8, type FloatTensor } from "../../image/image.js";
import type { RgbImage } from "../../image/png.js";
import { grayToMask, rgbToGray, type GrayImage } from "../../image/mask.js";
import { getCropRegion, type CropBox } from "../../image/crop-region.js";
import { crop } from "../../image/raster.js";
import { diffusersResize } from "../../image/resize-modes.js";
import { applyOverlay } from "../../image/overlay.js";
import { PipelineInputError } from "../errors.js";
import type { MaskInput } from "./inpaint.js";

export interface MaskCrop {
  box: CropBox;
  /** The crop of the image and of the mask at the full size. */
  image: RgbImage;
  mask: FloatTensor;
  /** What the overlay needs afterwards. */
  original: RgbImage;
  originalMask: GrayImage;
}

export function cropAroundMask(image: FloatTensor | RgbImage, maskImage: MaskInput, padding: number): MaskCrop {
  if (!isRgbImage(image) || !isRgbImage(maskImage)) throw new PipelineInputError("paddingMaskCrop needs the image and the mask as 8-bit images (as diffusers needs PIL images)");
  if (!(Number.isInteger(padding) && padding >= 0)) throw new PipelineInputError(`paddingMaskCrop must be a whole number of pixels, got ${padding}`);
  const { width, height } = image;
  const gray = rgbToGray(maskImage);
  if (gray.width !== width || gray.height !== height) throw new PipelineInputError(`the mask is ${gray.width}x${gray.height} but the image is ${width}x${height}; they must be the same size`);
  if (!gray.data.some((v) => v >= 128)) throw new PipelineInputError("the mask is all black: nothing to repaint (white marks the area to repaint)");
  const box = getCropRegion(gray, width, height, padding);
  const img = diffusersResize(crop(image, ...box), width, height, "fill") as RgbImage;
  // diffusers' "fill" pastes onto an RGB canvas; the mask processor then converts back to "L"
  const resized = diffusersResize(crop(gray, ...box), width, height, "fill");
  const m = grayToMask(resized.data.length === 3 * width * height ? rgbToGray(resized as RgbImage) : resized as GrayImage);
  return { box, image: img, mask: { data: m.data, shape: [height, width] }, original: image, originalMask: gray };
}

/** The crop's images [N, H, W, 3] pasted back into the original: apply_overlay per image, as 8-bit values / 255. */
export function overlayCrop(c: MaskCrop, images: FloatTensor): FloatTensor {
  const [n, h, w] = images.shape;
  const data = new Float32Array(images.data.length);
  for (let i = 0; i < n; i++) {
    const out = applyOverlay(c.originalMask, c.original, toRgb8(images, i), c.box);
    const t = rgbToTensor(out).data; // [3, H, W] -> [H, W, 3]
    for (let p = 0; p < h * w; p++) for (let ch = 0; ch < 3; ch++) data[(i * h * w + p) * 3 + ch] = t[ch * h * w + p];
  }
  return { data, shape: images.shape };
}
