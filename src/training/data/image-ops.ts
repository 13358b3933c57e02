/**
 * The torchvision transforms of diffusers' SDXL training scripts on 8-bit RGB: Resize (shorter side,
 * PIL bilinear with its antialiasing support when shrinking, both passes rounded to 8 bits as PIL does),
 * crops, horizontal flip, and ToTensor + Normalize([0.5], [0.5]) to CHW floats in [-1, 1].
 */
import type { RgbImage } from "../../image/png.js";

interface Taps { lo: number[]; w: Float64Array[] }

/** PIL's BILINEAR filter for one axis: a triangle widened by the scale when downsampling. */
function taps(inLen: number, outLen: number): Taps {
  const scale = inLen / outLen;
  const support = Math.max(scale, 1);
  const lo: number[] = [], w: Float64Array[] = [];
  for (let o = 0; o < outLen; o++) {
    const center = (o + 0.5) * scale;
    const a = Math.max(0, Math.floor(center - support)), b = Math.min(inLen, Math.ceil(center + support));
    const ws = new Float64Array(b - a);
    let total = 0;
    for (let i = a; i < b; i++) total += ws[i - a] = Math.max(0, 1 - Math.abs((i + 0.5 - center) / support));
    for (let k = 0; k < ws.length; k++) ws[k] /= total;
    lo.push(a);
    w.push(ws);
  }
  return { lo, w };
}

const u8 = (x: number) => Math.min(255, Math.max(0, Math.round(x)));

export function resize(img: RgbImage, width: number, height: number): RgbImage {
  if (width === img.width && height === img.height) return img;
  const { width: W, height: H, data } = img;
  const h = taps(W, width), v = taps(H, height);
  const tmp = new Uint8Array(H * width * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < width; x++) {
      const a = h.lo[x], ws = h.w[x];
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < ws.length; k++) s += data[(y * W + a + k) * 3 + c] * ws[k];
        tmp[(y * width + x) * 3 + c] = u8(s);
      }
    }
  }
  const out = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    const a = v.lo[y], ws = v.w[y];
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let k = 0; k < ws.length; k++) s += tmp[((a + k) * width + x) * 3 + c] * ws[k];
        out[(y * width + x) * 3 + c] = u8(s);
      }
    }
  }
  return { width, height, data: out };
}

/** transforms.Resize(size): the shorter side becomes `size`, the longer int(size · long / short). */
export function resizeShorterSide(img: RgbImage, size: number): RgbImage {
  const { width: w, height: h } = img;
  if (w <= h) return resize(img, size, Math.trunc((size * h) / w));
  return resize(img, Math.trunc((size * w) / h), size);
}

export function crop(img: RgbImage, top: number, left: number, height: number, width: number): RgbImage {
  if (top < 0 || left < 0 || top + height > img.height || left + width > img.width) {
    throw new RangeError(`crop ${width}x${height} at (${top}, ${left}) outside a ${img.width}x${img.height} image`);
  }
  const out = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) out.set(img.data.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + width) * 3), y * width * 3);
  return { width, height, data: out };
}

export function flipHorizontal(img: RgbImage): RgbImage {
  const { width: w, height: h } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) out[(y * w + x) * 3 + c] = img.data[(y * w + w - 1 - x) * 3 + c];
  return { width: w, height: h, data: out };
}

/** Python's round (half to even), used by the scripts for the center-crop corner. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** ToTensor then Normalize([0.5], [0.5]): CHW float32, (v / 255 - 0.5) / 0.5. */
export function toModelInput(img: RgbImage): Float32Array {
  const f = Math.fround;
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) out[c * n + p] = f(f(f(img.data[p * 3 + c] / 255) - 0.5) / 0.5);
  return out;
}
