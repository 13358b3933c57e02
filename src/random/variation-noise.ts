/**
 * AUTOMATIC1111's variation seeds (subseed, subseed_strength): each image's initial noise is the
 * spherical interpolation of the noise of its seed and that of its variation seed, as A1111's
 * processing.slerp computes it on the per-image noise [C, H, W] in float32:
 *   norms over dim 1 (the rows: A1111 normalizes each (channel, column) vector over H), dot = the
 *   summed products over dim 1, and, when dot.mean() > 0.9995, the straight blend
 *   low * val + high * (1 - val) (A1111's own weights, kept); else
 *   sin((1 - val) ω) / sin ω · low + sin(val ω) / sin ω · high, ω = acos(dot).
 * The variation noise comes from a fresh generator per image seeded with its variation seed.
 */
import { TorchGenerator } from "./torch-generator.js";

const f = Math.fround;

/** A1111's slerp(val, low, high) for one image's noise [c, h, w]. */
export function a1111Slerp(val: number, low: Float32Array, high: Float32Array, c: number, h: number, w: number): Float32Array {
  const v = f(val);
  const n = c * w;
  const lowNorm = new Float64Array(n), highNorm = new Float64Array(n), dot = new Float32Array(n);
  for (let ch = 0; ch < c; ch++) for (let x = 0; x < w; x++) {
    let a = 0, b = 0;
    for (let y = 0; y < h; y++) { const i = (ch * h + y) * w + x; a += low[i] * low[i]; b += high[i] * high[i]; }
    lowNorm[ch * w + x] = f(Math.sqrt(a));
    highNorm[ch * w + x] = f(Math.sqrt(b));
  }
  let mean = 0;
  for (let ch = 0; ch < c; ch++) for (let x = 0; x < w; x++) {
    const k = ch * w + x;
    let d = 0;
    for (let y = 0; y < h; y++) { const i = (ch * h + y) * w + x; d += f(f(low[i] / lowNorm[k]) * f(high[i] / highNorm[k])); }
    dot[k] = d;
    mean += dot[k];
  }
  const out = new Float32Array(low.length);
  if (mean / n > 0.9995) {
    for (let i = 0; i < out.length; i++) out[i] = f(f(low[i] * v) + f(high[i] * f(1 - v)));
    return out;
  }
  for (let ch = 0; ch < c; ch++) for (let x = 0; x < w; x++) {
    const k = ch * w + x;
    const omega = f(Math.acos(dot[k])), so = f(Math.sin(omega));
    const wl = f(f(Math.sin(f(f(1 - v) * omega))) / so), wh = f(f(Math.sin(f(v * omega))) / so);
    for (let y = 0; y < h; y++) { const i = (ch * h + y) * w + x; out[i] = f(f(wl * low[i]) + f(wh * high[i])); }
  }
  return out;
}

/**
 * The batch's initial noise [B, C, H, W] with image b slerped towards randn of `subseeds[b]` (A1111:
 * subseed + b) by `strength`; `noise` unchanged at strength 0.
 */
export function variationNoise(noise: Float32Array, shape: readonly number[], subseeds: readonly (number | bigint)[], strength: number): Float32Array {
  if (!(strength >= 0 && strength <= 1)) throw new RangeError(`the variation strength must be in [0, 1], got ${strength}`);
  if (strength === 0) return noise;
  const [b, c, h, w] = shape;
  if (subseeds.length !== b) throw new RangeError(`${subseeds.length} variation seeds for ${b} images`);
  const per = c * h * w;
  const out = new Float32Array(noise.length);
  for (let i = 0; i < b; i++) {
    const sub = new TorchGenerator(subseeds[i]).randn([c, h, w]);
    out.set(a1111Slerp(strength, noise.subarray(i * per, (i + 1) * per), sub, c, h, w), i * per);
  }
  return out;
}
