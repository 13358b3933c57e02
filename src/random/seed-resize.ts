/**
 * AUTOMATIC1111's "resize seed from" (seed_resize_from_w / _h): each image's noise is what its seed
 * would give at another size, centred in the noise of the real size. The image's generator still
 * draws the full-size noise first (so its later draws are unchanged); the other-size noise comes from
 * a fresh generator with the same seed and takes the variation seed's slerp (at that size) if asked;
 * where it is larger it is cut to the centre, where smaller the full-size noise shows around it.
 */
import { TorchGenerator } from "./torch-generator.js";
import { a1111Slerp, variationNoise } from "./variation-noise.js";

export interface SeedResize {
  /** The latent size the seeds' noise is drawn at. */
  height: number;
  width: number;
}

/** Offsets along one axis: python's (full - from) // 2 as A1111 centres, clipped to both sides. */
function span(full: number, from: number): { to: number; at: number; len: number } {
  const d = Math.floor((full - from) / 2);
  return { to: Math.max(d, 0), at: Math.max(-d, 0), len: d >= 0 ? from : from + 2 * d };
}

/**
 * The batch's noise [B, C, H, W] (drawn at the real size) with image b's centre replaced by randn of
 * seeds[b] at `from`, slerped towards randn of variation.seeds[b] by variation.strength.
 */
export function seedResizedNoise(
  noise: Float32Array, shape: readonly number[], seeds: readonly (number | bigint)[], from: SeedResize,
  variation?: { seeds: readonly (number | bigint)[]; strength: number },
): Float32Array {
  const [b, c, H, W] = shape;
  if (seeds.length !== b) throw new RangeError(`${seeds.length} seeds for ${b} images`);
  const { height: h, width: w } = from;
  if (!(Number.isInteger(h) && Number.isInteger(w) && h > 0 && w > 0)) throw new RangeError(`the seed resize size must be positive whole numbers, got ${w}x${h}`);
  // A1111 draws nothing else when the sizes agree
  if (h === H && w === W) return variation && variation.strength > 0 ? variationNoise(noise, shape, variation.seeds, variation.strength) : noise;
  const out = noise.slice();
  const ys = span(H, h), xs = span(W, w);
  for (let i = 0; i < b; i++) {
    let small = new TorchGenerator(seeds[i]).randn([c, h, w]);
    if (variation && variation.strength > 0) small = a1111Slerp(variation.strength, small, new TorchGenerator(variation.seeds[i]).randn([c, h, w]), c, h, w);
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < ys.len; y++) {
      const src = (ch * h + ys.at + y) * w + xs.at, dst = ((i * c + ch) * H + ys.to + y) * W + xs.to;
      out.set(small.subarray(src, src + xs.len), dst);
    }
  }
  return out;
}
