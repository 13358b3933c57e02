/**
 * A cheap preview of SDXL latents without the VAE: each latent pixel's 4 channels projected to RGB
 * by a fixed linear map (AUTOMATIC1111's "Approx cheap" factors for SDXL), one PNG pixel per latent
 * pixel (128x128 for a 1024x1024 image). Noisy latents (early steps) are scaled down by their
 * standard deviation so the preview fades from noise into the picture.
 */
import { encodePng } from "../image/png.js";

/** [channel][R, G, B]: SDXL latent channel -> RGB in about [-1, 1]. */
export const SDXL_LATENT_RGB_FACTORS: readonly (readonly [number, number, number])[] = [
  [0.3920, 0.4054, 0.4549],
  [-0.2634, -0.0196, 0.0653],
  [0.0568, 0.1687, -0.0755],
  [-0.3112, -0.2359, -0.2076],
];

/** Image `index` of latents [B, 4, h, w] as 8-bit RGB pixels. */
export function latentToRgb(latents: Float32Array, shape: readonly number[], index = 0): { width: number; height: number; data: Uint8Array } {
  const [b, c, h, w] = shape;
  if (shape.length !== 4 || c < 4 || index >= b) throw new RangeError(`latents [${shape}] have no image ${index} with 4 channels`);
  const plane = h * w;
  const base = index * c * plane;
  let sum = 0, sq = 0;
  const n = 4 * plane;
  for (let i = 0; i < n; i++) { const v = latents[base + i]; sum += v; sq += v * v; }
  const mean = sum / n, std = Math.sqrt(Math.max(0, sq / n - mean * mean));
  const scale = std > 1.5 ? 1 / std : 1;
  const data = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let k = 0; k < 3; k++) {
      let v = 0;
      for (let ch = 0; ch < 4; ch++) v += latents[base + ch * plane + p] * SDXL_LATENT_RGB_FACTORS[ch][k];
      const x = (v * scale + 1) * 127.5;
      data[p * 3 + k] = x <= 0 ? 0 : x >= 255 ? 255 : Math.round(x);
    }
  }
  return { width: w, height: h, data };
}

/** The preview as PNG bytes (fast deflate settings are not exposed by encodePng; latents are small). */
export function latentPreviewPng(latents: Float32Array, shape: readonly number[], index = 0): Buffer {
  return encodePng(latentToRgb(latents, shape, index));
}

/** A memoised preview maker for one step's latents. */
export function previewMaker(latents: Float32Array, shape: readonly number[]): () => Buffer | undefined {
  let png: Buffer | undefined;
  let failed = false;
  return () => {
    if (png || failed) return png;
    try {
      png = latentPreviewPng(latents, shape);
    } catch {
      failed = true;
    }
    return png;
  };
}
