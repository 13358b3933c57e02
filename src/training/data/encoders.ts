/**
 * The frozen encoders of training: captions → (prompt_embeds [77, D1 + D2], pooled [P]) with the
 * pipeline's own prompt encoder (as the scripts' encode_prompt), images → VAE latents
 * (latent_dist.sample() · scaling_factor). Both cache by key when asked: text embeddings by caption
 * (deterministic; optionally on disk too); latents are cached by the batch source (batches.ts).
 */
import type { Variant } from "../../loaders/component.js";
import type { SessionOptions } from "../../runtime/session.js";
import { PromptEncoder } from "../../pipelines/prompt-encoding.js";
import { VaeRunner } from "../../pipelines/sessions.js";
import type { TrainingRng } from "../rng.js";
import { DiskCache } from "./disk-cache.js";

export interface TextEmbedding { hidden: Float32Array; pooled: Float32Array }

export class TextEmbedder {
  private readonly cache = new Map<string, TextEmbedding>();
  private encoder?: PromptEncoder;
  private released = false;

  /** The text encoders are opened on the first caption that no cache holds. */
  constructor(private readonly modelDir: string, private readonly variant: Variant, private readonly session: SessionOptions = {}, private readonly disk?: DiskCache) {}

  async embed(caption: string): Promise<TextEmbedding> {
    const known = this.cache.get(caption);
    if (known) return known;
    const key = DiskCache.key("text", this.modelDir, this.variant ?? "", caption);
    const stored = this.disk?.get("text", key);
    let out: TextEmbedding;
    if (stored) out = { hidden: stored.hidden, pooled: stored.pooled };
    else {
      if (this.released) throw new Error(`text encoders released; caption not cached: "${caption}"`);
      this.encoder ??= await PromptEncoder.open(this.modelDir, { variant: this.variant, session: this.session });
      const e = await this.encoder.encode({ prompt: caption, doClassifierFreeGuidance: false });
      out = { hidden: e.promptEmbeds.data, pooled: e.pooledPromptEmbeds.data };
      this.disk?.put("text", key, out as unknown as Record<string, Float32Array>);
    }
    this.cache.set(caption, out);
    return out;
  }

  /** Encodes every caption now, then frees the encoders' sessions (their memory goes to training). */
  async precompute(captions: Iterable<string>): Promise<void> {
    for (const c of new Set(captions)) await this.embed(c);
    await this.release();
  }

  async release(): Promise<void> {
    this.released = true;
    const e = this.encoder;
    this.encoder = undefined;
    if (e) await e.release();
  }
}

export class LatentEncoder {
  private constructor(private vae: VaeRunner | undefined) {}

  static open(modelDir: string, variant: Variant, session: SessionOptions = {}): LatentEncoder {
    return new LatentEncoder(VaeRunner.open(modelDir, variant, session));
  }

  get scaleFactor(): number { return this.vae?.scaleFactor ?? 8; }

  /** [3, R, R] in [-1, 1] → [C, R/f, R/f] scaled latents: latent_dist.sample() · scaling_factor. */
  async encode(pixels: Float32Array, resolution: number, rng: TrainingRng): Promise<Float32Array> {
    if (!this.vae) throw new Error("VAE released; latent not cached");
    const { mean, logvar } = await this.vae.encode(pixels, resolution, resolution);
    const eps = rng.randn(mean.length);
    const sf = Math.fround(this.vae.config.scalingFactor);
    const f = Math.fround;
    return mean.map((m, i) => f(f(m + f(f(Math.exp(f(0.5 * logvar[i]))) * eps[i])) * sf));
  }

  async release(): Promise<void> {
    const v = this.vae;
    this.vae = undefined;
    if (v) await v.release();
  }
}
