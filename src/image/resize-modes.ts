/**
 * The resize modes of diffusers 0.27.2 (VaeImageProcessor.resize: "default", "fill", "crop") and of
 * AUTOMATIC1111 (images.resize_image: 0 just resize, 1 crop and resize, 2 resize and fill), all with
 * PIL-exact Lanczos on 8-bit data. Both libraries build the "fill"/"crop" canvas with
 * Image.new("RGB"), so those modes return 3 channels even for a grey mask (whose convert("L") back is
 * lossless, R = G = B).
 */
import { pilResize } from "./pil-resize.js";
import { blank, channelsOf, paste, type Image8 } from "./raster.js";

export type DiffusersResizeMode = "default" | "fill" | "crop";
/** A1111's resize_mode: 0 just resize, 1 crop and resize, 2 resize and fill. */
export type A1111ResizeMode = 0 | 1 | 2;

const ifloor = (a: number, b: number) => Math.floor(a / b); // Python // on non-negative ints

function lanczos(img: Image8, w: number, h: number, box?: [number, number, number, number]): Image8 {
  return { width: w, height: h, data: pilResize(img.data, img.width, img.height, channelsOf(img), w, h, "lanczos", box) };
}

/** Keep the aspect ratio, cover width × height, centre, cut the overflow (diffusers "crop", A1111 mode 1). */
function resizeAndCrop(img: Image8, width: number, height: number): Image8 {
  const ratio = width / height, srcRatio = img.width / img.height;
  const srcW = ratio > srcRatio ? width : ifloor(img.width * height, img.height);
  const srcH = ratio <= srcRatio ? height : ifloor(img.height * width, img.width);
  const res = blank(width, height, 3);
  paste(res, lanczos(img, srcW, srcH), ifloor(width, 2) - ifloor(srcW, 2), ifloor(height, 2) - ifloor(srcH, 2));
  return res;
}

/**
 * Keep the aspect ratio, fit inside width × height, centre, and fill the two empty bands with the
 * resized image's edge resampled through a zero-size box (diffusers "fill", A1111 mode 2).
 */
function resizeAndFill(img: Image8, width: number, height: number): Image8 {
  const ratio = width / height, srcRatio = img.width / img.height;
  const srcW = ratio < srcRatio ? width : ifloor(img.width * height, img.height);
  const srcH = ratio >= srcRatio ? height : ifloor(img.height * width, img.width);
  const resized = lanczos(img, srcW, srcH);
  const res = blank(width, height, 3);
  paste(res, resized, ifloor(width, 2) - ifloor(srcW, 2), ifloor(height, 2) - ifloor(srcH, 2));
  if (ratio < srcRatio) {
    const fillH = ifloor(height, 2) - ifloor(srcH, 2);
    if (fillH > 0) {
      paste(res, lanczos(resized, width, fillH, [0, 0, width, 0]), 0, 0);
      paste(res, lanczos(resized, width, fillH, [0, resized.height, width, resized.height]), 0, fillH + srcH);
    }
  } else if (ratio > srcRatio) {
    const fillW = ifloor(width, 2) - ifloor(srcW, 2);
    if (fillW > 0) {
      paste(res, lanczos(resized, fillW, height, [0, 0, 0, height]), 0, 0);
      paste(res, lanczos(resized, fillW, height, [resized.width, 0, resized.width, height]), fillW + srcW, 0);
    }
  }
  return res;
}

function checkTarget(width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new RangeError(`resize target must be positive integers, got ${width}x${height}`);
}

/**
 * diffusers 0.27.2 `VaeImageProcessor.resize(image, height, width, resize_mode)` for a PIL image
 * (Lanczos, the processors' configured resample): "default" stretches (same size: a copy, channels
 * kept), "fill" fits and fills, "crop" covers and crops.
 */
export function diffusersResize(img: Image8, width: number, height: number, mode: DiffusersResizeMode = "default"): Image8 {
  checkTarget(width, height);
  if (mode === "default") return lanczos(img, width, height);
  if (mode === "fill") return resizeAndFill(img, width, height);
  if (mode === "crop") return resizeAndCrop(img, width, height);
  throw new RangeError(`resize_mode ${JSON.stringify(mode)} is not supported (default, fill, crop)`);
}

/**
 * A1111 `images.resize_image(resize_mode, im, width, height)` with no img2img upscaler (the default
 * "None": plain Lanczos): 0 stretches, 1 crops, 2 fills.
 */
export function a1111Resize(img: Image8, width: number, height: number, mode: A1111ResizeMode): Image8 {
  checkTarget(width, height);
  if (mode === 0) return lanczos(img, width, height);
  if (mode === 1) return resizeAndCrop(img, width, height);
  if (mode === 2) return resizeAndFill(img, width, height);
  throw new RangeError(`A1111 resize_mode ${mode} is not 0 (just resize), 1 (crop and resize) or 2 (resize and fill)`);
}
