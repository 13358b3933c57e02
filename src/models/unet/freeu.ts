/**
 * FreeU (Si et al., "FreeU: Free Lunch in Diffusion U-Net", 2023): before an up-block resnet
 * concatenates its input with a skip state, the first half of the input's channels is scaled by b
 * (the backbone) and the skip state's lowest frequencies by s. Two stages, each with its b and s:
 *   - "diffusers" (UNet2DConditionModel.enable_freeu): every resnet of up block 0 takes (b1, s1), of
 *     up block 1 (b2, s2) (a 0 among the four turns FreeU off there: checkFreeU then gives the plain UNet);
 *   - "comfyui" (ComfyUI's FreeU node): a resnet whose input has 4x the first block's channels takes
 *     (b1, s1), 2x (b2, s2): the same, but for the first resnet of up blocks 1 and 2, whose input is
 *     the stage above's upsampled output;
 *   - "comfyui-v2" (FreeU_V2, also Forge's): ComfyUI's placement, and b weighted per pixel by the
 *     channel mean, min-max normalized over each image: the first half scaled by 1 + (b - 1)·mean.
 * The scales are a graph input `freeu` [b1, b2, s1, s2], so one session serves any values.
 *
 * The skip filter is diffusers' fourier_filter(x, threshold=1, scale=s): fftshift, frequencies
 * [crow - 1, crow + 1) x [ccol - 1, ccol + 1) scaled, ifftn's real part. Those are the frequencies
 * {0, -1} of each axis, so it is linear and separable: x + (s - 1)·Re(A_h X A_wᵀ) with
 * A_n = (1/n) Σ_k e^{2πik(i - j)/n} over k in {0, -1} (one k when n is 1), i.e.
 * Re(A_h X A_wᵀ) = Re(A_h) X Re(A_w)ᵀ - Im(A_h) X Im(A_w)ᵀ: four small MatMuls with constants,
 * which every onnxruntime provider runs (no DFT op needed).
 */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import type { UNetConfig } from "./config.js";

export type FreeUVariant = "diffusers" | "comfyui" | "comfyui-v2";
export const FREEU_VARIANTS: readonly FreeUVariant[] = ["diffusers", "comfyui", "comfyui-v2"];

/** The graph input's name and layout. */
export const FREEU_INPUT = "freeu";
export const FREEU_INPUT_ORDER = ["b1", "b2", "s1", "s2"] as const;

/** The stage (0: b1/s1, 1: b2/s2, null: none) of each up block's resnets, in order. */
export function freeuStages(config: UNetConfig, variant: FreeUVariant): (0 | 1 | null)[][] {
  const ch = config.blockOutChannels, rev = [...ch].reverse();
  const byChannels = (c: number) => (c === 4 * ch[0] ? 0 : c === 2 * ch[0] ? 1 : null);
  return config.upBlockTypes.map((_, i) => {
    const layers = config.layersPerBlock[config.layersPerBlock.length - 1 - i] + 1;
    return Array.from({ length: layers }, (_, j) => {
      if (variant === "diffusers") return i < 2 ? (i as 0 | 1) : null;
      // the resnet's input: the block above's output (upsampled) first, then this block's own
      return byChannels(j === 0 ? rev[Math.max(i - 1, 0)] : rev[i]);
    });
  });
}

/** Re and Im of A_n (row-major n x n): the frequencies {0, -1} of an n-point DFT, as fourier_filter's mask keeps them. */
export function lowFrequencyProjection(n: number): { re: Float32Array; im: Float32Array } {
  const re = new Float32Array(n * n), im = new Float32Array(n * n);
  const ks = n === 1 ? [0] : [0, -1];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let r = 0, m = 0;
      for (const k of ks) {
        const a = (2 * Math.PI * k * (i - j)) / n;
        r += Math.cos(a);
        m += Math.sin(a);
      }
      re[i * n + j] = r / n;
      im[i * n + j] = m / n;
    }
  }
  return { re, im };
}

/** FreeU for one UNet graph: `scales` is the [4] input (b1, b2, s1, s2). */
export class FreeU {
  private readonly stages: (0 | 1 | null)[][];
  constructor(config: UNetConfig, private readonly variant: FreeUVariant, private readonly scales: Tensor) {
    this.stages = freeuStages(config, variant);
  }

  /** The input and skip state resnet `resnet` of up block `block` concatenates. */
  apply(block: number, resnet: number, x: Tensor, skip: Tensor): [Tensor, Tensor] {
    const stage = this.stages[block]?.[resnet];
    if (stage === null || stage === undefined) return [x, skip];
    const b = F.reshape(F.slice(this.scales, 0, stage, stage + 1), [1, 1, 1, 1]);
    const s = F.reshape(F.slice(this.scales, 0, 2 + stage, 3 + stage), [1, 1, 1, 1]);
    return [this.backbone(x, b), fourierFilter(skip, s)];
  }

  /** The first half of the channels times b (V2: times 1 + (b - 1)·the normalized channel mean). */
  private backbone(x: Tensor, b: Tensor): Tensor {
    const c = x.shape[1], half = Math.floor(c / 2);
    const firstHalf = x.graph.constant(Float32Array.from({ length: c }, (_, i) => (i < half ? 1 : 0)), [1, c, 1, 1]);
    let gain = F.sub(b, 1);
    if (this.variant === "comfyui-v2") {
      const mean = F.reduceMean(x, [1], true);
      const lo = F.reduceMin(mean, [2, 3], true), hi = F.reduceMax(mean, [2, 3], true);
      gain = F.mul(gain, F.div(F.sub(mean, lo), F.sub(hi, lo)));
    }
    return F.mul(x, F.add(F.mul(firstHalf, gain), 1));
  }
}

/** diffusers' fourier_filter(x, threshold=1, scale): x + (scale - 1)·(the frequencies {0, -1}² of each channel). */
export function fourierFilter(x: Tensor, scale: Tensor): Tensor {
  const [, , h, w] = x.shape;
  const ah = lowFrequencyProjection(h), aw = lowFrequencyProjection(w);
  const g = x.graph;
  // A_h X along the height (MatMul broadcasts the [h, h] constant), then · A_wᵀ along the width; plain
  // MatMuls with Aᵀ given (transB would read the constant as a Linear weight, which q8 quantizes)
  const pass = (a: Float32Array, b: Float32Array) => F.matmul(F.matmul(g.constant(a, [h, h]), x), g.constant(transposed(b, w), [w, w]));
  const low = F.sub(pass(ah.re, aw.re), pass(ah.im, aw.im));
  return F.add(x, F.mul(F.sub(scale, 1), low));
}

function transposed(m: Float32Array, n: number): Float32Array {
  const t = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = m[i * n + j];
  return t;
}
