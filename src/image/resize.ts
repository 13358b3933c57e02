/**
 * Resizing float CHW planes with PIL's filters, as AUTOMATIC1111 resizes an upscaler's result to the
 * asked-for size (Image.resize(..., LANCZOS)) and implements its "Lanczos" / "Nearest" upscalers:
 * PIL's separable resampling (horizontal pass, then vertical) with the kernel widened by the scale when
 * shrinking, computed in float64 here rather than PIL's 8-bit fixed point.
 */
export type ResizeFilter = "lanczos" | "nearest";

const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
/** Lanczos-3, PIL's LANCZOS. */
const lanczos3 = (x: number) => (Math.abs(x) < 3 ? sinc(x) * sinc(x / 3) : 0);

interface Taps { lo: Int32Array; n: Int32Array; w: Float64Array; stride: number }

/** PIL's precompute_coeffs: output o is centred at (o + 0.5)·scale in input pixels. */
function lanczosTaps(inLen: number, outLen: number): Taps {
  const scale = inLen / outLen;
  const ss = Math.max(scale, 1);
  const support = 3 * ss;
  const stride = Math.ceil(support) * 2 + 1;
  const lo = new Int32Array(outLen), n = new Int32Array(outLen), w = new Float64Array(outLen * stride);
  for (let o = 0; o < outLen; o++) {
    const center = (o + 0.5) * scale;
    const a = Math.max(Math.trunc(center - support + 0.5), 0);
    const b = Math.min(Math.trunc(center + support + 0.5), inLen);
    let total = 0;
    for (let i = a; i < b; i++) total += w[o * stride + i - a] = lanczos3((i - center + 0.5) / ss);
    for (let i = a; i < b; i++) w[o * stride + i - a] /= total || 1;
    lo[o] = a;
    n[o] = b - a;
  }
  return { lo, n, w, stride };
}

/** PIL's NEAREST: input floor((o + 0.5)·scale). */
function nearestTaps(inLen: number, outLen: number): Taps {
  const lo = new Int32Array(outLen), n = new Int32Array(outLen).fill(1), w = new Float64Array(outLen).fill(1);
  for (let o = 0; o < outLen; o++) lo[o] = Math.min(inLen - 1, Math.floor(((o + 0.5) * inLen) / outLen));
  return { lo, n, w, stride: 1 };
}

/** `channels` planes of h × w (CHW) -> planes of outH × outW. Lanczos overshoots: clamp afterwards where needed. */
export function resizePlanes(data: Float32Array, channels: number, h: number, w: number, outH: number, outW: number, filter: ResizeFilter): Float32Array {
  if (outH === h && outW === w) return Float32Array.from(data);
  const taps = filter === "lanczos" ? lanczosTaps : nearestTaps;
  const tx = taps(w, outW), ty = taps(h, outH);
  const tmp = new Float32Array(channels * h * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const row = (c * h + y) * w;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        const base = tx.lo[x], wo = x * tx.stride;
        for (let k = 0; k < tx.n[x]; k++) s += data[row + base + k] * tx.w[wo + k];
        tmp[(c * h + y) * outW + x] = s;
      }
    }
  }
  const out = new Float32Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outH; y++) {
      const base = ty.lo[y], wo = y * ty.stride;
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let k = 0; k < ty.n[y]; k++) s += tmp[(c * h + base + k) * outW + x] * ty.w[wo + k];
        out[(c * outH + y) * outW + x] = s;
      }
    }
  }
  return out;
}
