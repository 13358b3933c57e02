/**
 * Outpainting: the canvas extended by the margins (the new area pre-filled from the image's edges,
 * its mean colour, seeded noise, black, or A1111's fill), a mask over the new area (plus an overlap
 * into the original so the seam is repainted), then the pipeline's inpaint. Strength 1 by default:
 * the new area has nothing worth keeping.
 */
import type { InpaintOptions, PipelineOutput, StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import type { RgbImage } from "../image/png.js";
import { grayToMask } from "../image/mask.js";
import { outpaint, roundMargins, type OutpaintFill } from "../image/outpaint.js";
import { checkPipelineLimits } from "../pipelines/limits.js";
import { PipelineInputError } from "../pipelines/errors.js";

export const OUTPAINT_FILLS: readonly OutpaintFill[] = ["edge", "mean", "noise", "black", "fill"];

export interface OutpaintRecipeOptions extends Omit<InpaintOptions, "image" | "maskImage"> {
  image: RgbImage;
  /** Pixels to add on each side (the total is rounded up to a multiple of 8, shared in proportion). */
  extend: { left?: number; top?: number; right?: number; bottom?: number };
  /** Pre-fill of the new area (default "edge"). */
  fill?: OutpaintFill;
  /** Mask overlap into the original, pixels (default 8). */
  overlap?: number;
}

export async function outpaintImage(pipe: StableDiffusionXLPipeline, opts: OutpaintRecipeOptions): Promise<PipelineOutput & { margins: { left: number; top: number; right: number; bottom: number } }> {
  const { extend, fill, overlap, image, ...rest } = opts;
  const sides = [extend.left, extend.top, extend.right, extend.bottom].map((v) => v ?? 0);
  if (!sides.every((v) => Number.isInteger(v) && v >= 0)) throw new PipelineInputError(`outpaint margins must be whole numbers >= 0, got ${sides.join(",")}`);
  if (sides.every((v) => v === 0)) throw new PipelineInputError("outpaint needs at least one margin above 0 (left, top, right, bottom)");
  if (fill !== undefined && !OUTPAINT_FILLS.includes(fill)) throw new PipelineInputError(`outpaint fill must be one of ${OUTPAINT_FILLS.join(", ")}, got "${fill}"`);
  // the canvas size (rounded as outpaint() rounds it) within the pipeline's limits before the canvas is allocated
  const m = Math.max(8, pipe.vaeScaleFactor);
  const [l, r] = roundMargins(image.width, sides[0], sides[2], m), [t, b] = roundMargins(image.height, sides[1], sides[3], m);
  checkPipelineLimits({ width: image.width + l + r, height: image.height + t + b }, { width: "the outpainted width", height: "the outpainted height" });
  const seed = typeof rest.seed === "number" ? rest.seed : 0;
  const o = outpaint(image, { left: sides[0], top: sides[1], right: sides[2], bottom: sides[3], fill, overlap: overlap ?? 8, seed, multipleOf: m });
  const mask = grayToMask(o.mask);
  const out = await pipe.inpaint({ strength: 1, ...rest, image: o.image, maskImage: { data: mask.data, shape: [mask.height, mask.width] } });
  return { ...out, margins: { left: o.left, top: o.top, right: o.right, bottom: o.bottom } };
}
