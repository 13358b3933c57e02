/**
 * Conversions between the pipeline's float images ([N,H,W,3] in [0,1], diffusers' output_type="np"),
 * 8-bit RGB (what PIL would save) and the init-image tensor of img2img ([1,3,H,W] in [0,1]).
 */
import { readFileSync } from "node:fs";
import jpeg from "jpeg-js";
import { ImageFormatError, decodePng, type RgbImage } from "./png.js";
import { checkJpeg } from "./jpeg-header.js";
import { maxPixelsOf, type DecodeLimits } from "./limits.js";

export { ImageFormatError } from "./png.js";
export { DEFAULT_MAX_PIXELS, MAX_PNG_TEXT_BYTES, MAX_JPEG_SCANS, type DecodeLimits } from "./limits.js";

/** A float tensor with its shape (row-major). */
export interface FloatTensor {
  data: Float32Array;
  shape: number[];
}

/** numpy's round-half-to-even, as in diffusers' numpy_to_pil: (images * 255).round().astype("uint8"). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Image `index` of [N,H,W,3] float images in [0,1] as 8-bit RGB. */
/** An 8-bit image rather than a float tensor (the two kinds of image the pipelines take). */
export const isRgbImage = (x: unknown): x is RgbImage => (x as RgbImage).width !== undefined;

export function toRgb8(images: FloatTensor, index = 0): RgbImage {
  const [n, h, w, c] = images.shape;
  if (images.shape.length !== 4 || c !== 3) throw new ImageFormatError(`expected images [N,H,W,3], got [${images.shape}]`);
  if (index < 0 || index >= n) throw new RangeError(`image index ${index} outside 0..${n - 1}`);
  const size = h * w * 3;
  const src = images.data.subarray(index * size, (index + 1) * size);
  const data = new Uint8Array(size);
  // Math.fround: numpy multiplies in float32 before rounding
  for (let i = 0; i < size; i++) data[i] = Math.min(255, Math.max(0, roundHalfEven(Math.fround(src[i] * 255))));
  return { width: w, height: h, data };
}

/** 8-bit RGB (HWC) -> [1,3,H,W] float in [0,1], like torchvision's to_tensor / diffusers' pil_to_numpy. */
export function rgbToTensor(img: RgbImage): FloatTensor {
  const { width: w, height: h } = img;
  const data = new Float32Array(3 * h * w);
  for (let p = 0; p < h * w; p++) for (let c = 0; c < 3; c++) data[c * h * w + p] = img.data[p * 3 + c] / 255;
  return { data, shape: [1, 3, h, w] };
}

/**
 * Decodes PNG or baseline/progressive JPEG bytes as 8-bit RGB; other formats are named in the error.
 * The size in the header is checked against `limits.maxPixels` (default DEFAULT_MAX_PIXELS) first.
 */
export function decodeImage(bytes: Uint8Array, where: string, limits: DecodeLimits = {}): RgbImage {
  const latin1 = (a: number, b: number) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("latin1", a, b);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes, where, limits);
  if (bytes.length >= 12 && latin1(0, 4) === "RIFF" && latin1(8, 12) === "WEBP") {
    throw new ImageFormatError(`${where}: WebP is not supported; convert the image to PNG or JPEG`);
  }
  try {
    return decodePng(bytes, limits);
  } catch (e) {
    throw new ImageFormatError(`${where}: ${(e as Error).message}`);
  }
}

function decodeJpeg(bytes: Uint8Array, where: string, limits: DecodeLimits): RgbImage {
  try {
    checkJpeg(bytes, limits);
    // jpeg-js's own limits as a second line: ~24 bytes per pixel covers its coefficient buffers and output.
    const maxPixels = maxPixelsOf(limits);
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: Math.ceil((maxPixels * 24) / 2 ** 20) + 64 });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    if (e instanceof ImageFormatError) throw new ImageFormatError(`${where}: ${e.message}`);
    throw new ImageFormatError(`${where}: not a readable JPEG (${(e as Error).message ?? e})`);
  }
}

/** Reads a PNG or JPEG file as 8-bit RGB (size limits as decodeImage). */
export function readImageFile(path: string, limits: DecodeLimits = {}): RgbImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new ImageFormatError(`cannot read image ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  return decodeImage(bytes, path, limits);
}
