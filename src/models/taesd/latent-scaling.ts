/**
 * AutoencoderTiny's scale_latents / unscale_latents: TAESD latents mapped to [0, 1] (and back) for
 * storing them as 8-bit images. Neither encode nor decode applies them; diffusers' pipelines never do.
 */
import type { TaesdConfig } from "./config.js";

const f = Math.fround;

/** clamp(z / (2·latent_magnitude) + latent_shift, 0, 1), in float32 steps as torch. */
export function scaleTaesdLatents(cfg: TaesdConfig, z: Float32Array): Float32Array {
  const div = f(2 * cfg.latentMagnitude), shift = f(cfg.latentShift);
  return z.map((v) => Math.min(1, Math.max(0, f(f(v / div) + shift))));
}

/** (u - latent_shift) · 2·latent_magnitude: the inverse, up to the clamp. */
export function unscaleTaesdLatents(cfg: TaesdConfig, u: Float32Array): Float32Array {
  const mul = f(2 * cfg.latentMagnitude), shift = f(cfg.latentShift);
  return u.map((v) => f(f(v - shift) * mul));
}
