/**
 * PIL's Image.resize on 8-bit data, bit for bit: separable convolution (horizontal pass, then
 * vertical) with the filter widened by the scale when shrinking, coefficients rounded to 22-bit fixed
 * point and each pass rounded and clipped to 8 bits. An optional source `box` (floats, like PIL's
 * `box=`) resamples a sub-rectangle; a zero-height box (used by the "fill" resize modes) samples the
 * filter at the box edge, so it extrapolates the edge rows slightly rather than copying them.
 */
import type { RgbImage } from "./png.js";
import type { GrayImage } from "./mask.js";

export type PilFilter = "lanczos" | "bicubic" | "bilinear";

const PRECISION_BITS = 22;

const sinc = (x: number) => {
  if (x === 0) return 1;
  x = x * Math.PI;
  return Math.sin(x) / x;
};
const FILTERS: Record<PilFilter, { support: number; fn: (x: number) => number }> = {
  lanczos: { support: 3, fn: (x) => (-3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: { support: 1, fn: (x) => (x < 0 ? (-x < 1 ? 1 + x : 0) : x < 1 ? 1 - x : 0) },
};

interface Coeffs { lo: Int32Array; n: Int32Array; k: Int32Array; ksize: number }

/** PIL's precompute_coeffs + normalize_coeffs_8bpc for one axis. */
function coeffs(inSize: number, in0: number, in1: number, outSize: number, filter: PilFilter): Coeffs {
  const { support: base, fn } = FILTERS[filter];
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1);
  const support = base * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const lo = new Int32Array(outSize), n = new Int32Array(outSize), k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let o = 0; o < outSize; o++) {
    const center = in0 + (o + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) ww += w[x] = fn((x + xmin - center + 0.5) * ss);
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      // C's (int) cast truncates toward zero after the ±0.5
      k[o * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    lo[o] = xmin;
    n[o] = Math.max(xmax, 0);
  }
  return { lo, n, k, ksize };
}

const clip8 = (ss: number) => {
  const v = Math.floor(ss / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/**
 * Resizes interleaved 8-bit `channels` data of width × height to outW × outH as PIL does;
 * `box` = [x0, y0, x1, y1] in source pixels (default the whole image). Every channel is filtered
 * alike, as PIL does for "L" and "RGB"; PIL premultiplies RGBA first, which this does not.
 */
export function pilResize(
  data: Uint8Array, width: number, height: number, channels: number, outW: number, outH: number,
  filter: PilFilter = "lanczos", box: [number, number, number, number] = [0, 0, width, height],
): Uint8Array {
  if (!(outW > 0 && outH > 0) || !Number.isInteger(outW) || !Number.isInteger(outH)) throw new RangeError(`resize target must be positive integers, got ${outW}x${outH}`);
  if (data.length !== width * height * channels) throw new RangeError(`${data.length} bytes for ${width}x${height}x${channels}`);
  const [x0, y0, x1, y1] = box;
  if (x0 < 0 || y0 < 0 || x1 > width || y1 > height || x1 < x0 || y1 < y0) throw new RangeError(`resize box [${box}] is outside the ${width}x${height} image`);
  const needH = outW !== width || x0 !== 0 || x1 !== outW;
  const needV = outH !== height || y0 !== 0 || y1 !== outH;
  let src = data, srcW = width;
  if (needH) {
    const c = coeffs(width, x0, x1, outW, filter);
    const tmp = new Uint8Array(outW * height * channels);
    for (let y = 0; y < height; y++) {
      const row = y * width * channels;
      for (let o = 0; o < outW; o++) {
        const kb = o * c.ksize, lo = c.lo[o];
        for (let ch = 0; ch < channels; ch++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < c.n[o]; x++) ss += data[row + (lo + x) * channels + ch] * c.k[kb + x];
          tmp[(y * outW + o) * channels + ch] = clip8(ss);
        }
      }
    }
    src = tmp;
    srcW = outW;
  }
  if (!needV) return src === data ? Uint8Array.from(data) : src;
  const c = coeffs(height, y0, y1, outH, filter);
  const out = new Uint8Array(srcW * outH * channels);
  const stride = srcW * channels;
  for (let o = 0; o < outH; o++) {
    const kb = o * c.ksize, lo = c.lo[o];
    for (let i = 0; i < stride; i++) {
      let ss = 1 << (PRECISION_BITS - 1);
      for (let y = 0; y < c.n[o]; y++) ss += src[(lo + y) * stride + i] * c.k[kb + y];
      out[o * stride + i] = clip8(ss);
    }
  }
  return out;
}

/** PIL `img.resize((w, h), LANCZOS)` of an RGB image. */
export function resizeRgb(img: RgbImage, w: number, h: number, filter: PilFilter = "lanczos", box?: [number, number, number, number]): RgbImage {
  return { width: w, height: h, data: pilResize(img.data, img.width, img.height, 3, w, h, filter, box) };
}

/** PIL `img.resize((w, h), LANCZOS)` of an "L" image. */
export function resizeGray(img: GrayImage, w: number, h: number, filter: PilFilter = "lanczos", box?: [number, number, number, number]): GrayImage {
  return { width: w, height: h, data: pilResize(img.data, img.width, img.height, 1, w, h, filter, box) };
}
