/**
 * The UNet and VAE of a pipeline as compiled onnxruntime sessions. Sessions have static shapes, so
 * each is compiled on first use for a shape and kept until another shape is asked for (one session
 * of each at a time: a full-size UNet session holds its weights).
 */
import { join } from "node:path";
import { openComponent, type ComponentFiles, type Variant } from "../loaders/component.js";
import { compileComponent } from "../loaders/compile.js";
import { buildUNetGraph, parseUNetConfig, type UNetConfig } from "../models/unet/index.js";
import { openVae, type VaeComponent } from "../models/vae/autoencoder-kl.js";
import type { CompiledGraph, SessionOptions } from "../runtime/session.js";

/** One cached compiled graph, keyed by shape. */
class ShapeCache {
  private key = "";
  private graph?: CompiledGraph;
  async get(shape: readonly number[], compile: () => Promise<CompiledGraph>): Promise<CompiledGraph> {
    const key = shape.join("x");
    if (this.graph && this.key === key) return this.graph;
    await this.release();
    this.graph = await compile();
    this.key = key;
    return this.graph;
  }
  async release(): Promise<void> {
    const g = this.graph;
    this.graph = undefined;
    if (g) await g.release();
  }
}

export interface UNetFeeds {
  sample: Float32Array;
  timestep: Float32Array;
  encoder_hidden_states: Float32Array;
  text_embeds: Float32Array;
  time_ids: Float32Array;
}

export class UNetRunner {
  private readonly cache = new ShapeCache();
  readonly config: UNetConfig;
  private constructor(readonly files: ComponentFiles, private readonly session: SessionOptions) {
    this.config = parseUNetConfig(files.config);
  }

  static open(modelDir: string, variant: Variant, session: SessionOptions = {}): UNetRunner {
    return new UNetRunner(openComponent(join(modelDir, "unet"), variant), session);
  }

  /** Noise prediction for a batch of latents [batch, C, h, w]. */
  async run(batch: number, height: number, width: number, feeds: UNetFeeds): Promise<Float32Array> {
    const graph = await this.cache.get([batch, height, width], () => compileComponent(
      this.files, "unet", `UNet (${this.files.dir}, batch ${batch}, latent ${height}x${width})`,
      (g, vb) => { buildUNetGraph(g, vb, this.config, { batch, height, width }); },
      this.session,
    ));
    return (await graph.run({ ...feeds }))["sample_out"];
  }

  release(): Promise<void> { return this.cache.release(); }
}

/** The VAE, one image at a time (outputs are per image; this keeps full-size activations small). */
export class VaeRunner {
  private readonly enc = new ShapeCache();
  private readonly dec = new ShapeCache();
  private constructor(readonly vae: VaeComponent, private readonly session: SessionOptions) {}

  static open(modelDir: string, variant: Variant, session: SessionOptions = {}): VaeRunner {
    return new VaeRunner(openVae(join(modelDir, "vae"), variant), session);
  }

  get config() { return this.vae.config; }

  /** 2^(down blocks - 1): pixels per latent pixel. */
  get scaleFactor(): number { return 2 ** (this.vae.config.blockOutChannels.length - 1); }

  /** One image [1, 3, H, W] in [-1, 1] -> posterior mean and logvar [1, C, H/f, W/f]. */
  async encode(image: Float32Array, height: number, width: number): Promise<{ mean: Float32Array; logvar: Float32Array }> {
    const shape = [1, this.config.inChannels, height, width];
    const g = await this.enc.get(shape, () => this.vae.encoder(shape, this.session));
    const out = await g.run({ image });
    return { mean: out.mean, logvar: out.logvar };
  }

  /** One latent [1, C, h, w] (already unscaled) -> image [1, 3, h*f, w*f] in about [-1, 1]. */
  async decode(latent: Float32Array, height: number, width: number): Promise<Float32Array> {
    const shape = [1, this.config.latentChannels, height, width];
    const g = await this.dec.get(shape, () => this.vae.decoder(shape, this.session));
    return (await g.run({ latent })).decoded;
  }

  async release(): Promise<void> {
    await this.enc.release();
    await this.dec.release();
  }
}
