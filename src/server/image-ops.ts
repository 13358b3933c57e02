/**
 * A job's image steps (JobSpec.imageOps: ComfyUI's ImageUpscaleWithModel, ImageScaleBy, ImageScale)
 * on each decoded image, in float [0, 1] planes from the decode to the saved PNG, as ComfyUI passes
 * IMAGE tensors from node to node:
 *   - an ESRGAN-family model at its own scale, in 512-pixel tiles (ComfyUI's tile; the context here is
 *     a margin cut off each tile where ComfyUI feathers 32-pixel overlaps), its output clamped to [0, 1];
 *   - a resize: torch's interpolate (nearest-exact, bilinear, bicubic, align_corners false) or PIL's
 *     Lanczos, to round(side · scale_by) or to a size (a side of 0 keeps the aspect ratio; "center"
 *     crops the image to the new aspect ratio first), as ComfyUI's common_upscale.
 */
import { decodeImage, rgbToTensor, toRgb8, type FloatTensor } from "../image/image.js";
import type { PixelUpscale } from "../recipes/hires-upscale.js";
import type { RgbImage } from "../image/png.js";
import { interpolate } from "../image/latent-resize.js";
import { resizePlanes } from "../image/resize.js";
import { checkImageSize } from "../image/limits.js";
import { DEFAULT_MAX_UPSCALED_PIXELS, Upscaler } from "../pipelines/upscaler.js";
import { roundHalfEven } from "../schedulers/common.js";
import type { SessionOptions } from "../runtime/session.js";
import type { ImageOpSpec, ImageResizeMethod } from "./job.js";

/** ComfyUI's ImageUpscaleWithModel tile, with a context margin here in place of its overlap. */
const MODEL_TILE = 512, MODEL_TILE_CONTEXT = 32;

/** The size a resize step makes of a width x height image. */
export function resizedSize(op: Extract<ImageOpSpec, { op: "resize" }>, width: number, height: number): { width: number; height: number } {
  if ("scaleBy" in op) return { width: Math.max(1, roundHalfEven(width * op.scaleBy)), height: Math.max(1, roundHalfEven(height * op.scaleBy)) };
  const w = op.width === 0 ? Math.max(1, roundHalfEven(width * op.height / height)) : op.width;
  const h = op.height === 0 ? Math.max(1, roundHalfEven(height * op.width / width)) : op.height;
  return { width: w, height: h };
}

/** The size the steps make of a width x height image; `modelScale` gives each model step's scale. */
export function imageOpsSize(ops: readonly ImageOpSpec[], width: number, height: number, modelScale: (op: Extract<ImageOpSpec, { op: "upscale-model" }>) => number): { width: number; height: number } {
  let size = { width, height };
  for (const op of ops) {
    size = op.op === "resize" ? resizedSize(op, size.width, size.height)
      : op.op === "composite" ? { width: op.width, height: op.height }
        : { width: size.width * modelScale(op), height: size.height * modelScale(op) };
    checkImageSize("the image after ComfyUI's image nodes", size.width, size.height, { maxPixels: DEFAULT_MAX_UPSCALED_PIXELS });
  }
  return size;
}

/** Opens the models the steps use (one per file), released with the returned function. */
export async function openImageOpModels(ops: readonly ImageOpSpec[], device: SessionOptions["device"]): Promise<{ models: Map<string, Upscaler>; release: () => Promise<void> }> {
  const models = new Map<string, Upscaler>();
  for (const op of ops) if (op.op === "upscale-model" && !models.has(op.path)) models.set(op.path, await Upscaler.fromFile(op.path, { session: { device } }));
  return { models, release: async () => { for (const m of models.values()) await m.release(); } };
}

/** Runs the steps on one image [1, 3, H, W] in [0, 1]. */
export async function runImageOps(image: FloatTensor, ops: readonly ImageOpSpec[], models: ReadonlyMap<string, Upscaler>, signal?: AbortSignal): Promise<FloatTensor> {
  let x = image;
  for (const op of ops) {
    signal?.throwIfAborted();
    if (op.op === "composite") {
      x = composite(x, op);
      continue;
    }
    if (op.op === "upscale-model") {
      const model = models.get(op.path)!;
      x = await model.upscalePlanes(x, { scale: model.scale, tile: MODEL_TILE, tileOverlap: MODEL_TILE_CONTEXT, signal });
      continue;
    }
    const [, , h, w] = x.shape;
    const to = resizedSize(op, w, h);
    if ("crop" in op && op.crop === "center") x = centreCrop(x, to.width / to.height);
    x = resize(x, to.width, to.height, op.method);
  }
  return x;
}

function resize(x: FloatTensor, width: number, height: number, method: ImageResizeMethod): FloatTensor {
  const [, , h, w] = x.shape;
  if (method !== "lanczos") return interpolate(x, height, width, method);
  const data = resizePlanes(x.data, 3, h, w, height, width, "lanczos");
  for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, data[i]));
  return { data, shape: [1, 3, height, width] };
}

/**
 * ComfyUI's composite (multiplier 1): the destination with the image laid at (x, y), weighted by the
 * mask scaled to the image (torch's bilinear), the part outside the destination cut off.
 */
function composite(source: FloatTensor, op: Extract<ImageOpSpec, { op: "composite" }>): FloatTensor {
  const dest = rgbToTensor(decodeImage(Buffer.from(op.destination, "base64"), "composite destination"));
  const [, , sh, sw] = source.shape, [, , dh, dw] = dest.shape;
  let mask: Float32Array | undefined;
  if (op.mask !== undefined) {
    const m = rgbToTensor(decodeImage(Buffer.from(op.mask, "base64"), "composite mask"));
    const [, , mh, mw] = m.shape;
    const plane: FloatTensor = { data: m.data.subarray(0, mh * mw), shape: [1, 1, mh, mw] };
    mask = mh === sh && mw === sw ? plane.data : interpolate(plane, sh, sw, "bilinear").data;
  }
  const visibleH = Math.min(sh, dh - op.y), visibleW = Math.min(sw, dw - op.x);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < visibleH; y++) {
      for (let x = 0; x < visibleW; x++) {
        const m = mask ? mask[y * sw + x] : 1, d = (c * dh + y + op.y) * dw + x + op.x;
        dest.data[d] = m * source.data[(c * sh + y) * sw + x] + (1 - m) * dest.data[d];
      }
    }
  }
  return dest;
}

/** common_upscale's crop "center": the middle of the image at the target aspect ratio. */
function centreCrop(x: FloatTensor, aspect: number): FloatTensor {
  const [, , h, w] = x.shape;
  const old = w / h;
  const cx = old > aspect ? roundHalfEven((w - w * (aspect / old)) / 2) : 0;
  const cy = old < aspect ? roundHalfEven((h - h * (old / aspect)) / 2) : 0;
  if (cx === 0 && cy === 0) return x;
  const nw = w - 2 * cx, nh = h - 2 * cy;
  const data = new Float32Array(3 * nh * nw);
  for (let c = 0; c < 3; c++) for (let y = 0; y < nh; y++) data.set(x.data.subarray(c * h * w + (y + cy) * w + cx, c * h * w + (y + cy) * w + cx + nw), (c * nh + y) * nw);
  return { data, shape: [1, 3, nh, nw] };
}

/** Image `index` of a pipeline's [N, H, W, 3] output through the steps, as 8-bit RGB (rounded as toRgb8). */
export async function imageWithOps(images: FloatTensor, index: number, ops: readonly ImageOpSpec[], models: ReadonlyMap<string, Upscaler>, signal?: AbortSignal): Promise<RgbImage> {
  const [, h, w] = images.shape, n = h * w;
  const planes = new Float32Array(3 * n), src = images.data.subarray(index * 3 * n, (index + 1) * 3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) planes[c * n + p] = src[p * 3 + c];
  return planesToRgb8(await runImageOps({ data: planes, shape: [1, 3, h, w] }, ops, models, signal));
}

/** [1, 3, H, W] in [0, 1] as 8-bit RGB, rounded as toRgb8. */
export function planesToRgb8(x: FloatTensor): RgbImage {
  const [, , h, w] = x.shape, m = h * w;
  const hwc = new Float32Array(3 * m);
  for (let p = 0; p < m; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = x.data[c * m + p];
  return toRgb8({ data: hwc, shape: [1, h, w, 3] });
}

/**
 * The steps as the hires fix's pixel upscaler (a ComfyUI graph's VAEDecode -> image nodes -> VAEEncode
 * between two samplers): they make the second pass's size, which the job's hires width and height hold.
 */
export function imageOpsUpscale(ops: readonly ImageOpSpec[], models: ReadonlyMap<string, Upscaler>): PixelUpscale {
  return async (image, _width, _height, signal) => planesToRgb8(await runImageOps(rgbToTensor(image), ops, models, signal));
}
