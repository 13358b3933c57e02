/**
 * RRDBNet's constructor arguments, which no checkpoint stores: read off the tensors' names and shapes
 * (basicsr names, see layouts.ts for the others), as spandrel does, except that num_grow_ch is read too
 * (spandrel assumes 32).
 */
import type { TensorEntry } from "../../safetensors/read.js";

export interface RrdbNetConfig {
  numInCh: number;
  numOutCh: number;
  numFeat: number;
  numBlock: number;
  numGrowCh: number;
  /** 4, or 2 / 1 by pixel_unshuffle 2 / 4 of the input before conv_first. */
  scale: 1 | 2 | 4;
}

export class EsrganModelError extends Error {}

/** The pixel_unshuffle factor at the input: 4 / scale. */
export function unshuffleFactor(cfg: Pick<RrdbNetConfig, "scale">): number {
  return 4 / cfg.scale;
}

/** The tensors every RRDBNet has, basicsr names: what a checkpoint lacking them is not. */
export const REQUIRED_KEYS = [
  "conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight",
  "conv_up1.weight", "conv_up2.weight", "conv_hr.weight", "conv_last.weight",
] as const;

/**
 * The config of basicsr-named tensors. num_in_ch = num_out_ch is assumed, as in every released model:
 * conv_first's input channels are then num_out_ch · 1, 4 or 16 for scale 4, 2 or 1.
 */
export function inferRrdbNetConfig(tensors: ReadonlyMap<string, TensorEntry>, where: string): RrdbNetConfig {
  const shapeOf = (k: string) => tensors.get(k)!.shape;
  const first = shapeOf("conv_first.weight"), last = shapeOf("conv_last.weight"), grow = shapeOf("body.0.rdb1.conv1.weight");
  for (const [k, s] of [["conv_first.weight", first], ["conv_last.weight", last], ["body.0.rdb1.conv1.weight", grow]] as const) {
    if (s.length !== 4 || s[2] !== 3 || s[3] !== 3) throw new EsrganModelError(`${where}: "${k}" has shape [${s}], an RRDBNet 3x3 conv weight is [out, in, 3, 3]`);
  }
  const numOutCh = last[0];
  const ratio = first[1] / numOutCh;
  const scale = ratio === 1 ? 4 : ratio === 4 ? 2 : ratio === 16 ? 1 : undefined;
  if (scale === undefined) {
    throw new EsrganModelError(`${where}: conv_first takes ${first[1]} channels and conv_last gives ${numOutCh}: not num_out_ch · 1, 4 or 16 (scale 4, 2 or 1)`);
  }
  const blocks = new Set<number>();
  for (const k of tensors.keys()) {
    const m = /^body\.(\d+)\./.exec(k);
    if (m) blocks.add(Number(m[1]));
  }
  const numBlock = blocks.size;
  // Block indices must be 0..n-1; a gap would otherwise surface as a missing tensor far from its cause.
  for (let i = 0; i < numBlock; i++) if (!blocks.has(i)) throw new EsrganModelError(`${where}: RRDB blocks ${[...blocks].sort((a, b) => a - b).join(", ")} are not numbered 0..${numBlock - 1}`);
  return { numInCh: numOutCh, numOutCh, numFeat: first[0], numBlock, numGrowCh: grow[0], scale };
}
