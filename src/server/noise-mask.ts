/**
 * A job's ComfyUI noise mask (NoiseMaskSpec) as the pipeline's inpaint takes it: the mask image, and
 * the init image with VAEEncodeForInpaint's grey (exactly 0.5, which no 8-bit level is) under greyOut.
 */
import { decodeImage, rgbToTensor, type FloatTensor } from "../image/image.js";
import { rgbToGray } from "../image/mask.js";
import type { RgbImage } from "../image/png.js";
import type { NoiseMaskSpec } from "./job.js";

export function noiseMaskInputs(spec: NoiseMaskSpec, image: RgbImage): { image: RgbImage | FloatTensor; maskImage: RgbImage } {
  const maskImage = decodeImage(Buffer.from(spec.mask, "base64"), "noise mask");
  if (spec.greyOut === undefined) return { image, maskImage };
  const grey = rgbToGray(decodeImage(Buffer.from(spec.greyOut, "base64"), "grey-out mask"));
  if (grey.width !== image.width || grey.height !== image.height) throw new Error(`the grey-out mask is ${grey.width}x${grey.height}, the image ${image.width}x${image.height}`);
  const t = rgbToTensor(image), n = image.width * image.height;
  for (let p = 0; p < n; p++) if (grey.data[p] >= 128) for (let c = 0; c < 3; c++) t.data[c * n + p] = 0.5;
  return { image: t, maskImage };
}
