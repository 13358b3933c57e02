/**
 * What inpainting adds to image-to-image (diffusers 0.27.2 StableDiffusionXLInpaintPipeline): a
 * binarized mask, the masked image (the init image with the repainted area at 0 in [-1, 1]), the
 * random draws in diffusers' order (image latents, noise, masked-image latents, always drawn), and
 * the loop hooks: a 9-channel inpainting UNet takes [latents, mask, masked-image latents] as its input;
 * a plain 4-channel UNet gets the known region blended back after every step, re-noised to the next
 * timestep.
 */
import { isRgbImage, type FloatTensor } from "../../image/image.js";
import type { RgbImage } from "../../image/png.js";
import { PerImageGenerator } from "../../random/index.js";
import { maskFromRgb } from "../../image/mask.js";
import type { NoiseGenerator } from "../../schedulers/index.js";
import { encodeInitImage } from "../vae-io.js";
import { PipelineInputError } from "../errors.js";
import type { SdxlComponents } from "./components.js";
import type { DenoiseHook } from "./denoise.js";
import { initialNoise, tileImages, type InitInput, type Prepared } from "./prepare.js";

/** A mask: 8-bit RGB (as PIL's convert("L")), or floats [H, W], [1, H, W] or [M, 1, H, W] in [0, 1]; 1 (white) = repaint. */
export type MaskInput = RgbImage | FloatTensor;

/** [M, H*W] binary masks (mask_processor: grayscale, then < 0.5 -> 0, else 1). */
export interface BinaryMask { data: Float32Array; count: number; height: number; width: number }

const f = Math.fround;

/** The mask as diffusers' mask_processor leaves it, checked against the init image's size. */
export function binarizeMask(mask: MaskInput, init: InitInput): BinaryMask {
  const grey = maskPlanes(mask);
  if (grey.height !== init.height || grey.width !== init.width) {
    const what = init.given === "latents" ? "the init latents are (x the VAE scale)" : "the image is";
    throw new PipelineInputError(`the mask is ${grey.width}x${grey.height} but ${what} ${init.width}x${init.height}; they must be the same size`);
  }
  const m = init.tensor.shape[0];
  if (grey.count !== 1 && grey.count !== m) throw new PipelineInputError(`${grey.count} masks for ${m} init images: pass one mask, or one per image`);
  const data = grey.data.map((v) => (v < 0.5 ? 0 : 1));
  if (!data.some((v) => v === 1)) throw new PipelineInputError("the mask is all black: nothing to repaint (white marks the area to repaint)");
  return { data, count: grey.count, height: grey.height, width: grey.width };
}

function maskPlanes(mask: MaskInput): BinaryMask {
  if (isRgbImage(mask)) {
    const img = mask;
    if (img.data.length !== 3 * img.width * img.height) throw new PipelineInputError(`the mask image holds ${img.data.length} bytes, expected ${img.width}x${img.height} RGB`);
    return { ...maskFromRgb(img), count: 1 };
  }
  const t = mask as FloatTensor;
  const s = t.shape;
  const ok = s.length === 2 || (s.length === 3 && s[0] === 1) || (s.length === 4 && s[1] === 1);
  if (!ok) throw new PipelineInputError(`a float mask must be [H, W], [1, H, W] or [M, 1, H, W], got [${s}]`);
  const [height, width] = s.slice(-2);
  const count = s.length === 4 ? s[0] : 1;
  if (t.data.length !== count * height * width) throw new PipelineInputError(`the mask holds ${t.data.length} values, expected [${s}]`);
  if (!t.data.every((v) => v >= 0 && v <= 1)) throw new PipelineInputError("mask values must be in [0, 1]");
  return { data: t.data, count, height, width };
}

/** What the inpainting loop starts from and the hooks it adds. */
export interface InpaintStart {
  latents: Float32Array;
  shape: number[];
  hooks: DenoiseHook[];
}

/**
 * prepare_latents and prepare_mask_latents in diffusers' order of random draws, then the hooks for
 * this UNet (4 channels: blend; 9 channels: extra input channels).
 */
export async function prepareInpaint(c: SdxlComponents, p: Prepared, init: InitInput, mask: BinaryMask, strength: number, timesteps: number[], how: { latentFill?: LatentFill; denoisingStart?: number } = {}): Promise<InpaintStart> {
  const unetChannels = c.unet.config.inChannels;
  const latentChannels = c.vae.config.latentChannels;
  if (unetChannels !== latentChannels && unetChannels !== 2 * latentChannels + 1) {
    throw new PipelineInputError(`an inpainting UNet takes ${latentChannels} (latents) or ${2 * latentChannels + 1} (latents, mask, masked image) input channels; this one has ${unetChannels}`);
  }
  const blend = unetChannels === latentChannels;
  const { latentFill, denoisingStart } = how;
  // only a 4-channel UNet (which blends) continues from latents: an inpainting UNet needs the masked image
  if (init.given === "latents" && !blend) throw new PipelineInputError("an inpainting UNet (9 input channels) needs the init image in pixels (the masked image is encoded from it), not latents");
  if (latentFill && denoisingStart !== undefined) throw new PipelineInputError("latentFill changes the init latents before they are noised; with denoisingStart they are taken as they are");
  const full = strength === 1 && denoisingStart === undefined;
  const f8 = c.vaeScaleFactor;
  const h = init.height / f8, w = init.width / f8;
  const shape = [p.batch, latentChannels, h, w];
  // diffusers encodes the M images once, drawing image i from generator i of a list (it does not tile first as img2img does)
  const m = init.tensor.shape[0];
  if (p.batch % m !== 0) throw new PipelineInputError(`${m} init images cannot be spread over ${p.batch} images`);
  const gen = firstGenerators(p.generator, m);
  const image = init.given === "latents" ? tileImages(init.tensor, p.batch)
    : blend || !full ? await encodeInitImage(c.vae, init.tensor, p.batch, gen, p.tiling) : undefined;
  const noise = initialNoise(p, shape);
  const sigma = f(p.scheduler.initNoiseSigma);
  const maskLat = maskLatents(mask, f8);
  const start = latentFill && image ? fillMasked(image.data, maskLat, p.batch, latentFill === "noise" ? noise : undefined) : image?.data;
  // denoising_start: the image latents (another run's partly denoised ones) are continued as they are
  const latents = denoisingStart !== undefined ? start! : full ? noise.map((v) => v * sigma) : p.scheduler.addNoise(start!, noise, timesteps[0]);
  // encoded (and its draws made) even for a 4-channel UNet, which never sees it, as diffusers does; latents cannot be masked
  const masked = init.given === "image" ? await encodeInitImage(c.vae, maskedImage(init.tensor, mask), p.batch, gen, p.tiling) : undefined;
  const hook = blend ? blendHook(image!.data, noise, maskLat, p.batch) : channelsHook(maskLat, masked!.data, p.batch, latentChannels, h * w);
  return { latents, shape, hooks: [hook] };
}

/** A1111's inpainting_fill 2 / 3: what the masked init latents become before noising. */
export type LatentFill = "noise" | "zeros";

/** Image latents [B, C, h, w] with the masked region replaced by the noise (or zeros); the known region unchanged. */
function fillMasked(image: Float32Array, maskLat: FloatTensor, batch: number, noise?: Float32Array): Float32Array {
  const plane = maskLat.shape[2] * maskLat.shape[3];
  const per = image.length / batch, channels = per / plane;
  const out = image.slice();
  for (let b = 0; b < batch; b++) {
    const mk = maskLat.data.subarray((b % maskLat.shape[0]) * plane);
    for (let ch = 0; ch < channels; ch++) {
      const o = b * per + ch * plane;
      for (let k = 0; k < plane; k++) if (mk[k] === 1) out[o + k] = noise ? noise[o + k] : 0;
    }
  }
  return out;
}

/** The first m generators of a per-image list (the whole generator otherwise). */
function firstGenerators(g: NoiseGenerator, m: number): NoiseGenerator {
  return g instanceof PerImageGenerator && g.generators.length > m ? new PerImageGenerator(g.generators.slice(0, m)) : g;
}

/** The init image [M, 3, H, W] in [0, 1] with the repainted area at 0.5 (0 after the VAE's 2x - 1, as diffusers' image * (mask < 0.5)). */
function maskedImage(image: FloatTensor, mask: BinaryMask): FloatTensor {
  const [m, , H, W] = image.shape;
  const plane = H * W;
  const data = image.data.slice();
  for (let b = 0; b < m; b++) {
    const mk = mask.data.subarray((b % mask.count) * plane, (b % mask.count + 1) * plane);
    for (let ch = 0; ch < 3; ch++) {
      const o = (b * 3 + ch) * plane;
      for (let i = 0; i < plane; i++) if (mk[i] >= 0.5) data[o + i] = 0.5;
    }
  }
  return { data, shape: image.shape };
}

/** F.interpolate(mask, size=(h, w)) (nearest): the mask at every f-th pixel, [count, h*w]. */
export function maskLatents(mask: BinaryMask, factor: number): FloatTensor {
  const h = mask.height / factor, w = mask.width / factor;
  const data = new Float32Array(mask.count * h * w);
  for (let b = 0; b < mask.count; b++) {
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(b * h + y) * w + x] = mask.data[(b * mask.height + y * factor) * mask.width + x * factor];
  }
  return { data, shape: [mask.count, 1, h, w] };
}

/**
 * 4-channel UNets: after each step, latents = (1 - mask) * known + mask * latents, where known is
 * the image latents noised to the next timestep (the image latents themselves after the last).
 */
function blendHook(image: Float32Array, noise: Float32Array, maskLat: FloatTensor, batch: number): DenoiseHook {
  const plane = maskLat.shape[2] * maskLat.shape[3];
  const per = image.length / batch, channels = per / plane;
  return {
    afterStep(latents, ctx) {
      const last = ctx.step === ctx.totalSteps - 1;
      const known = last ? image : ctx.scheduler.addNoise(image, noise, ctx.timesteps[ctx.step + 1]);
      const out = new Float32Array(latents.length);
      for (let b = 0; b < batch; b++) {
        const mk = maskLat.data.subarray((b % maskLat.shape[0]) * plane);
        for (let ch = 0; ch < channels; ch++) {
          const o = b * per + ch * plane;
          for (let i = 0; i < plane; i++) {
            const m = mk[i];
            out[o + i] = f(f((1 - m) * known[o + i]) + f(m * latents[o + i]));
          }
        }
      }
      return out;
    },
  };
}

/** 9-channel UNets: [scaled latents, mask, masked-image latents] along channels, per UNet-batch image. */
function channelsHook(maskLat: FloatTensor, masked: Float32Array, batch: number, channels: number, plane: number): DenoiseHook {
  const per = channels * plane;
  return {
    extendSample(sample) {
      const unetBatch = sample.length / per;
      const out = new Float32Array(unetBatch * (2 * channels + 1) * plane);
      for (let b = 0; b < unetBatch; b++) {
        let o = b * (2 * channels + 1) * plane;
        out.set(sample.subarray(b * per, (b + 1) * per), o);
        o += per;
        const mi = b % batch % maskLat.shape[0];
        out.set(maskLat.data.subarray(mi * plane, (mi + 1) * plane), o);
        o += plane;
        const li = b % batch;
        out.set(masked.subarray(li * per, (li + 1) * per), o);
      }
      return out;
    },
  };
}
