/**
 * Bit-compatible reimplementation of torch.Generator('cpu').manual_seed(seed) for torch.randn
 * (float32, float64) and torch.rand (float32), following ATen:
 *  - CPUGeneratorImpl: mt19937; random() = one 32-bit output, random64() = (first << 32) | second.
 *  - uniform_real_distribution: float takes the low 24 bits of random() * 2^-24; double takes the
 *    low 53 bits of random64() * 2^-53.
 *  - normal_kernel: contiguous tensors with numel >= 16 use normal_fill: fill every element with a
 *    uniform, Box–Muller blocks of 16 (pairs j, j+8), and if numel % 16 != 0 draw 16 fresh
 *    uniforms into the last 16 slots and transform them again. float32 goes through the AVX2
 *    kernel (avx_mathfun log256_ps / sincos256_ps, emulated below); double through libm.
 *    Smaller tensors draw each element from normal_distribution<double>, which caches the
 *    second Box–Muller value in the generator (shared by every dtype, kept across calls).
 */
import { MT19937 } from "./mt19937.js";

const TWO_POW_M24 = 2 ** -24;
const TWO_POW_M53 = 2 ** -53;
const U64_MOD = 1n << 64n;

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid shape [${shape}]`);
    n *= d;
  }
  return n;
}

export class TorchGenerator {
  private readonly mt: MT19937;
  /** normal_distribution<double>'s cached r·sin(θ) (CPUGeneratorImpl::next_double_normal_sample_). */
  private nextDoubleNormal: number | undefined;

  /** Like manual_seed: any integer in [-2^63, 2^64); negatives wrap to uint64. */
  constructor(seed: number | bigint) {
    if (typeof seed === "number" && !Number.isSafeInteger(seed)) {
      throw new RangeError(`seed must be a safe integer or a bigint, got ${seed}`);
    }
    const s = BigInt(seed);
    if (s < -(1n << 63n) || s >= U64_MOD) throw new RangeError(`seed ${s} is outside [-2^63, 2^64)`);
    // mt19937 only sees the low 32 bits of the uint64 seed.
    this.mt = new MT19937(Number(BigInt.asUintN(32, s)));
  }

  /** torch.randn(shape, generator=g) as float32. */
  randn(shape: number[]): Float32Array {
    const n = numel(shape);
    const out = new Float32Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalDouble();
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16Avx2(out, i);
    if (n % 16 !== 0) {
      for (let i = n - 16; i < n; i++) out[i] = this.uniformFloat();
      boxMuller16Avx2(out, n - 16);
    }
    return out;
  }

  /** torch.randn(shape, generator=g, dtype=torch.float64). */
  randnFloat64(shape: number[]): Float64Array {
    const n = numel(shape);
    const out = new Float64Array(n);
    if (n < 16) {
      for (let i = 0; i < n; i++) out[i] = this.normalDouble();
      return out;
    }
    for (let i = 0; i < n; i++) out[i] = this.uniformDouble();
    for (let i = 0; i + 16 <= n; i += 16) boxMuller16Double(out, i);
    if (n % 16 !== 0) {
      for (let i = n - 16; i < n; i++) out[i] = this.uniformDouble();
      boxMuller16Double(out, n - 16);
    }
    return out;
  }

  /** torch.rand(shape, generator=g) as float32. */
  rand(shape: number[]): Float32Array {
    const n = numel(shape);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniformFloat();
    return out;
  }

  /** uniform_real_distribution<float>(0, 1): 24 random bits, exact in float32. */
  private uniformFloat(): number {
    return (this.mt.nextU32() & 0xffffff) * TWO_POW_M24;
  }

  /** uniform_real_distribution<double>(0, 1): low 53 bits of random64() = hi[20:0] · 2^32 + lo. */
  private uniformDouble(): number {
    const hi = this.mt.nextU32() & 0x1fffff;
    const lo = this.mt.nextU32();
    return (hi * 0x100000000 + lo) * TWO_POW_M53; // < 2^53: exact
  }

  /** normal_distribution<double>(0, 1) (the scalar path), with its one-value cache. */
  private normalDouble(): number {
    const cached = this.nextDoubleNormal;
    if (cached !== undefined) {
      this.nextDoubleNormal = undefined;
      return cached;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    // torch <= 2.0 writes log(1 - u2), later log1p(-u2); they agree to a few double ulps.
    const r = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.nextDoubleNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/** normal_fill_16<double>: Box–Muller on data[i..i+16) in place, libm math. */
function boxMuller16Double(d: Float64Array, i: number): void {
  for (let j = i; j < i + 8; j++) {
    const radius = Math.sqrt(-2 * Math.log(1 - d[j])); // [0,1) -> (0,1] for log
    const theta = 2 * Math.PI * d[j + 8];
    d[j] = radius * Math.cos(theta);
    d[j + 8] = radius * Math.sin(theta);
  }
}

// ---- float32 emulation of normal_fill_16_AVX2 and avx_mathfun's Cephes log/sincos ----------

const f = Math.fround;
/** Fused multiply-add in float32: a*b of two floats is exact in double, so one rounding remains
 *  (plus a rare double-rounding tie, far below the fixtures' tolerance). PyTorch's x86 wheels are
 *  built by GCC with -mfma, whose default -ffp-contract=fast fuses avx_mathfun's mul+add pairs. */
const fma = (a: number, b: number, c: number): number => f(a * b + c);

const TWO_PI_F = f(2 * Math.PI);
const SQRTHF = f(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const LOG_Q1 = f(-2.12194440e-4);
const LOG_Q2 = f(0.693359375);
const FOPI = f(1.27323954473516); // 4 / pi
const DP1 = f(-0.78515625);
const DP2 = f(-2.4187564849853515625e-4);
const DP3 = f(-3.77489497744594108e-8);
const SIN_P0 = f(-1.9515295891e-4), SIN_P1 = f(8.3321608736e-3), SIN_P2 = f(-1.6666654611e-1);
const COS_P0 = f(2.443315711809948e-5), COS_P1 = f(-1.388731625493765e-3), COS_P2 = f(4.166664568298827e-2);

const bitsF32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bitsF32.buffer);

/** log256_ps for one lane; x is in (0, 1] here (u1 >= 2^-24), so the NaN/denormal guards never fire. */
function logCephes(x: number): number {
  bitsF32[0] = x;
  const bits = bitsU32[0];
  let e = (bits >>> 23) - 126; // unbiased exponent + 1, for the mantissa scaled into [0.5, 1)
  bitsU32[0] = (bits & 0x807fffff) | 0x3f000000;
  let m = bitsF32[0];
  if (m < SQRTHF) {
    e -= 1;
    m = f(f(m - 1) + m);
  } else {
    m = f(m - 1);
  }
  const z = f(m * m);
  let y = LOG_P[0];
  for (let k = 1; k < 9; k++) y = fma(y, m, LOG_P[k]);
  y = f(y * m);
  y = fma(y, z, f(e * LOG_Q1));
  y = f(y - z * 0.5); // z*0.5 is exact, so fused or not gives the same
  return f(f(m + y) + e * LOG_Q2); // e*Q2 is exact (Q2 has 9 significant bits)
}

let sinOut = 0;
/** sincos256_ps for one lane, theta in [0, 2pi); returns cos, leaves sin in sinOut. */
function sincosCephes(x: number): number {
  let j = Math.trunc(f(x * FOPI));
  j = (j + 1) & ~1;
  const y = j; // small integer, exact in float
  const sinNeg = (j & 4) !== 0;
  const cosNeg = (~(j - 2) & 4) !== 0;
  const swap = (j & 2) !== 0; // which polynomial gives sin and which cos
  // Extended-precision reduction x - j*pi/4 (y*DP1, y*DP2 are exact; y*DP3 is fused).
  x = fma(y, DP3, f(f(x + y * DP1) + y * DP2));
  const z = f(x * x);
  let c = fma(COS_P0, z, COS_P1);
  c = fma(c, z, COS_P2);
  c = f(c * z);
  c = f(f(c * z - z * 0.5) + 1); // fused: c*z - (exact z*0.5), one rounding
  let s = fma(SIN_P0, z, SIN_P1);
  s = fma(s, z, SIN_P2);
  s = f(s * z);
  s = fma(s, x, x);
  const sv = swap ? c : s;
  const cv = swap ? s : c;
  sinOut = sinNeg ? -sv : sv;
  return cosNeg ? -cv : cv;
}

/** normal_fill_16_AVX2 on d[i..i+16) in place (mean 0, std 1: the final fmadd is exact). */
function boxMuller16Avx2(d: Float32Array, i: number): void {
  for (let j = i; j < i + 8; j++) {
    const radius = f(Math.sqrt(f(-2 * logCephes(f(1 - d[j])))));
    const cos = sincosCephes(f(TWO_PI_F * d[j + 8]));
    d[j] = radius * cos;
    d[j + 8] = radius * sinOut;
  }
}
