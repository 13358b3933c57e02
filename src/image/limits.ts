/**
 * Limits that every image decoder checks from the header, before decoding: a few hundred bytes of
 * PNG or JPEG can declare a gigapixel image, and decoding it would take seconds and gigabytes.
 */
import { ImageFormatError } from "./errors.js";

export interface DecodeLimits {
  /** Largest width × height accepted (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
}

/** 4096 × 4096: above any SDXL size and most camera photos, ~50 MB as 8-bit RGB. */
export const DEFAULT_MAX_PIXELS = 4096 * 4096;
/** Total decompressed text (zTXt / compressed iTXt) a PNG may hold: metadata, not a payload. */
export const MAX_PNG_TEXT_BYTES = 1 << 20;
/** Scans a progressive JPEG may have; the decoder walks every block once per scan. libjpeg writes ~10. */
export const MAX_JPEG_SCANS = 64;

export function maxPixelsOf(limits: DecodeLimits = {}): number {
  const max = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (!(max > 0)) throw new RangeError(`maxPixels must be positive, got ${max}`);
  return max;
}

/** Throws an ImageFormatError naming the limit when a header's size is over it (or empty). */
export function checkImageSize(format: string, width: number, height: number, limits: DecodeLimits = {}): void {
  if (!(width > 0 && height > 0)) throw new ImageFormatError(`${format} has an empty size ${width}x${height}`);
  const max = maxPixelsOf(limits);
  if (width * height > max) {
    throw new ImageFormatError(`${format} is ${width}x${height} (${(width * height / 1e6).toFixed(1)} megapixels), over the limit of ${max} pixels (${(max / 1e6).toFixed(1)} megapixels)`);
  }
}
