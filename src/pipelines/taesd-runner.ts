/**
 * The pipeline's TAESD (diffusers AutoencoderTiny): decodes latents as the denoising loop leaves them
 * (scaling_factor 1.0: TAESD works in the UNet's latent space) into full-size images, for previews
 * during sampling and for fastDecode. One image at a time through a static-shape session kept until
 * another shape is asked for, like VaeRunner. Calls are queued: previews asked for from several places
 * (a server's progress requests) never see a session released under them.
 */
import { encodePng, type RgbImage } from "../image/png.js";
import { toRgb8, type FloatTensor } from "../image/image.js";
import type { Variant } from "../loaders/component.js";
import { ModelSourceError, openTaesdSource } from "../loaders/model-source.js";
import type { ComponentWeights } from "../loaders/component.js";
import { openTaesdWeights, type TaesdComponent } from "../loaders/taesd.js";
import { taesdUpscale, type TaesdConfig } from "../models/taesd/autoencoder-tiny.js";
import type { SessionOptions } from "../runtime/session.js";
import { PipelineInputError } from "./errors.js";
import { decodedToPixels } from "./vae-io.js";
import { SerialQueue, ShapeCache } from "./shape-cache.js";

const f = Math.fround;

export interface OpenTaesdOptions {
  /** Folders: "fp16" tries *.fp16.safetensors first; default fp32 if present, else fp16. */
  variant?: Variant;
  session?: SessionOptions;
  env?: NodeJS.ProcessEnv;
}

export class TaesdRunner {
  private readonly cache = new ShapeCache();
  private readonly serial = new SerialQueue();
  private constructor(readonly taesd: TaesdComponent, private readonly session: SessionOptions) {}

  /** A TAESD folder, a repo id in the HF cache (madebyollin/taesdxl) or a taesdxl_decoder.safetensors file. */
  static open(spec: string, opts: OpenTaesdOptions = {}): TaesdRunner {
    return TaesdRunner.fromWeights(openTaesdSource(spec, opts.variant, opts.env), opts.session);
  }

  /** Checks the weights against the config now. */
  static fromWeights(weights: ComponentWeights, session: SessionOptions = {}): TaesdRunner {
    return new TaesdRunner(openTaesdWeights(weights), session);
  }

  get config(): TaesdConfig { return this.taesd.config; }

  /** A decode is running or queued: a preview maker may skip a step instead of queueing behind it. */
  get busy(): boolean { return this.serial.busy; }

  /** Pixels per latent pixel (8 for TAESDXL). */
  get scaleFactor(): number { return taesdUpscale(this.taesd.config); }

  /** One latent [1, C, h, w] (already divided by scaling_factor) -> image [1, 3, h·f, w·f] in about [-1, 1]. */
  decode(latent: Float32Array, height: number, width: number): Promise<Float32Array> {
    return this.serial.run(async () => {
      const shape = [1, this.config.latentChannels, height, width];
      const graph = await this.cache.get(shape, () => this.taesd.decoder(shape, this.session));
      return (await graph.run({ latent })).decoded;
    });
  }

  /** Latents [N, C, h, w] as the denoising loop leaves them -> images [N, H, W, 3] in [0, 1] (diffusers with pipe.vae = AutoencoderTiny). */
  async decodeLatents(latents: FloatTensor, signal?: AbortSignal): Promise<FloatTensor> {
    const [n, , h, w] = this.checkLatents(latents.data, latents.shape);
    const H = h * this.scaleFactor, W = w * this.scaleFactor;
    const images = new Float32Array(n * H * W * 3);
    for (let b = 0; b < n; b++) {
      signal?.throwIfAborted();
      decodedToPixels(await this.decode(this.unscaled(latents.data, latents.shape, b), h, w), H * W, images.subarray(b * H * W * 3));
    }
    return { data: images, shape: [n, H, W, 3] };
  }

  /** Image `index` of latents [B, C, h, w] (e.g. StepInfo.latents) as full-size 8-bit RGB. */
  async previewImage(latents: Float32Array, shape: readonly number[], index = 0): Promise<RgbImage> {
    const [b, , h, w] = this.checkLatents(latents, shape);
    if (!Number.isInteger(index) || index < 0 || index >= b) throw new RangeError(`latents [${shape}] have no image ${index}`);
    const H = h * this.scaleFactor, W = w * this.scaleFactor;
    const pixels = new Float32Array(H * W * 3);
    decodedToPixels(await this.decode(this.unscaled(latents, shape, index), h, w), H * W, pixels);
    return toRgb8({ data: pixels, shape: [1, H, W, 3] });
  }

  /** The preview as PNG bytes. */
  async previewPng(latents: Float32Array, shape: readonly number[], index = 0): Promise<Buffer> {
    return encodePng(await this.previewImage(latents, shape, index));
  }

  release(): Promise<void> {
    return this.serial.run(() => this.cache.release());
  }

  private checkLatents(data: Float32Array, shape: readonly number[]): number[] {
    const c = this.config.latentChannels;
    if (shape.length !== 4 || shape[1] !== c) throw new PipelineInputError(`TAESD ${this.taesd.where}: latents [${shape}] must be [B, ${c}, h, w]`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new PipelineInputError(`TAESD: latents have ${data.length} values, not [${shape}]`);
    return [...shape];
  }

  /** Image `b` divided by scaling_factor (1.0 for every released TAESD). */
  private unscaled(data: Float32Array, shape: readonly number[], b: number): Float32Array {
    const per = shape[1] * shape[2] * shape[3];
    const sf = f(this.config.scalingFactor);
    const lat = data.slice(b * per, (b + 1) * per);
    if (sf !== 1) for (let i = 0; i < per; i++) lat[i] = f(lat[i] / sf);
    return lat;
  }


}

/** A TAESD must work on the UNet's latents and give images of the VAE's size. */
export function checkTaesdFits(taesd: TaesdRunner, unetChannels: number, vaeScaleFactor: number): void {
  const { where, config } = taesd.taesd;
  if (config.latentChannels !== unetChannels) {
    throw new ModelSourceError(`the TAESD ${where} has latent_channels ${config.latentChannels}, but the UNet works on ${unetChannels}-channel latents; use the TAESD of this model family (taesdxl for SDXL / SSD-1B)`);
  }
  if (taesd.scaleFactor !== vaeScaleFactor) {
    throw new ModelSourceError(`the TAESD ${where} upscales latents ${taesd.scaleFactor}x, the model's VAE ${vaeScaleFactor}x; previews and fast decoding need the same image size`);
  }
}

/**
 * For progress previews (a server's): a memoised maker of the TAESD preview PNG of image `index` of
 * one step's latents. Nothing is decoded until it is called; a failed decode gives undefined.
 */
export function taesdPreviewMaker(taesd: TaesdRunner, latents: Float32Array, shape: readonly number[], index = 0): () => Promise<Buffer | undefined> {
  let png: Promise<Buffer | undefined> | undefined;
  return () => (png ??= taesd.previewPng(latents, shape, index).catch(() => undefined));
}
