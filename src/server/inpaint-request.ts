/**
 * A1111's inpainting fields of `/sdapi/v1/img2img` checked into an InpaintSpec, with A1111's API
 * defaults (modules/processing.py StableDiffusionProcessingImg2Img, which modules/api/models.py turns
 * into the request model): mask_blur_x / mask_blur_y 4 (mask_blur, when given, sets both),
 * inpainting_fill 0 (fill), inpaint_full_res true ("only masked"), inpaint_full_res_padding 0,
 * inpainting_mask_invert 0, initial_noise_multiplier 1 (opts.initial_noise_multiplier), mask_round true.
 * (The web UI's own defaults differ: fill "original", "whole picture", padding 32; its clients send them.)
 */
import type { RgbImage } from "../image/png.js";
import { encodePng } from "../image/png.js";
import { invalid } from "./errors.js";
import type { InpaintSpec } from "./job.js";
import type { Fields, Limits } from "./validation.js";
import { a1111BinaryMask, grayToRgb, rgbToGray } from "../image/mask.js";
import { decodeBase64Upload } from "./upload-image.js";

export const A1111_INPAINT_DEFAULTS = {
  maskBlur: 4, inpaintingFill: 0, inpaintFullRes: true, inpaintFullResPadding: 0, invertMask: false,
} as const;

/** Whether a mask (after the inversion) has anything to repaint: a pixel the pipeline's 0.5 threshold keeps. */
export function maskHasWhite(mask: RgbImage, inverted: boolean): boolean {
  // the grey level as PIL's convert("L") gives it, which A1111 and diffusers both threshold
  return rgbToGray(mask).data.some((l) => (inverted ? 255 - l >= 128 : l >= 128));
}

/** 0/1 or false/true (A1111 takes inpainting_mask_invert as an int; some clients send a bool). */
function flag(f: Fields, name: string): boolean | undefined {
  const v = f.raw(name);
  if (v === undefined) return undefined;
  if (typeof v === "boolean") return v;
  if (v === 0 || v === 1) return v === 1;
  throw invalid(`${name} must be 0 or 1, got ${JSON.stringify(v)}`, "invalid_value", name);
}

/**
 * The settings of an inpainting request (the mask read separately); refuses what cannot be honoured:
 * initial_noise_multiplier other than 1 (diffusers' inpainting has no such scale of the start noise),
 * mask_round false, latent_mask.
 */
export function readInpaintSettings(f: Fields): Omit<InpaintSpec, "mask"> {
  const blur = f.int("mask_blur", 0, 64);
  const blurX = f.int("mask_blur_x", 0, 64), blurY = f.int("mask_blur_y", 0, 64);
  const fill = f.int("inpainting_fill", 0, 3);
  const noise = f.number("initial_noise_multiplier", 0, 10);
  if (noise !== undefined && noise !== 1) {
    throw invalid(`initial_noise_multiplier ${noise} is not supported: only 1 (the start noise as diffusers draws it)`, "unsupported_feature", "initial_noise_multiplier");
  }
  if (f.bool("mask_round") === false) throw invalid("mask_round false is not supported: the mask is binarized (as A1111 does by default)", "unsupported_feature", "mask_round");
  if (f.has("latent_mask")) throw invalid("latent_mask is not supported", "unsupported_feature", "latent_mask");
  return {
    // A1111's mask_blur setter sets both sides; the x / y fields are its newer form
    maskBlurX: blur ?? blurX ?? A1111_INPAINT_DEFAULTS.maskBlur,
    maskBlurY: blur ?? blurY ?? A1111_INPAINT_DEFAULTS.maskBlur,
    inpaintingFill: (fill ?? A1111_INPAINT_DEFAULTS.inpaintingFill) as InpaintSpec["inpaintingFill"],
    inpaintFullRes: f.bool("inpaint_full_res") ?? A1111_INPAINT_DEFAULTS.inpaintFullRes,
    inpaintFullResPadding: f.int("inpaint_full_res_padding", 0, 4096) ?? A1111_INPAINT_DEFAULTS.inpaintFullResPadding,
    invertMask: flag(f, "inpainting_mask_invert") ?? A1111_INPAINT_DEFAULTS.invertMask,
  };
}

/**
 * A mask image checked against the (already sized) init image: decoded, of the image's size
 * (`resize` fits one of another size, when given), with something to repaint; returned as a PNG.
 */
export function checkMask(
  mask: RgbImage, image: { width: number; height: number }, invertMask: boolean, param: string,
  resize?: (m: RgbImage) => RgbImage,
): string {
  let m = mask;
  if (m.width !== image.width || m.height !== image.height) {
    if (!resize) throw invalid(`the mask is ${m.width}x${m.height} but the init image is ${image.width}x${image.height}; send a mask of the image's size`, "invalid_image", param);
    m = resize(m);
  }
  if (!maskHasWhite(m, invertMask)) {
    throw invalid(`the mask is all ${invertMask ? "white with inpainting_mask_invert" : "black"}: nothing to repaint (white marks the area to repaint)`, "invalid_image", param);
  }
  return encodePng(m).toString("base64");
}

/**
 * The `mask` field: a base64 PNG or JPEG read as A1111's create_binary_mask reads it (an RGBA mask
 * with transparency: its alpha, rounded at 128 unless mask_round is false; else its luma), as RGB.
 */
export function readMaskField(f: Fields, limits: Limits, name = "mask"): RgbImage | undefined {
  const data = f.raw(name);
  if (data === undefined) return undefined;
  if (typeof data !== "string") throw invalid(`${name} must be a base64-encoded PNG or JPEG`, "invalid_image", name);
  return grayToRgb(a1111BinaryMask(decodeBase64Upload(data, limits, name), f.bool("mask_round") ?? true));
}
