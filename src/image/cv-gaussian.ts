/**
 * OpenCV's cv2.GaussianBlur on 8-bit images (its bit-exact fixed-point path) and A1111's mask blur
 * built on it. OpenCV's 8-bit kernel has 8 fraction bits and is rounded by error diffusion from the
 * outside in, with the centre tap taking what is left, so it sums to exactly 256; the horizontal and
 * vertical sums are exact integers and the result is rounded once. Borders: BORDER_REFLECT_101.
 */
import type { GrayImage } from "./mask.js";

/** cvRound: round half to even (lrint). */
function cvRound(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** getGaussianKernelBitExact for sigma > 0: the normalised float kernel of odd size n. */
export function cvGaussianKernel(n: number, sigma: number): Float64Array {
  if (!(n > 0 && n % 2 === 1)) throw new RangeError(`Gaussian kernel size must be odd and positive, got ${n}`);
  if (!(sigma > 0)) throw new RangeError(`sigma must be > 0, got ${sigma}`);
  const scale2x = -0.125 / (sigma * sigma); // x runs over 2·offset, hence 1/8
  const half = (n - 1) / 2;
  const values = new Float64Array(half);
  let sum = 0;
  for (let i = 0, x = 1 - n; i < half; i++, x += 2) sum += values[i] = Math.exp(x * x * scale2x);
  const mul = 1 / (sum * 2 + 1);
  const k = new Float64Array(n);
  for (let i = 0; i < half; i++) k[i] = k[n - 1 - i] = values[i] * mul;
  k[half] = mul;
  return k;
}

/** getGaussianKernelFixedPoint_ED with 8 fraction bits: integer taps summing to 256. */
export function cvGaussianKernelFixed(n: number, sigma: number): Int32Array {
  const k = cvGaussianKernel(n, sigma);
  const out = new Int32Array(n);
  const half = (n - 1) / 2;
  let err = 0, sum = 0;
  for (let i = 0; i < half; i++) {
    const adj = k[i] * 256 + err;
    const v = cvRound(adj);
    err = adj - v;
    out[i] = out[n - 1 - i] = v;
    sum += v;
  }
  out[half] = 256 - 2 * sum;
  return out;
}

/** OpenCV's borderInterpolate for BORDER_REFLECT_101 (…, 2, 1 | 0, 1, 2, … | n-2, …), repeated for long kernels. */
function reflect101(p: number, n: number): number {
  if (n === 1) return 0;
  while (p < 0 || p >= n) p = p < 0 ? -p : 2 * (n - 1) - p;
  return p;
}

/**
 * cv2.GaussianBlur(img, (kx, ky), sigmaX, sigmaY) on one 8-bit channel; kx or ky = 1 leaves that
 * direction alone. sigmaY defaults to sigmaX; both must be > 0 (the sizes are given, not derived).
 */
export function cvGaussianBlur(img: GrayImage, kx: number, ky: number, sigmaX: number, sigmaY = sigmaX): GrayImage {
  const { width: w, height: h, data } = img;
  // OpenCV shrinks the kernel to 1 along a dimension of size 1
  const fx = cvGaussianKernelFixed(w === 1 ? 1 : kx, sigmaX), fy = cvGaussianKernelFixed(h === 1 ? 1 : ky, sigmaY);
  const rx = (fx.length - 1) / 2, ry = (fy.length - 1) / 2;
  const rows = new Int32Array(w * h); // exact Q8 row sums
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = -rx; i <= rx; i++) s += fx[i + rx] * data[y * w + reflect101(x + i, w)];
      rows[y * w + x] = s;
    }
  }
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let j = -ry; j <= ry; j++) s += fy[j + ry] * rows[reflect101(y + j, h) * w + x];
      const v = Math.floor((s + 32768) / 65536); // Q16 -> 8 bits, round half up
      out[y * w + x] = v > 255 ? 255 : v;
    }
  }
  return { width: w, height: h, data: out };
}

/** A1111's kernel size for a mask blur of `blur` pixels: 2·int(2.5·blur + 0.5) + 1 (about ±2.5 sigma). */
export function a1111BlurKernelSize(blur: number): number {
  return 2 * Math.trunc(2.5 * blur + 0.5) + 1;
}

/**
 * A1111's img2img mask blur (processing.py, mask_blur_x then mask_blur_y): cv2.GaussianBlur with a
 * (k, 1) kernel and sigma blurX, then a (1, k) kernel and sigma blurY, k = a1111BlurKernelSize.
 * 0 skips that direction. `mask_blur` sets both.
 */
export function a1111MaskBlur(mask: GrayImage, blurX: number, blurY: number = blurX): GrayImage {
  if (!(blurX >= 0 && blurY >= 0)) throw new RangeError(`mask blur must be >= 0, got ${blurX}, ${blurY}`);
  let m: GrayImage = { width: mask.width, height: mask.height, data: Uint8Array.from(mask.data) };
  if (blurX > 0) m = cvGaussianBlur(m, a1111BlurKernelSize(blurX), 1, blurX);
  if (blurY > 0) m = cvGaussianBlur(m, 1, a1111BlurKernelSize(blurY), blurY);
  return m;
}
