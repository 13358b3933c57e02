/**
 * ControlNet conditioning as a denoising-loop hook (diffusers 0.27.2 StableDiffusionXLControlNetPipeline
 * and MultiControlNetModel): every step each net sees the scaled latents, the text conditioning and its
 * control image; its residuals, times `scale` while the step lies in [start, end] of the schedule
 * (else times 0: the net still runs, as in diffusers), are summed over the nets and fed to the UNet's
 * skip connections and mid block. Guess mode runs the nets on the conditional half only, scales
 * residual k by 10^(-1 + k / n) and gives the unconditional half zeros.
 */
import type { FloatTensor } from "../../image/image.js";
import { isRgbImage, rgbToTensor } from "../../image/image.js";
import type { RgbImage } from "../../image/png.js";
import { resizePlanes } from "../../image/resize.js";
import { diffusersResize } from "../../image/resize-modes.js";
import { PipelineInputError } from "../errors.js";
import type { ControlNetFeeds, ControlNetRunner } from "../controlnet-runner.js";
import { guessModeScales, scaleResiduals, sumResiduals, withZeroUnconditionalHalf } from "../controlnet-residuals.js";
import type { UNetConditioning } from "./conditioning.js";
import type { DenoiseHook } from "./denoise.js";

/** One ControlNet of a call. */
export interface ControlNetUnit {
  /** A loaded ControlNet (pipe.loadControlNet or ControlNetRunner.open). */
  controlnet: ControlNetRunner;
  /** The control image (edges, depth, pose...): 8-bit RGB or [1, 3, H, W] floats in [0, 1]; resized to the output size. */
  image: RgbImage | FloatTensor;
  /** controlnet_conditioning_scale. Default 1. */
  scale?: number;
  /** control_guidance_start / _end: the fraction of the steps in which the net acts. Default 0 and 1. */
  start?: number;
  end?: number;
}

/**
 * A control image as [1, 3, H, W] in [0, 1] at the output size: 8-bit images resized as diffusers'
 * control_image_processor resizes a PIL image (PIL Lanczos), float ones with the same filter in float.
 */
export function controlImageTensor(image: RgbImage | FloatTensor, height: number, width: number, what: string): FloatTensor {
  if (isRgbImage(image)) {
    const img = image;
    if (img.data.length !== 3 * img.width * img.height) throw new PipelineInputError(`${what} must be an RGB image, got ${img.data.length} bytes for ${img.width}x${img.height}`);
    return rgbToTensor(img.width === width && img.height === height ? img : diffusersResize(img, width, height, "default") as RgbImage);
  }
  const t = image as FloatTensor;
  const s = t.shape;
  if (s.length !== 4 || s[0] !== 1 || s[1] !== 3 || t.data.length !== 3 * s[2] * s[3]) throw new PipelineInputError(`${what} must be one RGB image ([1, 3, H, W]), got [${s}]`);
  if (s[2] === height && s[3] === width) return t;
  const data = resizePlanes(t.data, 3, s[2], s[3], height, width, "lanczos").map((v) => Math.min(1, Math.max(0, v)));
  return { data, shape: [1, 3, height, width] };
}

/** The units' scales and windows with defaults, checked. */
export function checkUnits(units: readonly ControlNetUnit[]): { scale: number; start: number; end: number }[] {
  return units.map((u, i) => {
    const scale = u.scale ?? 1, start = u.start ?? 0, end = u.end ?? 1;
    const what = units.length > 1 ? `ControlNet ${i + 1}` : "the ControlNet";
    if (!Number.isFinite(scale)) throw new PipelineInputError(`${what}: the conditioning scale must be a number, got ${scale}`);
    if (!(start >= 0 && start < end && end <= 1)) throw new PipelineInputError(`${what}: the guidance window must satisfy 0 <= start < end <= 1, got start ${start}, end ${end}`);
    return { scale, start, end };
  });
}

/** diffusers' controlnet_keep: 1 unless step i of n lies before start or after end. */
export function controlnetKeep(i: number, n: number, start: number, end: number): number {
  return 1 - Number(i / n < start || (i + 1) / n > end);
}

/** The hook: `images` are the units' control images at the output size, [latentH, latentW] the latents' size. */
export function controlNetHook(units: readonly ControlNetUnit[], images: readonly FloatTensor[], cond: UNetConditioning, guessMode: boolean, [latentH, latentW]: readonly [number, number]): DenoiseHook {
  const settings = checkUnits(units);
  const guess = guessMode && cond.guidance;
  const netBatch = guess ? cond.batch : cond.unetBatch;
  // one control image per call: repeated over the batch, doubled under guidance unless in guess mode
  const condImages = images.map((img) => {
    const out = new Float32Array(netBatch * img.data.length);
    for (let b = 0; b < netBatch; b++) out.set(img.data, b * img.data.length);
    return out;
  });
  return {
    async residuals(scaled, feeds, ctx) {
      const half = (x: Float32Array) => (guess ? cond.conditional(x) : x);
      const all = [];
      for (let k = 0; k < units.length; k++) {
        const { scale, start, end } = settings[k];
        const net = units[k].controlnet;
        const netFeeds: ControlNetFeeds = {
          sample: half(scaled), timestep: new Float32Array(netBatch).fill(ctx.timestep),
          encoder_hidden_states: half(feeds.encoder_hidden_states), text_embeds: half(feeds.text_embeds), time_ids: half(feeds.time_ids),
          controlnet_cond: condImages[k],
        };
        const raw = await net.run(netBatch, latentH, latentW, netFeeds);
        const condScale = Math.fround(scale * controlnetKeep(ctx.step, ctx.totalSteps, start, end));
        const perLayer = guessMode && !net.config.globalPoolConditions;
        all.push(scaleResiduals(raw, perLayer ? guessModeScales(raw.down.length, condScale) : condScale));
      }
      const sum = sumResiduals(all);
      return guess ? withZeroUnconditionalHalf(sum) : sum;
    },
  };
}
