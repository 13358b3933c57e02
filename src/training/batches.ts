/**
 * Training batches as the diffusers scripts make them: shuffled examples (an endless stream of
 * epochs, each a fresh permutation), latents from the VAE, noise ~ N(0, 1) (plus noise_offset ·
 * N(0, 1) per channel), timesteps ~ U{0, …, T-1}, noisy = add_noise(latents, noise, t) with the
 * model's DDPM schedule, target = noise (epsilon) or the velocity (v_prediction), and per-sample
 * loss weights (mean, Min-SNR, DreamBooth prior preservation).
 *
 * Every random draw comes from the one training RNG, and the stream position is part of the
 * state, so a resumed run draws exactly what the uninterrupted one would have.
 */
import { statSync } from "node:fs";
import type { DDPMScheduler } from "../schedulers/index.js";
import type { CLIPTokenizer } from "../tokenizer/index.js";
import { TrainingRng } from "./rng.js";
import { DiskCache } from "./data/disk-cache.js";
import type { DatasetItem } from "./data/dataset.js";
import { prepareSample, type AugmentOptions, type Sample } from "./data/sample.js";
import type { LatentEncoder, TextEmbedder } from "./data/encoders.js";

export type Feeds = Record<string, Float32Array | BigInt64Array>;

/** An endless shuffled order over n items, resumable. */
export class EpochOrder {
  epoch = 0;
  position = 0;
  perm: number[] = [];
  constructor(readonly n: number) {}

  next(rng: TrainingRng): number {
    if (this.position >= this.perm.length) {
      if (this.perm.length) this.epoch++;
      this.perm = rng.permutation(this.n);
      this.position = 0;
    }
    return this.perm[this.position++];
  }

  state() { return { epoch: this.epoch, position: this.position, perm: this.perm }; }
  load(s: { epoch: number; position: number; perm: number[] }) { Object.assign(this, { epoch: s.epoch, position: s.position, perm: [...s.perm] }); }
}

export interface BatchOptions {
  items: DatasetItem[];
  /** DreamBooth class images (prior preservation): each batch gets as many, weighted priorLossWeight. */
  priorItems?: DatasetItem[];
  priorLossWeight?: number;
  batchSize: number;
  augment: AugmentOptions;
  /** proportion_empty_prompts: captions replaced by "" with this probability. */
  captionDropout: number;
  noiseOffset: number;
  snrGamma?: number;
  predictionType: "epsilon" | "v_prediction";
  scheduler: DDPMScheduler;
  vae: LatentEncoder;
  /** Frozen text encoders: cached embeddings. */
  text?: TextEmbedder;
  /** Trained text encoders: token ids go into the graph. */
  tokenizers?: [CLIPTokenizer, CLIPTokenizer];
  /**
   * Latents made once per example (augmentation and posterior draw then fixed, as the finetune
   * script's precomputed encodings), each from its own RNG (seed, example) so a cache hit changes no
   * other draw; `disk` keeps them across runs (`modelKey` names the VAE they come from).
   */
  cacheLatents?: { seed: number; disk?: DiskCache; modelKey: string };
}

interface Example { latent: Float32Array; timeIds: number[]; caption: string }

export class BatchSource {
  readonly order: EpochOrder;
  readonly priorOrder?: EpochOrder;
  private readonly latentSize: number;

  constructor(readonly o: BatchOptions) {
    this.order = new EpochOrder(o.items.length);
    if (o.priorItems?.length) this.priorOrder = new EpochOrder(o.priorItems.length);
    this.latentSize = o.augment.resolution / o.vae.scaleFactor;
  }

  /** Rows per batch (instance + class rows with prior preservation). */
  get rows(): number { return this.o.batchSize * (this.priorOrder ? 2 : 1); }

  /** Every caption a batch may use (for precomputing text embeddings). */
  captions(): string[] {
    const all = [...this.o.items, ...(this.o.priorItems ?? [])].map((i) => i.caption);
    if (this.o.captionDropout > 0) all.push("");
    return all;
  }

  /** Encodes every example's latent now (with `cacheLatents`). */
  async precomputeLatents(onProgress: (done: number, total: number) => void = () => {}): Promise<void> {
    if (!this.o.cacheLatents) return;
    const all = [...this.o.items, ...(this.o.priorItems ?? [])];
    for (let i = 0; i < all.length; i++) {
      await this.cached(all[i], i);
      onProgress(i + 1, all.length);
    }
  }

  private readonly latentCache = new Map<number, Example>();

  private async cached(item: DatasetItem, key: number): Promise<Example> {
    const known = this.latentCache.get(key);
    if (known) return { ...known, caption: item.caption };
    const c = this.o.cacheLatents!;
    const R = this.o.augment.resolution;
    const st = statSync(item.file);
    const diskKey = DiskCache.key("latent", c.modelKey, item.file, st.size, st.mtimeMs, this.o.augment, c.seed, key);
    const stored = c.disk?.get("latent", diskKey);
    let ex: Example;
    if (stored) ex = { latent: stored.latent, timeIds: [...stored.time_ids], caption: item.caption };
    else {
      const rng = new TrainingRng((c.seed * 0x9e3779b1 + key * 0x85ebca6b + 0x5eed) >>> 0);
      const s = prepareSample(item, this.o.augment, rng);
      ex = { latent: await this.o.vae.encode(s.pixels, R, rng), timeIds: s.timeIds, caption: item.caption };
      c.disk?.put("latent", diskKey, { latent: ex.latent, time_ids: Float32Array.from(ex.timeIds) });
    }
    this.latentCache.set(key, ex);
    return { ...ex };
  }

  private async example(item: DatasetItem, key: number, rng: TrainingRng): Promise<Example> {
    if (this.o.cacheLatents) return this.cached(item, key);
    const s = prepareSample(item, this.o.augment, rng);
    return { latent: await this.o.vae.encode(s.pixels, this.o.augment.resolution, rng), timeIds: s.timeIds, caption: s.caption };
  }

  async next(rng: TrainingRng): Promise<Feeds> {
    const o = this.o;
    const examples: Example[] = [];
    for (let b = 0; b < o.batchSize; b++) {
      const i = this.order.next(rng);
      examples.push(await this.example(o.items[i], i, rng));
    }
    const instance = examples.length;
    if (this.priorOrder) {
      for (let b = 0; b < o.batchSize; b++) {
        const i = this.priorOrder.next(rng);
        examples.push(await this.example(o.priorItems![i], o.items.length + i, rng));
      }
    }
    for (const e of examples) if (o.captionDropout > 0 && rng.uniform() < o.captionDropout) e.caption = "";
    return this.assemble(examples, instance, rng);
  }

  private async assemble(examples: Example[], instance: number, rng: TrainingRng): Promise<Feeds> {
    const o = this.o;
    const B = examples.length;
    const per = examples[0].latent.length;
    const C = per / (this.latentSize * this.latentSize);
    const f = Math.fround;
    const latents = new Float32Array(B * per);
    examples.forEach((e, b) => latents.set(e.latent, b * per));
    const noise = rng.randn(B * per);
    if (o.noiseOffset) {
      const off = rng.randn(B * C);
      for (let i = 0; i < noise.length; i++) noise[i] = f(noise[i] + f(o.noiseOffset * off[Math.floor(i / (per / C))]));
    }
    const T = o.scheduler.config.num_train_timesteps;
    const t = Array.from({ length: B }, () => rng.int(T));
    const ac = o.scheduler.alphasCumprod;
    const noisy = new Float32Array(B * per), target = new Float32Array(B * per);
    for (let b = 0; b < B; b++) {
      const sa = f(Math.sqrt(ac[t[b]])), sb = f(Math.sqrt(f(1 - ac[t[b]])));
      for (let k = b * per; k < (b + 1) * per; k++) {
        noisy[k] = f(f(sa * latents[k]) + f(sb * noise[k]));
        // get_velocity: sqrt(ᾱ)·noise - sqrt(1 - ᾱ)·x0
        target[k] = o.predictionType === "epsilon" ? noise[k] : f(f(sa * noise[k]) - f(sb * latents[k]));
      }
    }
    const weights = new Float32Array(B);
    const prior = B - instance;
    for (let b = 0; b < B; b++) {
      let w = b < instance ? 1 / instance : (o.priorLossWeight ?? 1) / prior;
      if (o.snrGamma !== undefined) {
        // Min-SNR (Hang et al. 2023) as the scripts compute it: min(snr, γ) / snr, or / (snr + 1) for v
        const snr = ac[t[b]] / (1 - ac[t[b]]);
        w *= Math.min(snr, o.snrGamma) / (o.predictionType === "epsilon" ? snr : snr + 1);
      }
      weights[b] = w;
    }
    const feeds: Feeds = {
      noisy, target, loss_weights: weights,
      timestep: Float32Array.from(t),
      time_ids: Float32Array.from(examples.flatMap((e) => e.timeIds)),
    };
    if (o.tokenizers) {
      const ids = o.tokenizers.map((tok) => BigInt64Array.from(examples.flatMap((e) => tok.encodePadded(e.caption)), BigInt));
      feeds.input_ids = ids[0];
      feeds.input_ids_2 = ids[1];
    } else {
      const embeds = [];
      for (const e of examples) embeds.push(await o.text!.embed(e.caption));
      const hidden = new Float32Array(B * embeds[0].hidden.length), pooled = new Float32Array(B * embeds[0].pooled.length);
      embeds.forEach((e, b) => { hidden.set(e.hidden, b * e.hidden.length); pooled.set(e.pooled, b * e.pooled.length); });
      feeds.encoder_hidden_states = hidden;
      feeds.text_embeds = pooled;
    }
    return feeds;
  }

  state() { return { order: this.order.state(), prior: this.priorOrder?.state() }; }

  load(s: ReturnType<BatchSource["state"]>): void {
    this.order.load(s.order);
    if (this.priorOrder && s.prior) this.priorOrder.load(s.prior);
  }
}
