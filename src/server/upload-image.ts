/**
 * Images the server is sent whose alpha means something, decoded as 8-bit RGBA within the server's
 * pixel limit (a 400 naming the field otherwise): OpenAI's uploads (transparent = the area to edit)
 * and A1111's masks (an RGBA mask with transparency is read from its alpha, as A1111 does).
 */
import { decodeImageRgba, type RgbaImage } from "../image/rgba.js";
import { invalid } from "./errors.js";
import type { Limits } from "./validation.js";

export type { RgbaImage };

export function decodeUpload(bytes: Uint8Array, limits: Limits, param: string): RgbaImage {
  try {
    // the header's size is checked before decoding (an image bomb is refused without inflating it)
    return decodeImageRgba(bytes, param, { maxPixels: limits.maxSide * limits.maxSide });
  } catch (e) {
    throw invalid((e as Error).message, "invalid_image", param);
  }
}

/** A base64 (or data: URL) image field decoded as RGBA. */
export function decodeBase64Upload(data: string, limits: Limits, param: string): RgbaImage {
  const base64 = data.replace(/^data:[^;,]*;base64,/, "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64) || base64.length === 0) throw invalid(`${param} must be a base64-encoded PNG or JPEG`, "invalid_image", param);
  return decodeUpload(Buffer.from(base64, "base64"), limits, param);
}
