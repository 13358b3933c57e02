/**
 * torch.nn.functional.interpolate on NCHW float tensors, as AUTOMATIC1111's latent upscalers call it
 * (modules/shared.py latent_upscale_modes): "bilinear" and "bicubic" with align_corners=False,
 * "nearest" and "nearest-exact". Sizes are given (no scale_factor), so torch's scale is in / out.
 * Computed in float64 and stored as float32 (torch computes in float32: differences near 1e-7).
 */
import type { FloatTensor } from "./image.js";

export type LatentInterpolation = "bilinear" | "bicubic" | "nearest" | "nearest-exact";

/** Per output index: input indices and weights (`taps` of each). */
interface Axis { idx: Int32Array; w: Float64Array; taps: number }

const clampIndex = (i: number, n: number) => Math.min(Math.max(i, 0), n - 1);

/** torch's cubic convolution with A = -0.75 (upsample_bicubic2d). */
const A = -0.75;
const cubic1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
const cubic2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;

function axis(inLen: number, outLen: number, mode: LatentInterpolation): Axis {
  const scale = inLen / outLen;
  const taps = mode === "bicubic" ? 4 : mode === "bilinear" ? 2 : 1;
  const idx = new Int32Array(outLen * taps), w = new Float64Array(outLen * taps);
  for (let o = 0; o < outLen; o++) {
    const at = o * taps;
    if (mode === "nearest" || mode === "nearest-exact") {
      // nearest: floor(o·scale) (the legacy rule); nearest-exact: floor((o + 0.5)·scale)
      idx[at] = Math.min(Math.floor((mode === "nearest" ? o : o + 0.5) * scale), inLen - 1);
      w[at] = 1;
    } else if (mode === "bilinear") {
      // align_corners=False: half-pixel centres, negative source coordinates clamped to 0
      const src = Math.max((o + 0.5) * scale - 0.5, 0);
      const i0 = Math.floor(src), t = src - i0;
      idx[at] = i0; idx[at + 1] = Math.min(i0 + 1, inLen - 1);
      w[at] = 1 - t; w[at + 1] = t;
    } else {
      // bicubic: the source coordinate is not clamped; the four taps' indices are
      const src = (o + 0.5) * scale - 0.5;
      const i0 = Math.floor(src), t = src - i0;
      const ws = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
      for (let k = 0; k < 4; k++) { idx[at + k] = clampIndex(i0 - 1 + k, inLen); w[at + k] = ws[k]; }
    }
  }
  return { idx, w, taps };
}

/** x [N, C, h, w] -> [N, C, outH, outW]. */
export function interpolate(x: FloatTensor, outH: number, outW: number, mode: LatentInterpolation): FloatTensor {
  if (x.shape.length !== 4) throw new RangeError(`interpolate expects [N, C, H, W], got [${x.shape}]`);
  const [n, c, h, w] = x.shape;
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH > 0 && outW > 0)) throw new RangeError(`bad output size ${outW}x${outH}`);
  const ax = axis(w, outW, mode), ay = axis(h, outH, mode);
  const out = new Float32Array(n * c * outH * outW);
  for (let p = 0; p < n * c; p++) {
    const src = p * h * w, dst = p * outH * outW;
    for (let y = 0; y < outH; y++) {
      for (let xo = 0; xo < outW; xo++) {
        let s = 0;
        for (let ky = 0; ky < ay.taps; ky++) {
          const row = src + ay.idx[y * ay.taps + ky] * w, wy = ay.w[y * ay.taps + ky];
          for (let kx = 0; kx < ax.taps; kx++) s += wy * ax.w[xo * ax.taps + kx] * x.data[row + ax.idx[xo * ax.taps + kx]];
        }
        out[dst + y * outW + xo] = s;
      }
    }
  }
  return { data: out, shape: [n, c, outH, outW] };
}
