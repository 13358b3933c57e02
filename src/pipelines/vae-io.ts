/**
 * Between latents and images: diffusers' decode path (latents / scaling_factor, or with
 * latents_mean/std, VAE decode in float32, then (x / 2 + 0.5).clamp(0, 1) as [N, H, W, 3]) and the
 * img2img encode path (image in [0,1] -> [-1,1] -> posterior sample -> scaled latents).
 */
import type { FloatTensor } from "../image/image.js";
import type { NoiseGenerator } from "../schedulers/index.js";
import type { VaeRunner } from "./sessions.js";

const f = Math.fround;

/** Per-channel (mean, std) of latents_mean/latents_std when the VAE config has both, else null. */
function latentStats(vae: VaeRunner): { mean: number[]; std: number[] } | null {
  const c = vae.config;
  return c.latentsMean && c.latentsStd ? { mean: c.latentsMean, std: c.latentsStd } : null;
}

/** Decodes [N, C, h, w] latents (as the denoising loop leaves them) to images [N, H, W, 3] in [0, 1]. */
export async function decodeLatents(vae: VaeRunner, latents: FloatTensor, signal?: AbortSignal, tiling = false): Promise<FloatTensor> {
  const [n, c, h, w] = latents.shape;
  const sf = f(vae.config.scalingFactor);
  const stats = latentStats(vae);
  const plane = h * w, per = c * plane;
  const H = h * vae.scaleFactor, W = w * vae.scaleFactor;
  const images = new Float32Array(n * H * W * 3);
  for (let b = 0; b < n; b++) {
    signal?.throwIfAborted();
    const lat = latents.data.slice(b * per, (b + 1) * per);
    for (let i = 0; i < per; i++) {
      const ch = Math.floor(i / plane);
      lat[i] = stats ? f(f(f(lat[i] * f(stats.std[ch])) / sf) + f(stats.mean[ch])) : f(lat[i] / sf);
    }
    const decoded = await vae.decode(lat, h, w, tiling, signal); // [1, 3, H, W]
    decodedToPixels(decoded, H * W, images.subarray(b * H * W * 3));
  }
  return { data: images, shape: [n, H, W, 3] };
}

/** diffusers' postprocess of one decoded image [3, H, W] in about [-1, 1]: (x / 2 + 0.5).clamp(0, 1) into `out` as [H, W, 3]. */
export function decodedToPixels(decoded: Float32Array, pixels: number, out: Float32Array): void {
  for (let ch = 0; ch < 3; ch++) {
    for (let p = 0; p < pixels; p++) {
      const v = f(f(decoded[ch * pixels + p] / 2) + 0.5);
      out[p * 3 + ch] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
}

/**
 * img2img's latents before noising: each init image [M, 3, H, W] in [0, 1] is normalized to [-1, 1]
 * and encoded; one draw of randn([M, C, h, w]) samples the posterior (mean + exp(logvar / 2) * eps,
 * drawn first from the generator, as diffusers does); then the scaling, and the batch is tiled to
 * `batch` (diffusers' cat([latents] * k): the whole set repeated, not each image).
 */
export async function encodeInitImage(vae: VaeRunner, image: FloatTensor, batch: number, generator: NoiseGenerator, tiling = false): Promise<FloatTensor> {
  const [m, , H, W] = image.shape;
  const h = H / vae.scaleFactor, w = W / vae.scaleFactor, c = vae.config.latentChannels;
  const per = c * h * w, size = 3 * H * W;
  const means = new Float32Array(m * per), logvars = new Float32Array(m * per);
  for (let b = 0; b < m; b++) {
    const img = image.data.slice(b * size, (b + 1) * size).map((v) => f(f(2 * v) - 1));
    const { mean, logvar } = await vae.encode(img, H, W, tiling);
    means.set(mean, b * per);
    logvars.set(logvar, b * per);
  }
  const eps = generator.randn([m, c, h, w]);
  const sf = f(vae.config.scalingFactor);
  const stats = latentStats(vae);
  const latents = new Float32Array(m * per);
  for (let i = 0; i < latents.length; i++) {
    const x = f(means[i] + f(f(Math.exp(f(0.5 * logvars[i]))) * eps[i]));
    const ch = Math.floor((i % per) / (h * w));
    latents[i] = stats ? f(f(f(x - f(stats.mean[ch])) * sf) / f(stats.std[ch])) : f(sf * x);
  }
  const tiled = new Float32Array(batch * per);
  for (let k = 0; k < batch / m; k++) tiled.set(latents, k * m * per);
  return { data: tiled, shape: [batch, c, h, w] };
}
