/**
 * The runner side of a job's ControlNets: each unit's image decoded, its preprocessor applied as
 * sd-webui-controlnet does (canny at processor_res, pixel perfect), fitted to the output size by its
 * resize mode, and its net opened through the --controlnet-dir nets; the pipeline's units come out.
 */
import type { RgbImage } from "../image/png.js";
import { decodeImage, rgbToTensor, toRgb8 } from "../image/image.js";
import { resizePlanes } from "../image/resize.js";
import { canny } from "../image/canny.js";
import type { ControlNetUnit } from "../pipelines/sdxl/controlnet.js";
import { invalid } from "./errors.js";
import { CANNY_DEFAULTS, CONTROL_MODES, type ControlNetSpec, type ResizeMode } from "./controlnet-spec.js";
import type { ControlNets } from "./controlnet-library.js";

/** An RGB image resized with the pipeline's filter (Lanczos), as 8-bit. */
function resizeRgb(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const t = rgbToTensor(img);
  const planes = resizePlanes(t.data, 3, img.height, img.width, height, width, "lanczos");
  // planes [3, H, W] -> [1, H, W, 3] for toRgb8
  const hwc = new Float32Array(planes.length);
  for (let p = 0; p < width * height; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = planes[c * width * height + p];
  return toRgb8({ data: hwc, shape: [1, height, width, 3] });
}

/**
 * sd-webui-controlnet's pixel perfect: the preprocessor resolution that makes the map as large as the
 * output along the side the resize mode fits (the larger scale for Just / Crop and Resize, the
 * smaller for Resize and Fill), applied to the image's short side.
 */
export function pixelPerfectResolution(img: { width: number; height: number }, target: { width: number; height: number }, mode: ResizeMode): number {
  const kh = target.height / img.height, kw = target.width / img.width;
  const k = mode === "Resize and Fill" ? Math.min(kh, kw) : Math.max(kh, kw);
  return Math.round(k * Math.min(img.width, img.height));
}

/**
 * The canny preprocessor: the image's short side resized to `res` first (as sd-webui-controlnet's
 * resize_image_with_pad, but with our Lanczos filter instead of OpenCV's INTER_AREA / INTER_CUBIC, so
 * a resized map can differ from A1111's by a few edge pixels; at res = the short side it is exactly
 * canny()). The 64-pixel padding A1111 adds and crops again is not added: Canny's Sobel already
 * replicates the border.
 */
export function cannyModule(img: RgbImage, low: number, high: number, res: number): RgbImage {
  const short = Math.min(img.width, img.height);
  const k = res / short;
  const sized = res > 0 && res !== short ? resizeRgb(img, Math.max(1, Math.round(img.width * k)), Math.max(1, Math.round(img.height * k))) : img;
  return canny(sized, low, high);
}

/** The centre crop of `img` with the aspect ratio of `target` (Crop and Resize; the pipeline resizes after). */
function cropToAspect(img: RgbImage, target: { width: number; height: number }): RgbImage {
  const k = Math.max(target.width / img.width, target.height / img.height);
  const w = Math.min(img.width, Math.round(target.width / k)), h = Math.min(img.height, Math.round(target.height / k));
  if (w === img.width && h === img.height) return img;
  const x0 = Math.floor((img.width - w) / 2), y0 = Math.floor((img.height - h) / 2);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((y + y0) * img.width + x0) * 3, ((y + y0) * img.width + x0 + w) * 3), y * w * 3);
  return { width: w, height: h, data };
}

/** The preprocessed control map of one unit (also what POST /controlnet/detect returns for canny). */
export function controlMap(u: Pick<ControlNetSpec, "module" | "thresholdA" | "thresholdB" | "processorRes" | "pixelPerfect" | "resizeMode">, img: RgbImage, target?: { width: number; height: number }): RgbImage {
  if (u.module === "none") return img;
  const res = u.pixelPerfect && target ? pixelPerfectResolution(img, target, u.resizeMode) : u.processorRes > 0 ? u.processorRes : CANNY_DEFAULTS.processorRes;
  return cannyModule(img, u.thresholdA, u.thresholdB, res);
}

/**
 * The pipeline units of a job. `target`: the output size (img2img: the init image's; txt2img: the
 * request's width and height or the model's default; absent: no crop or pixel-perfect resolution).
 */
export async function controlNetUnits(specs: readonly ControlNetSpec[], nets: ControlNets | undefined, target?: { width: number; height: number }): Promise<ControlNetUnit[]> {
  const units: ControlNetUnit[] = [];
  for (const [i, u] of specs.entries()) {
    const what = `controlnets[${i}]`;
    if (!nets) throw invalid(`${what}: this runner has no --controlnet-dir`, "no_controlnet_dir", "controlnets");
    let image = controlMap(u, decodeImage(Buffer.from(u.image, "base64"), `${what}.image`), target);
    if (target && image.width * target.height !== image.height * target.width) {
      if (u.resizeMode === "Crop and Resize") image = cropToAspect(image, target);
      // sd-webui-controlnet pads the fitted map (outer fit); this server does not make that padding
      else if (u.resizeMode === "Resize and Fill") throw invalid(`${what}: resize_mode "Resize and Fill" is not supported when the control image's aspect ratio (${image.width}x${image.height}) differs from the output's (${target.width}x${target.height}); use "Crop and Resize" or "Just Resize"`, "unsupported_feature", "resize_mode");
    }
    units.push({ controlnet: await nets.get(u.name), image, scale: u.weight, start: u.guidanceStart, end: u.guidanceEnd });
  }
  return units;
}

/** sd-webui-controlnet's infotext fields: `ControlNet 0: "Module: canny, Model: NAME, Weight: 1, ..."`. */
export function controlNetInfoFields(specs: readonly ControlNetSpec[]): Record<string, string> {
  const out: Record<string, string> = {};
  specs.forEach((u, i) => {
    out[`ControlNet ${i}`] = [
      `Module: ${u.module}`, `Model: ${u.name}`, `Weight: ${u.weight}`, `Resize Mode: ${u.resizeMode}`,
      // with pixel perfect the resolution follows the output size (no fixed value to report)
      ...(u.module === "canny" && !u.pixelPerfect ? [`Processor Res: ${u.processorRes > 0 ? u.processorRes : CANNY_DEFAULTS.processorRes}`] : []),
      ...(u.module === "canny" ? [`Threshold A: ${u.thresholdA}`, `Threshold B: ${u.thresholdB}`] : []),
      `Guidance Start: ${u.guidanceStart}`, `Guidance End: ${u.guidanceEnd}`, `Pixel Perfect: ${u.pixelPerfect ? "True" : "False"}`, `Control Mode: ${CONTROL_MODES[u.controlMode]}`,
    ].join(", ");
  });
  return out;
}
