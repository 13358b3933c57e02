/**
 * 8-bit weights for com.microsoft.MatMulNBits: stable-diffusion.cpp's q8_0 (blocks of 32 along K, one
 * fp16 scale each, symmetric), in the layout onnxruntime reads (bits 8, block_size 32, no zero_points:
 * the zero point is 128). Why at all: onnxruntime-node 1.30's WebGPU provider has a tensor-core
 * (subgroup-matrix 16x16x16, 128x128 tiles) kernel for MatMulNBits that NVIDIA adapters can take, and
 * none for plain fp16 MatMul/Gemm/Conv there (docs/webgpu-matmul.md). Cost: ~5e-3 relative L2 per
 * product, about what the WebGPU fp16 MatMul's fp16 accumulation already costs at K ≥ 1280.
 *
 * The quantized copy lives in memory only (in-memory-weights.ts); the user's files are read, never
 * rewritten. Written here because no npm package writes this layout.
 */
import { f32ToF16, f16ToF32 } from "../../safetensors/dtypes.js";

export const Q8_BLOCK = 32;

export interface Q8Matrix {
  /** [N, K / 32, 32] uint8: q + 128. */
  data: Uint8Array;
  /** [N * K / 32] fp16 bits. */
  scales: Uint16Array;
}

/** Quantizes a row-major [n, k] matrix (torch's Linear weight layout: one row per output) by blocks of 32 along k. */
export function quantizeQ8(w: Float32Array, n: number, k: number): Q8Matrix {
  if (k % Q8_BLOCK !== 0) throw new Error(`q8 weights: K (${k}) must be a multiple of ${Q8_BLOCK}`);
  if (w.length !== n * k) throw new Error(`q8 weights: ${w.length} values for [${n}, ${k}]`);
  const blocks = n * (k / Q8_BLOCK);
  const data = new Uint8Array(n * k);
  const scales = new Uint16Array(blocks);
  const wanted = new Float32Array(blocks);
  for (let b = 0, j0 = 0; b < blocks; b++, j0 += Q8_BLOCK) {
    let max = 0;
    for (let j = j0; j < j0 + Q8_BLOCK; j++) { const a = Math.abs(w[j]); if (a > max) max = a; }
    wanted[b] = max / 127;
  }
  f32ToF16(wanted, scales);
  // Divide by the fp16 scale the kernel will multiply with, so q·scale is the nearest value it can give.
  const stored = f16ToF32(scales);
  for (let b = 0, j0 = 0; b < blocks; b++, j0 += Q8_BLOCK) {
    const s = stored[b];
    if (!(s > 0)) { data.fill(128, j0, j0 + Q8_BLOCK); continue; }
    // q + 128 = floor(w/s + 128.5), Math.round's ties-up, clamped to [1, 255]; a Uint8Array store of a
    // positive double truncates: 4x faster than Math.round in V8 here (SSD-1B's UNet: ~1.3 G values a session).
    for (let j = j0; j < j0 + Q8_BLOCK; j++) {
      const x = w[j] / s + 128.5;
      data[j] = x < 1 ? 1 : x >= 256 ? 255 : x;
    }
  }
  return { data, scales };
}

/**
 * A conv weight [Cout, Cin, kh, kw] as Cout rows of K = kh·kw·Cin in (ky, kx, c) order: the order of the
 * im2col patches a q8 conv concatenates (ops/conv.ts), so that row · patch is the conv's sum.
 */
export function convRows(w: Float32Array, [co, ci, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(w.length);
  const k = ci * kh * kw;
  for (let o = 0; o < co; o++) for (let c = 0; c < ci; c++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
    out[o * k + (y * kw + x) * ci + c] = w[((o * ci + c) * kh + y) * kw + x];
  }
  return out;
}

/** What MatMulNBits multiplies with: (q - 128)·scale, as a row-major [n, k] matrix (tests, error figures). */
export function dequantizeQ8({ data, scales }: Q8Matrix): Float32Array {
  const s = f16ToF32(scales);
  return Float32Array.from(data, (q, j) => (q - 128) * s[Math.floor(j / Q8_BLOCK)]);
}
