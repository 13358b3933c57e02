/**
 * SDXL micro-conditioning: the six numbers per image (original size, crop top-left, target size)
 * that the UNet embeds next to the pooled text embedding ("add_time_ids").
 */
import type { UNetConfig } from "../models/unet/index.js";
import { PipelineInputError } from "./errors.js";

export type Pair = readonly [number, number];

export interface MicroConditioning {
  /** (height, width) the training image had; default the output size. */
  originalSize?: Pair;
  /** (top, left) of the crop; default (0, 0). */
  cropsCoordsTopLeft?: Pair;
  /** (height, width) the model should aim for; default the output size. */
  targetSize?: Pair;
  /** Conditioning of the unconditional (negative) branch; see each pipeline for its defaults. */
  negativeOriginalSize?: Pair;
  negativeCropsCoordsTopLeft?: Pair;
  negativeTargetSize?: Pair;
  /**
   * SDXL refiners (requires_aesthetics_score) take an aesthetic score in place of the target size:
   * default 6 for the conditional branch and 2.5 for the negative one, as in diffusers.
   */
  aestheticScore?: number;
  negativeAestheticScore?: number;
}

/** Time ids per image: 6 (sizes and crop), or 5 for a refiner (original size, crop, aesthetic score). */
export const timeIdCount = (requiresAestheticsScore: boolean): number => (requiresAestheticsScore ? 5 : 6);

/**
 * The UNet's add_embedding takes the time ids plus the pooled text embedding: check the model agrees
 * (naming requires_aesthetics_score when it is what is off by one id, as diffusers does).
 */
export function checkTimeIdsFit(unet: UNetConfig, projectionDim: number, requiresAestheticsScore = false): void {
  const ids = timeIdCount(requiresAestheticsScore);
  const passed = unet.additionTimeEmbedDim * ids + projectionDim;
  const expected = unet.projectionClassEmbeddingsInputDim;
  if (unet.additionEmbedType !== "text_time") throw new PipelineInputError(`this UNet has no "text_time" added conditioning (addition_embed_type ${unet.additionEmbedType}); it is not an SDXL-family model`);
  if (passed === expected) return;
  const hint = expected - passed === unet.additionTimeEmbedDim ? "; it looks like a base model: model_index.json should not set requires_aesthetics_score"
    : passed - expected === unet.additionTimeEmbedDim ? "; it looks like a refiner: model_index.json should set requires_aesthetics_score: true" : "";
  throw new PipelineInputError(
    `the UNet expects an added embedding of ${expected} values, but ${ids} time ids x ${unet.additionTimeEmbedDim} + text_encoder_2 projection_dim ${projectionDim} = ${passed}; the model's configs do not match${hint}`);
}

function checkPair(p: Pair, what: string): void {
  if (p.length !== 2 || !p.every((v) => Number.isFinite(v))) throw new PipelineInputError(`${what} must be two finite numbers, got ${JSON.stringify(p)}`);
}

function ids(original: Pair, crops: Pair, target: Pair): number[] {
  checkPair(original, "originalSize"); checkPair(crops, "cropsCoordsTopLeft"); checkPair(target, "targetSize");
  return [...original, ...crops, ...target];
}

function rows(list: number[][]): Float32Array {
  return Float32Array.from(list.flat());
}

/**
 * Text-to-image time ids for a UNet batch of `batch` images (doubled under guidance). Negative ids
 * are used only when both negativeOriginalSize and negativeTargetSize are given. Under guidance the
 * rows are [negative, positive] repeated per image, as diffusers' `cat([neg, pos]).repeat(batch, 1)`
 * does (not aligned with the [all negative, all positive] embeddings; it only matters when the
 * negative ids differ and batch > 1, and we keep diffusers' numbers).
 */
export function txt2imgTimeIds(mc: MicroConditioning, height: number, width: number, batch: number, guidance: boolean, extraBlocks = 0): Float32Array {
  const size: Pair = [height, width];
  const pos = ids(mc.originalSize ?? size, mc.cropsCoordsTopLeft ?? [0, 0], mc.targetSize ?? size);
  const neg = mc.negativeOriginalSize && mc.negativeTargetSize
    ? ids(mc.negativeOriginalSize, mc.negativeCropsCoordsTopLeft ?? [0, 0], mc.negativeTargetSize)
    : pos;
  // more positive blocks (PAG's perturbed one, A1111's AND sub-prompts): diffusers' PAG pipeline
  // interleaves cat([neg, pos, pos]).repeat(batch) the same way
  const unit = [...(guidance ? [neg] : []), pos, ...Array.from({ length: extraBlocks }, () => pos)];
  return rows(Array.from({ length: batch }, () => unit).flat());
}

/**
 * Image-to-image time ids (SDXL-base-style configs, requires_aesthetics_score false): negative sizes
 * default to the positive ones and the negative crop is the positive crop, as in diffusers; rows are
 * [negative x batch, positive x batch] under guidance.
 */
export function img2imgTimeIds(mc: MicroConditioning, height: number, width: number, batch: number, guidance: boolean, requiresAestheticsScore = false, extraBlocks = 0): Float32Array {
  if (requiresAestheticsScore) return refinerTimeIds(mc, height, width, batch, guidance, extraBlocks);
  const size: Pair = [height, width];
  const original = mc.originalSize ?? size, target = mc.targetSize ?? size, crops = mc.cropsCoordsTopLeft ?? [0, 0];
  const pos = ids(original, crops, target);
  const neg = ids(mc.negativeOriginalSize ?? original, crops, mc.negativeTargetSize ?? target);
  return rows(blocks(neg, pos, batch, guidance, extraBlocks));
}

/** [negative x batch (under guidance), positive x batch, and `extra` more positive blocks (PAG's perturbed one, A1111's AND sub-prompts)]. */
function blocks(neg: number[], pos: number[], batch: number, guidance: boolean, extra: number): number[][] {
  const of = (r: number[]) => Array.from({ length: batch }, () => r);
  return [...(guidance ? of(neg) : []), ...of(pos), ...Array.from({ length: extra }, () => of(pos)).flat()];
}

function checkScore(v: number, what: string): number {
  if (!Number.isFinite(v)) throw new PipelineInputError(`${what} must be a finite number, got ${v}`);
  return v;
}

/**
 * Refiner time ids (requires_aesthetics_score): original size, crop, aesthetic score; the negative
 * row has its own crop (negativeCropsCoordsTopLeft, default (0, 0)) and negativeAestheticScore, as
 * diffusers' _get_add_time_ids; rows are [negative x batch, positive x batch] under guidance.
 */
export function refinerTimeIds(mc: MicroConditioning, height: number, width: number, batch: number, guidance: boolean, extraBlocks = 0): Float32Array {
  const size: Pair = [height, width];
  const original = mc.originalSize ?? size, crops = mc.cropsCoordsTopLeft ?? [0, 0];
  const negOriginal = mc.negativeOriginalSize ?? original, negCrops = mc.negativeCropsCoordsTopLeft ?? [0, 0];
  checkPair(original, "originalSize"); checkPair(crops, "cropsCoordsTopLeft");
  checkPair(negOriginal, "negativeOriginalSize"); checkPair(negCrops, "negativeCropsCoordsTopLeft");
  const pos = [...original, ...crops, checkScore(mc.aestheticScore ?? 6, "aestheticScore")];
  const neg = [...negOriginal, ...negCrops, checkScore(mc.negativeAestheticScore ?? 2.5, "negativeAestheticScore")];
  return rows(blocks(neg, pos, batch, guidance, extraBlocks));
}
