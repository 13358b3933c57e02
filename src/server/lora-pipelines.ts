/**
 * Per-request LoRAs for whoever runs jobs (the in-process queue, a Redis worker): the base pipeline
 * plus a few variants made with `pipe.withLoras(...)`, most recently used first. A LoRA is folded
 * into the UNet and text-encoder sessions when they are compiled, so a variant holds its own copy of
 * those weights: the cache is small (default one set), an evicted variant is released, and only the
 * pipeline running a job keeps its UNet compiled. Jobs run one at a time, so a variant is never
 * evicted or idled while in use. A fast-preset job (`--fast`) is one more LoRA set: the LCM-LoRA
 * at weight 1 after the request's own.
 */
import { statSync } from "node:fs";
import type { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { LoraError, type LoraSpec } from "../loaders/lora.js";
import { formatLoraTag, loraTag, type LoraTag } from "../prompts/lora-tags.js";
import { invalid } from "./errors.js";
import { LoraLibrary, LoraLibraryError } from "./lora-library.js";

export const DEFAULT_LORA_CACHE = 1;

/**
 * LoRA weights are applied in steps of 0.05 (0.8123 applies as 0.8): each distinct weight set
 * compiles its own UNet (seconds to minutes), so weights that differ by less than a visible amount
 * share one; a request cycling through weights cannot force a compile each time.
 */
export const LORA_WEIGHT_STEP = 0.05;

/** The weights rounded to LORA_WEIGHT_STEP; LoRAs whose weights all round to 0 drop out. */
export function quantizeLoras(loras: readonly LoraTag[]): LoraTag[] {
  const q = (w: number) => Math.round(w / LORA_WEIGHT_STEP) / (1 / LORA_WEIGHT_STEP);
  return loras.map((l) => loraTag(l.name, q(l.weight), q(l.textEncoderWeight ?? l.weight)))
    .filter((l) => l.weight !== 0 || (l.textEncoderWeight ?? 0) !== 0);
}

export class LoraPipelines {
  private readonly cache = new Map<string, StableDiffusionXLPipeline>();
  /** Variants made so far (each one compiles its own UNet sessions). */
  created = 0;

  readonly library: LoraLibrary | undefined;
  /** Variants kept between jobs (0: each is released after its job). */
  readonly cacheSize: number;
  private readonly log: (line: string) => void;
  /** Who runs the jobs, for messages: "server" or "worker". */
  private readonly runner: string;
  /** --fast: the local LCM-LoRA file that fast jobs add (absent: fast jobs are refused). */
  readonly fastLora: string | undefined;

  constructor(readonly base: StableDiffusionXLPipeline, opts: { library?: LoraLibrary; cacheSize?: number; log?: (line: string) => void; runner?: string; fastLora?: string } = {}) {
    this.library = opts.library;
    this.fastLora = opts.fastLora;
    const cacheSize = this.cacheSize = opts.cacheSize ?? DEFAULT_LORA_CACHE;
    this.log = opts.log ?? (() => {});
    this.runner = opts.runner ?? "server";
    if (!Number.isInteger(cacheSize) || cacheSize < 0) throw new Error(`the LoRA pipeline cache size must be a whole number >= 0, got ${cacheSize}`);
  }

  /**
   * Runs `fn` on the base pipeline (no LoRAs asked for) or on the variant with these LoRAs on top of
   * the base's; `fast`: with the LCM-LoRA too.
   */
  async use<T>(loras: readonly LoraTag[] | undefined, fn: (pipe: StableDiffusionXLPipeline) => Promise<T>, fast = false): Promise<T> {
    loras = loras ? quantizeLoras(loras) : [];
    if (fast && !this.fastLora) throw invalid(`this ${this.runner} was not started with --fast (or knows no LCM-LoRA for ${this.base.model.name}), so it cannot run preset "fast" on it (restart \`ssd1b ${this.runner === "worker" ? "worker" : "serve"}\` with --fast, and --fast-lora for a model whose LCM-LoRA is not known)`, "no_fast_preset", "preset");
    if (!loras.length && !fast) {
      await this.idleOthers(this.base);
      return fn(this.base);
    }
    const files = [...(loras.length ? await this.resolve(loras) : []), ...(fast ? [{ file: this.fastLora!, weight: 1 }] : [])];
    // the file's size and time are part of the key: a LoRA saved again under the same name is read again
    const key = files.map((f) => {
      const s = statSync(f.file, { throwIfNoEntry: false });
      if (!s) throw invalid(`the LoRA file ${f.file} is gone`, "unknown_lora", "loras");
      return `${f.file}\0${f.weight}\0${f.textEncoderWeight ?? f.weight}\0${s.size}\0${s.mtimeMs}`;
    }).join("\n");
    let pipe = this.cache.get(key);
    if (pipe) {
      this.cache.delete(key); // re-inserted below as the most recent
    } else {
      // make room first: the evicted variant's sessions are freed before the new one compiles any
      await this.evict(Math.max(this.cacheSize - 1, 0));
      const what = [...loras.map(formatLoraTag), ...(fast ? ["LCM-LoRA (fast)"] : [])].join(" ");
      const t0 = performance.now();
      try {
        pipe = await this.base.withLoras(files);
      } catch (e) {
        if (e instanceof LoraError) throw invalid(`cannot apply ${what}: ${e.message}`, "invalid_lora", "loras");
        throw e;
      }
      this.created++;
      this.log(`LoRA set ${what}: new pipeline (${((performance.now() - t0) / 1000).toFixed(1)} s; its UNet compiles on first use)`);
    }
    this.cache.set(key, pipe);
    await this.idleOthers(pipe);
    try {
      return await fn(pipe);
    } finally {
      if (this.cacheSize === 0) {
        this.cache.delete(key);
        await pipe.release();
      }
    }
  }

  /** Releases every variant (not the base). */
  async release(): Promise<void> {
    await this.evict(0);
  }

  private async resolve(loras: readonly LoraTag[]): Promise<LoraSpec[]> {
    if (!this.library) throw invalid(`this ${this.runner} has no --lora-dir, so it cannot apply ${loras.map(formatLoraTag).join(" ")}`, "no_lora_dir", "loras");
    return Promise.all(loras.map(async (l) => {
      try {
        return { file: await this.library!.resolve(l.name), weight: l.weight, ...(l.textEncoderWeight !== undefined ? { textEncoderWeight: l.textEncoderWeight } : {}) };
      } catch (e) {
        if (e instanceof LoraLibraryError) throw invalid(e.message, "unknown_lora", "loras");
        throw e;
      }
    }));
  }

  /**
   * Frees the compiled sessions of every pipeline but `pipe` that `pipe` does not share (UNet, text
   * encoders with LoRAs): a full-size UNet session holds its own float32 weights, and two at once do
   * not fit beside the VAE decode on a 24 GiB machine. They compile again when their set is next used;
   * the cache then saves reading and matching the LoRA files.
   */
  private async idleOthers(pipe: StableDiffusionXLPipeline): Promise<void> {
    for (const other of [this.base, ...this.cache.values()]) {
      if (other === pipe) continue;
      await other.unet.release();
      if (other.promptEncoder !== pipe.promptEncoder) await other.promptEncoder.release();
    }
  }

  /** Releases the least recently used variants beyond `keep`. */
  private async evict(keep: number): Promise<void> {
    while (this.cache.size > keep) {
      const [key, pipe] = this.cache.entries().next().value as [string, StableDiffusionXLPipeline];
      this.cache.delete(key);
      await pipe.release();
    }
  }
}
