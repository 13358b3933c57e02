/** safetensors dtype names and the byte width of one element. */
export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

export function isDtype(name: string): name is Dtype {
  return Object.prototype.hasOwnProperty.call(DTYPE_BYTES, name);
}

// float16 <-> float32 through the bit patterns; a 64K-entry table makes decoding a lookup.
let f16Table: Float32Array | undefined;

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac ? NaN : sign * Infinity;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return table;
}

export function f16ToF32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const table = (f16Table ??= buildF16Table());
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
  return dst;
}

export function bf16ToF32(src: Uint16Array, dst = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return dst;
}

/** float32 -> float16 with round-to-nearest-even, as torch's `.half()` does. */
export function f32ToF16(src: Float32Array, dst = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) { dst[i] = sign | 0x7c00 | (mant ? 0x200 : 0); continue; }
    let e = exp - 127 + 15;
    if (e >= 31) { dst[i] = sign | 0x7c00; continue; }
    if (e <= 0) {
      if (e < -10) { dst[i] = sign; continue; }
      mant |= 0x800000;
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = mant & ((1 << shift) - 1);
      let m = mant >>> shift;
      if (rest > half || (rest === half && (m & 1))) m++;
      dst[i] = sign | m;
      continue;
    }
    const rest = mant & 0x1fff;
    let h = sign | (e << 10) | (mant >>> 13);
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
    dst[i] = h;
  }
  return dst;
}
