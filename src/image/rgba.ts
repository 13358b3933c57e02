/**
 * 8-bit RGBA images and an alpha-keeping decode, for inputs whose transparency means something
 * (OpenAI images.edit: transparent pixels are the ones to edit).
 */
import { decodeImage } from "./image.js";
import { ImageFormatError } from "./errors.js";
import type { DecodeLimits } from "./limits.js";
import { decodePngRgba, type RgbImage } from "./png.js";

/** An 8-bit RGBA image, row-major HWC, straight (not premultiplied) alpha. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const PNG_MAGIC = [137, 80, 78, 71];

/**
 * Decodes PNG (alpha from its alpha channel or tRNS chunk, else 255) or JPEG (alpha 255) as RGBA.
 * Same format sniffing, size limits and error messages (prefixed by `where`) as decodeImage.
 */
export function decodeImageRgba(bytes: Uint8Array, where: string, limits: DecodeLimits = {}): RgbaImage {
  if (bytes.length >= 4 && PNG_MAGIC.every((v, i) => bytes[i] === v)) {
    try {
      const { width, height, data } = decodePngRgba(bytes, limits);
      return { width, height, data };
    } catch (e) {
      throw new ImageFormatError(`${where}: ${(e as Error).message}`);
    }
  }
  return rgbToRgba(decodeImage(bytes, where, limits));
}

/** Opaque RGBA from RGB. */
export function rgbToRgba(img: RgbImage): RgbaImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n * 4);
  for (let p = 0; p < n; p++) {
    data[4 * p] = img.data[3 * p]; data[4 * p + 1] = img.data[3 * p + 1]; data[4 * p + 2] = img.data[3 * p + 2]; data[4 * p + 3] = 255;
  }
  return { width: img.width, height: img.height, data };
}

/** Drops alpha, as PIL's convert("RGB") does (no compositing onto a background). */
export function rgbaToRgb(img: RgbaImage): RgbImage {
  const n = img.width * img.height;
  const data = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    data[3 * p] = img.data[4 * p]; data[3 * p + 1] = img.data[4 * p + 1]; data[3 * p + 2] = img.data[4 * p + 2];
  }
  return { width: img.width, height: img.height, data };
}
