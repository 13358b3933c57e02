/**
 * PIL's ImageFilter.GaussianBlur, bit for bit: not a true Gaussian but an "extended box blur"
 * (Gwosdek et al. 2011) of three passes per direction, each pass rounded to 8 bits. A pass of real
 * radius r = l + a averages the 2l+1 nearest pixels with weight w and the two at distance l+1 with
 * the smaller weight (1 - (2l+1)w)/2, in 24-bit fixed point; edges repeat the border pixel.
 */
import type { GrayImage } from "./mask.js";

const f = Math.fround; // PIL computes the radius and weights in C float

/** PIL's _gaussian_blur_radius: the box radius l + a whose `passes`-fold box has variance radius²/passes·passes. */
export function pilBoxRadius(radius: number, passes = 3): number {
  const r = f(radius);
  const sigma2 = f(f(r * r) / passes);
  const L = f(Math.sqrt(12.0 * sigma2 + 1.0)); // double math, stored as float
  const l = f(Math.floor((L - 1.0) / 2.0));
  const a = f(f(f(2 * l) + 1) * f(f(l * f(l + 1)) - f(3 * sigma2)));
  return f(l + f(a / f(6 * f(sigma2 - f(f(l + 1) * f(l + 1))))));
}

/** One extended-box pass over `n` samples at `src[off + i*step]`, written to `dst` the same way. */
function boxLine(src: Uint8Array, dst: Uint8Array, off: number, step: number, n: number, radius: number, ext: Int32Array): void {
  const r = Math.trunc(radius);
  const ww = Math.trunc(f(16777216 / f(f(radius * 2) + 1)));
  const fw = Math.trunc((16777216 - (r * 2 + 1) * ww) / 2);
  // the line with r + 1 copies of each border pixel on either side (PIL's clamped reads)
  const pad = r + 1, first = src[off], last = src[off + (n - 1) * step];
  for (let i = 0; i < pad; i++) { ext[i] = first; ext[pad + n + i] = last; }
  for (let i = 0; i < n; i++) ext[pad + i] = src[off + i * step];
  let acc = 0;
  for (let k = -r - 1; k < r; k++) acc += ext[pad + k]; // window of x = -1
  for (let x = 0; x < n; x++) {
    const lo = ext[pad + x - r - 1], hi = ext[pad + x + r];
    acc += hi - lo;
    const far = x + r + 1 < n ? ext[pad + x + r + 1] : last;
    dst[off + x * step] = Math.floor((acc * ww + (lo + far) * fw + 8388608) / 16777216);
  }
}

/**
 * PIL's box blur of interleaved 8-bit `channels`: `passes` horizontal passes, then `passes`
 * vertical ones (PIL transposes and blurs rows), each at the fractional box radius given.
 */
export function pilBoxBlur(data: Uint8Array, width: number, height: number, channels: number, xRadius: number, yRadius: number, passes = 3): Uint8Array {
  const out = Uint8Array.from(data);
  const ext = new Int32Array(Math.max(width, height) + 2 * (Math.trunc(Math.max(xRadius, yRadius)) + 1));
  if (xRadius !== 0) {
    for (let p = 0; p < passes; p++) {
      for (let y = 0; y < height; y++) for (let c = 0; c < channels; c++) boxLine(out, out, y * width * channels + c, channels, width, xRadius, ext);
    }
  }
  if (yRadius !== 0) {
    for (let p = 0; p < passes; p++) {
      for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) boxLine(out, out, x * channels + c, width * channels, height, yRadius, ext);
    }
  }
  return out;
}

/**
 * PIL's `image.filter(ImageFilter.GaussianBlur(radius))` (also diffusers' VaeImageProcessor.blur) on
 * interleaved 8-bit data; radius 0 is a copy. `radiusY` defaults to `radius`.
 */
export function pilGaussianBlur(data: Uint8Array, width: number, height: number, channels: number, radius: number, radiusY = radius): Uint8Array {
  if (!(radius >= 0 && radiusY >= 0)) throw new RangeError(`blur radius must be >= 0, got ${radius}, ${radiusY}`);
  if (radius === 0 && radiusY === 0) return Uint8Array.from(data);
  return pilBoxBlur(data, width, height, channels, radius ? pilBoxRadius(radius) : 0, radiusY ? pilBoxRadius(radiusY) : 0);
}

/** PIL GaussianBlur of a mode-"L" image (diffusers' `mask_processor.blur(mask, blur_factor)`). */
export function gaussianBlurGray(img: GrayImage, radius: number): GrayImage {
  return { width: img.width, height: img.height, data: pilGaussianBlur(img.data, img.width, img.height, 1, radius) };
}

// A1111's mask blur uses OpenCV's Gaussian, not PIL's: see cv-gaussian.ts.
export { a1111MaskBlur, a1111BlurKernelSize, cvGaussianBlur } from "./cv-gaussian.js";
