/**
 * An uploaded image file (OpenAI edits / variations) decoded as 8-bit RGBA within the server's
 * pixel limit: the alpha channel is what marks the area to edit.
 */
import { decodeImage } from "../image/image.js";
import { invalid } from "./errors.js";
import type { Limits } from "./validation.js";

export interface RgbaImage { width: number; height: number; data: Uint8Array }

export function decodeUpload(bytes: Buffer, limits: Limits, param: string): RgbaImage {
  try {
    // TODO(merge main): decodeImageRgba keeps the alpha; until then every pixel is opaque
    const rgb = decodeImage(bytes, param, { maxPixels: limits.maxSide * limits.maxSide });
    const n = rgb.width * rgb.height, data = new Uint8Array(4 * n).fill(255);
    for (let i = 0; i < n; i++) { data[4 * i] = rgb.data[3 * i]; data[4 * i + 1] = rgb.data[3 * i + 1]; data[4 * i + 2] = rgb.data[3 * i + 2]; }
    return { width: rgb.width, height: rgb.height, data };
  } catch (e) {
    throw invalid((e as Error).message, "invalid_image", param);
  }
}
