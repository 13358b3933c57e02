/**
 * SDXL prompt encoding with both CLIP text encoders, as diffusers' StableDiffusionXLPipeline.encode_prompt:
 * each encoder's penultimate hidden states, concatenated on the feature axis ([B, 77, D1 + D2]); the
 * pooled embedding is text_encoder_2's projected text_embeds. Negative prompts follow
 * force_zeros_for_empty_prompt: no negative prompt gives zeros, an explicit "" is encoded.
 *
 * Opt-in `promptSyntax: "a1111"`: AUTOMATIC1111's emphasis ((word), [word], (word:1.3)) and BREAK, and
 * prompts of any length in 75-token chunks (77 ids each) whose hidden states are concatenated along
 * the sequence ([B, 77·n, D]; the UNet takes any multiple of 77). Each chunk's hidden states are scaled
 * by the token weights and brought back to their mean (A1111's "original" emphasis, per prompt and
 * encoder); the pooled embedding is the first chunk's, as A1111 does. Prompt and negative prompt are
 * filled up to the same chunk count with empty chunks. A prompt with no emphasis under 76 tokens
 * gives exactly the diffusers embeddings.
 *
 * `promptSyntax: "comfyui"` (the ComfyUI API's): ComfyUI's weights and word-wise chunks
 * (prompts/comfyui.ts); also the diffusers embeddings for a prompt without weights under 76 tokens.
 */
import { join } from "node:path";
import { CLIPTokenizer } from "../tokenizer/index.js";
import { createClipTextEncoder, type ClipTextEncoder, type ClipTextResult } from "../loaders/clip-text.js";
import type { Variant } from "../loaders/component.js";
import { folderComponent, type ComponentWeights } from "../loaders/model-source.js";
import type { WeightDeltas } from "../nn/weight-deltas.js";
import type { SessionOptions } from "../runtime/session.js";
import { applyEmphasis, chunkPromptWith, emptyChunk, PromptSyntaxError, type PromptChunk } from "../prompts/a1111.js";
import { applyComfyWeights, chunkComfyPrompt } from "../prompts/comfyui.js";
import { checkPromptLength } from "../prompts/limits.js";
import { EmbeddingVocabulary, type EmbeddingFinder } from "../prompts/embeddings.js";
import type { TextualInversion } from "../loaders/textual-inversion.js";
import { parseClipTextConfig } from "../models/clip/config.js";
import type { FloatTensor } from "../image/image.js";
import { PipelineInputError } from "./errors.js";
import { ShapeCache } from "./shape-cache.js";

export interface PromptEmbeddings {
  /** [B * numImagesPerPrompt, 77, D1 + D2] (77·n with A1111 syntax and long prompts) */
  promptEmbeds: FloatTensor;
  /** [B * numImagesPerPrompt, projection_dim] */
  pooledPromptEmbeds: FloatTensor;
  /** Only with guidance: same shapes (zeros when no negative prompt was given and force_zeros_for_empty_prompt). */
  negativePromptEmbeds?: FloatTensor;
  negativePooledPromptEmbeds?: FloatTensor;
}

export interface EncodePromptOptions {
  prompt: string | string[];
  /** For tokenizer_2 / text_encoder_2; default `prompt`. */
  prompt2?: string | string[];
  negativePrompt?: string | string[];
  negativePrompt2?: string | string[];
  numImagesPerPrompt?: number;
  /** Compute negative embeddings (guidance scale > 1). Default true. */
  doClassifierFreeGuidance?: boolean;
  /**
   * "diffusers" (default): exactly diffusers (plain text, cut at 77 tokens). "a1111": AUTOMATIC1111's
   * emphasis, BREAK and 75-token chunks for long prompts. "comfyui": ComfyUI's weights and chunks
   * (prompts/comfyui.ts).
   */
  promptSyntax?: PromptSyntax;
  /**
   * diffusers' clip_skip: the layers skipped before SDXL's penultimate one, in both text encoders
   * (hidden_states[-(clipSkip + 2)]; 0 or absent: the penultimate layer). Per encoder as an object,
   * where -1 takes the last layer's output (not normed), as A1111's sdxl_clip_l_skip does for CLIP-L
   * with "Clip skip: 1". The pooled embedding always comes from text_encoder_2's last layer.
   */
  clipSkip?: ClipSkip;
}

export type ClipSkip = number | { textEncoder?: number; textEncoder2?: number };

export type PromptSyntax = "diffusers" | "a1111" | "comfyui";
export const PROMPT_SYNTAXES: readonly PromptSyntax[] = ["diffusers", "a1111", "comfyui"];

/** Chunks of 77 the comfyui syntax may repeat prompt and negative prompt to (their least common multiple; see encodeChunked). */
export const MAX_COMFY_CHUNKS = 16;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** The chunk count prompts of these chunks are encoded at: A1111's most chunks, ComfyUI's least common multiple (MAX_COMFY_CHUNKS at most). */
function chunkTotal(chunks: PromptChunk[][][], syntax: "a1111" | "comfyui"): number {
  const counts = chunks.map((lists) => Math.max(...lists.map((c) => c.length)));
  const n = syntax === "a1111" ? Math.max(...counts) : counts.reduce((a, c) => (a * c) / gcd(a, c), 1);
  if (syntax === "comfyui" && n > MAX_COMFY_CHUNKS) {
    throw new PipelineInputError(`the prompts make ${[...new Set(counts)].join(" and ")} chunks of 75 tokens; ComfyUI repeats them to ${n} (their least common multiple), more than ${MAX_COMFY_CHUNKS} here: shorten one`);
  }
  return n;
}

export interface PromptEncoderOptions {
  session?: SessionOptions;
  forceZerosForEmptyPrompt?: boolean;
  warn?: (m: string) => void;
  /** LoRA deltas for text_encoder and text_encoder_2. */
  deltas?: { textEncoder?: WeightDeltas; textEncoder2?: WeightDeltas };
  /** Default prompt syntax of encode() calls that name none. */
  promptSyntax?: PromptSyntax;
  /** Textual inversions (SDXL embeddings): their vectors after each encoder's vocabulary, named in prompts (prompts/embeddings.ts). */
  textualInversions?: readonly TextualInversion[];
}

const asList = (p: string | string[]) => (typeof p === "string" ? [p] : p);

/** Repeats each of `rows` rows of `data` n times in place order (torch .repeat(1, n, 1).view(rows * n, ...)). */
export function repeatRows(data: Float32Array, rows: number, n: number): Float32Array {
  if (n === 1) return data;
  const size = data.length / rows;
  const out = new Float32Array(data.length * n);
  for (let r = 0; r < rows; r++) for (let k = 0; k < n; k++) out.set(data.subarray(r * size, (r + 1) * size), (r * n + k) * size);
  return out;
}

/** hidden_states[-(skip + 2)] of one run, from its stacked hidden_states ([L + 1, 1, S, D]). */
function hiddenStateAfterSkip(out: ClipTextResult, skip: number): Float32Array {
  if (skip === 0) return out.penultimate_hidden_state;
  const size = out.penultimate_hidden_state.length;
  const count = out.hidden_states.length / size;
  const index = count - (skip + 2);
  return out.hidden_states.subarray(index * size, (index + 1) * size);
}

/** The per-encoder skips of a clipSkip option, checked against each encoder's layer count. */
export function clipSkipPerEncoder(clipSkip: ClipSkip | undefined, layers: readonly [number, number]): [number, number] {
  if (clipSkip === undefined) return [0, 0];
  const both = typeof clipSkip === "number";
  const skips: [number, number] = both ? [clipSkip, clipSkip] : [clipSkip.textEncoder ?? 0, clipSkip.textEncoder2 ?? 0];
  for (const [k, skip] of skips.entries()) {
    const least = both ? 0 : -1;
    if (!Number.isInteger(skip) || skip < least || skip > layers[k] - 1) {
      throw new PipelineInputError(`clipSkip${both ? "" : k === 0 ? ".textEncoder" : ".textEncoder2"} must be an integer from ${least} to ${layers[k] - 1} (text_encoder${k === 0 ? "" : "_2"} has ${layers[k]} layers), got ${skip}`);
    }
  }
  return skips;
}

const NO_EMBEDDINGS = new EmbeddingVocabulary([]);

/** A tokenizer's ids of a text without BOS and EOS. */
const contentIds = (tok: CLIPTokenizer) => (text: string) => (text === "" ? [] : tok.encode(text).slice(1, -1));

/** The textual inversions' vectors for one encoder, in their order (undefined without any), checked against its width. */
function extraTokenRows(tis: readonly TextualInversion[], key: "clipL" | "clipG", weights: ComponentWeights): Float32Array | undefined {
  if (!tis.length) return undefined;
  const hidden = parseClipTextConfig(weights.config, weights.where).hiddenSize;
  const out = new Float32Array(tis.reduce((n, t) => n + t.vectors, 0) * hidden);
  let at = 0;
  for (const t of tis) {
    if (t[key].length !== t.vectors * hidden) throw new PipelineInputError(`${t.file}: its ${key === "clipL" ? "clip_l" : "clip_g"} vectors are ${t[key].length / t.vectors} wide, the text encoder's are ${hidden}`);
    out.set(t[key], at);
    at += t[key].length;
  }
  return out;
}

/** What prompt encoding needs of a text encoder. */
export type TextEncoderHandle = Pick<ClipTextEncoder, "config" | "withProjection" | "run" | "release">;

/**
 * A text encoder whose session can be dropped between uses (low-memory mode) and is compiled again
 * on the next run: the CLIP-G session alone holds 2.8 GB of float32 weights.
 */
class ReloadableTextEncoder implements TextEncoderHandle {
  private constructor(
    /** One shape (a row of 77 tokens per run): compiled again only after a release. */
    private readonly cache: ShapeCache<ClipTextEncoder>,
    private readonly create: () => Promise<ClipTextEncoder>,
    readonly config: ClipTextEncoder["config"],
    readonly withProjection: boolean,
  ) {}
  static async open(create: () => Promise<ClipTextEncoder>): Promise<ReloadableTextEncoder> {
    const cache = new ShapeCache<ClipTextEncoder>();
    const e = await cache.get([], create);
    return new ReloadableTextEncoder(cache, create, e.config, e.withProjection);
  }
  async run(ids: BigInt64Array) {
    return (await this.cache.get([], this.create)).run(ids);
  }
  release(): Promise<void> { return this.cache.release(); }
}

export class PromptEncoder {
  /** Where the textual inversions' vectors are and how prompts name them; absent without any. */
  readonly embeddings?: EmbeddingVocabulary;
  /** A1111's embedding lookup per tokenizer, made once (it tokenizes every embedding's name). */
  private readonly a1111Finders = new Map<CLIPTokenizer, EmbeddingFinder>();

  constructor(
    /** tokenizer (absent for an SDXL refiner, which has text_encoder_2 only) and tokenizer_2. */
    readonly tokenizers: readonly [CLIPTokenizer | undefined, CLIPTokenizer],
    readonly encoders: readonly [TextEncoderHandle | undefined, TextEncoderHandle],
    readonly forceZerosForEmptyPrompt: boolean,
    /** Told about prompts cut to 77 tokens. */
    private readonly warn: (message: string) => void = () => {},
    /** Syntax of encode() calls that name none. */
    readonly promptSyntax: PromptSyntax = "diffusers",
    /** The text encoders' session options (a LoRA variant's encoders are made with the same). */
    readonly session?: SessionOptions,
    /** The textual inversions the encoders were built with (their vectors after the vocabulary). */
    readonly textualInversions: readonly TextualInversion[] = [],
  ) {
    this.embeddings = textualInversions.length ? new EmbeddingVocabulary(textualInversions) : undefined;
    if (!encoders[1].withProjection) throw new PipelineInputError("text_encoder_2 must be a CLIPTextModelWithProjection (its text_embeds are SDXL's pooled embedding)");
    if (!tokenizers[0] !== !encoders[0]) throw new PipelineInputError("text_encoder and tokenizer must both be given or both be absent");
  }

  /** Loads tokenizer/, tokenizer_2/, text_encoder/, text_encoder_2/ of a diffusers folder (one prompt per run). */
  static async open(dir: string, opts: PromptEncoderOptions & { variant?: Variant } = {}): Promise<PromptEncoder> {
    const tokenizers = [CLIPTokenizer.fromDirectory(join(dir, "tokenizer")), CLIPTokenizer.fromDirectory(join(dir, "tokenizer_2"))] as const;
    const parts = { textEncoder: folderComponent(join(dir, "text_encoder"), opts.variant), textEncoder2: folderComponent(join(dir, "text_encoder_2"), opts.variant) };
    return PromptEncoder.fromWeights(tokenizers, parts, opts);
  }

  /**
   * The tokenizers and the text encoders' configs and weights (a diffusers folder or a single file);
   * without text_encoder (an SDXL refiner) only text_encoder_2 conditions the UNet.
   */
  static async fromWeights(
    tokenizers: readonly [CLIPTokenizer | undefined, CLIPTokenizer],
    parts: { textEncoder?: ComponentWeights; textEncoder2: ComponentWeights },
    opts: PromptEncoderOptions = {},
  ): Promise<PromptEncoder> {
    const first = parts.textEncoder;
    const tis = opts.textualInversions ?? [];
    const extra1 = first && extraTokenRows(tis, "clipL", first), extra2 = extraTokenRows(tis, "clipG", parts.textEncoder2);
    const e1 = first && await ReloadableTextEncoder.open(() => createClipTextEncoder(first, { batch: 1, withProjection: false, session: opts.session, deltas: opts.deltas?.textEncoder, extraTokens: extra1 }));
    let e2: ReloadableTextEncoder;
    try {
      e2 = await ReloadableTextEncoder.open(() => createClipTextEncoder(parts.textEncoder2, { batch: 1, withProjection: true, session: opts.session, deltas: opts.deltas?.textEncoder2, extraTokens: extra2 }));
    } catch (e) {
      await e1?.release();
      throw e;
    }
    return new PromptEncoder(tokenizers, [e1, e2], opts.forceZerosForEmptyPrompt ?? true, opts.warn, opts.promptSyntax, opts.session, tis);
  }

  /**
   * The encoders present, in diffusers' order, with the columns of prompt_embeds each fills. diffusers
   * zips [prompt, prompt_2] with the encoders present, so a refiner's lone text_encoder_2 gets `prompt`.
   */
  private get branches(): { tokenizer: CLIPTokenizer; encoder: TextEncoderHandle; index: 0 | 1; col: number; width: number }[] {
    const out = [];
    let col = 0;
    for (const index of [0, 1] as const) {
      const tokenizer = this.tokenizers[index], encoder = this.encoders[index];
      if (!tokenizer || !encoder) continue;
      out.push({ tokenizer, encoder, index, col, width: encoder.config.hiddenSize });
      col += encoder.config.hiddenSize;
    }
    return out;
  }

  /** Width of prompt_embeds (D1 + D2, or D2 alone) and of the pooled embedding. */
  get dims(): { hidden: number; pooled: number; seqLen: number } {
    const b = this.branches;
    return { hidden: b.reduce((n, x) => n + x.width, 0), pooled: this.encoders[1].config.projectionDim, seqLen: b[0].tokenizer.maxLength };
  }

  /** Runs the encoders on each prompt (the k-th present encoder on the k-th text): hidden [B, S, D] and pooled [B, P]. */
  private async encodeList(prompts: string[], prompts2: string[], skips: [number, number]): Promise<{ hidden: Float32Array; pooled: Float32Array }> {
    const { hidden: D, pooled: P, seqLen: S } = this.dims;
    const hidden = new Float32Array(prompts.length * S * D);
    const pooled = new Float32Array(prompts.length * P);
    // a prompt pair met before in this call is copied, not encoded again (as encodeChunks does)
    const seen = new Map<string, number>();
    for (let b = 0; b < prompts.length; b++) {
      const texts = [prompts[b], prompts2[b]];
      const earlier = seen.get(JSON.stringify(texts));
      if (earlier !== undefined) {
        hidden.copyWithin(b * S * D, earlier * S * D, (earlier + 1) * S * D);
        pooled.copyWithin(b * P, earlier * P, (earlier + 1) * P);
        continue;
      }
      seen.set(JSON.stringify(texts), b);
      for (const [k, br] of this.branches.entries()) {
        const tok = br.tokenizer, text = texts[k];
        // encodePadded's ids, with the textual inversions' tokens as diffusers' added tokens
        const content = this.embeddings ? this.embeddings.diffusersIds(text, contentIds(tok), br.encoder.config.vocabSize) : contentIds(tok)(text);
        if (content.length + 2 > tok.maxLength) {
          this.warn(`prompt truncated: CLIP handles ${tok.maxLength} tokens, ${content.length + 2 - tok.maxLength} were dropped from "${text.slice(0, 40)}${text.length > 40 ? "..." : ""}"`);
        }
        const ids = [tok.bosTokenId, ...content.slice(0, tok.maxLength - 2), tok.eosTokenId];
        while (ids.length < tok.maxLength) ids.push(tok.padTokenId);
        if (ids.length !== S) throw new PipelineInputError(`tokenizer_${br.index + 1} pads to ${ids.length} tokens, the first tokenizer to ${S}`);
        const out = await br.encoder.run(BigInt64Array.from(ids, BigInt));
        const h = hiddenStateAfterSkip(out, skips[br.index]);
        for (let s = 0; s < S; s++) hidden.set(h.subarray(s * br.width, (s + 1) * br.width), (b * S + s) * D + br.col);
        if (br.index === 1) pooled.set(out.text_embeds!, b * P);
      }
    }
    return { hidden, pooled };
  }

  /** A1111's or ComfyUI's chunks of each prompt for each present tokenizer: [prompt][branch] -> chunks. */
  private chunkList(prompts: string[], prompts2: string[], syntax: "a1111" | "comfyui"): PromptChunk[][][] {
    return prompts.map((p, b) => this.branches.map((br, k) => {
      const text = [p, prompts2[b]][k];
      try {
        const e = this.embeddings;
        // ComfyUI's embedding:NAME names an embedding even when none is loaded (then an error saying so)
        return syntax === "comfyui" ? chunkComfyPrompt(text, br.tokenizer, { embeddings: e ?? NO_EMBEDDINGS })
          : chunkPromptWith(text, br.tokenizer, { findEmbedding: e && this.a1111Finder(e, br.tokenizer) }).chunks;
      } catch (e) {
        if (e instanceof PromptSyntaxError) throw new PipelineInputError(e.message);
        throw e;
      }
    }));
  }

  private a1111Finder(e: EmbeddingVocabulary, tok: CLIPTokenizer): EmbeddingFinder {
    let finder = this.a1111Finders.get(tok);
    if (!finder) this.a1111Finders.set(tok, finder = e.a1111Finder(contentIds(tok)));
    return finder;
  }

  /**
   * Encodes chunks, `n` per prompt: hidden [B, 77·n, D] with each chunk's weights applied, pooled [B, P]
   * from the first chunk. A1111: missing chunks are empty ones, its emphasis per chunk. ComfyUI: a
   * prompt's shorter branch is filled with empty chunks, then its chunks repeat up to n (ComfyUI repeats
   * conditionings of other lengths to their least common multiple: attention over keys repeated
   * whole is the same), weighted against the empty prompt's hidden states when any weight is not 1.
   */
  private async encodeChunks(chunks: PromptChunk[][][], n: number, skips: [number, number], syntax: "a1111" | "comfyui"): Promise<{ hidden: Float32Array; pooled: Float32Array }> {
    const { hidden: D, pooled: P, seqLen: S } = this.dims;
    const hidden = new Float32Array(chunks.length * n * S * D);
    const pooled = new Float32Array(chunks.length * P);
    const empties = new Map<number, Float32Array>();
    // a prompt met before in this call (AND's repeated negatives, a list with one text twice) is copied, not encoded again
    const seen = new Map<string, number>();
    const rowSize = n * S * D;
    for (let b = 0; b < chunks.length; b++) {
      const key = JSON.stringify(chunks[b].map((list) => list.map((c) => [c.ids, c.weights])));
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        hidden.copyWithin(b * rowSize, earlier * rowSize, (earlier + 1) * rowSize);
        pooled.copyWithin(b * P, earlier * P, (earlier + 1) * P);
        continue;
      }
      seen.set(key, b);
      const own = Math.max(...chunks[b].map((list) => list.length));
      for (const [k, br] of this.branches.entries()) {
        const tok = br.tokenizer, width = br.width;
        const empty = emptyChunk({ bos: tok.bosTokenId, eos: tok.eosTokenId, pad: tok.padTokenId, chunkLength: S - 2 });
        const weighted = syntax === "comfyui" && chunks[b][k].some((c) => c.weights.some((w) => w !== 1));
        if (weighted && !empties.has(k)) empties.set(k, hiddenStateAfterSkip(await br.encoder.run(BigInt64Array.from(empty.ids, BigInt)), skips[br.index]).slice());
        const encoded: Float32Array[] = [];
        for (let c = 0; c < n; c++) {
          // a repeated ComfyUI chunk is encoded once
          const at = syntax === "comfyui" ? c % own : c;
          let h = encoded[at];
          if (!h) {
            const chunk = chunks[b][k][at] ?? empty;
            if (chunk.ids.length !== S) throw new PipelineInputError(`tokenizer_${br.index + 1}: a prompt chunk has ${chunk.ids.length} ids, the text encoders take ${S}`);
            const out = await br.encoder.run(BigInt64Array.from(chunk.ids, BigInt));
            h = encoded[at] = hiddenStateAfterSkip(out, skips[br.index]).slice();
            if (syntax === "a1111") applyEmphasis(h, chunk.weights, width);
            else if (weighted) applyComfyWeights(h, empties.get(k)!, chunk.weights, width);
            if (br.index === 1 && c === 0) pooled.set(out.text_embeds!, b * P);
          }
          for (let s = 0; s < S; s++) hidden.set(h.subarray(s * width, (s + 1) * width), ((b * n + c) * S + s) * D + br.col);
        }
      }
    }
    return { hidden, pooled };
  }

  /**
   * The A1111 and ComfyUI paths of encode(): chunk everything first, so prompt and negative get the same
   * chunk count: A1111's most chunks, ComfyUI's least common multiple of each prompt's (MAX_COMFY_CHUNKS at most).
   */
  private async encodeChunked(prompts: string[], prompts2: string[], negatives: [string[], string[]] | undefined, skips: [number, number], syntax: "a1111" | "comfyui", minChunks = 1) {
    const pos = this.chunkList(prompts, prompts2, syntax);
    const neg = negatives && this.chunkList(...negatives, syntax);
    const total = chunkTotal([...pos, ...(neg ?? [])], syntax);
    const n = syntax === "a1111" ? Math.max(total, minChunks) : total;
    return { n, pos: await this.encodeChunks(pos, n, skips, syntax), neg: neg && await this.encodeChunks(neg, n, skips, syntax) };
  }

  /** encode()'s checked inputs: the prompt lists, the negatives (none under zeros or without guidance), the syntax. */
  private lists(opts: EncodePromptOptions) {
    const n = opts.numImagesPerPrompt ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new PipelineInputError(`numImagesPerPrompt must be a positive integer, got ${n}`);
    const prompts = asList(opts.prompt);
    const batch = prompts.length;
    if (batch === 0) throw new PipelineInputError("no prompt given");
    // diffusers' `prompt_2 or prompt`: an empty second prompt falls back to the first
    const prompts2 = opts.prompt2 ? asList(opts.prompt2) : prompts;
    if (prompts2.length !== batch) throw new PipelineInputError(`prompt2 has ${prompts2.length} entries for ${batch} prompts`);
    const syntax = opts.promptSyntax ?? this.promptSyntax;
    if (!PROMPT_SYNTAXES.includes(syntax)) throw new PipelineInputError(`unknown prompt syntax "${syntax}" (known: ${PROMPT_SYNTAXES.join(", ")})`);
    // Both syntaxes tokenize the whole text (BPE is superlinear in word length), so both are bounded.
    for (const list of [prompts, prompts2, opts.negativePrompt, opts.negativePrompt2]) {
      for (const p of typeof list === "string" ? [list] : list ?? []) {
        try { checkPromptLength(p); } catch (e) { throw new PipelineInputError((e as Error).message); }
      }
    }
    const guidance = opts.doClassifierFreeGuidance ?? true;
    const zeroNegative = opts.negativePrompt === undefined && this.forceZerosForEmptyPrompt;
    let negatives: [string[], string[]] | undefined;
    if (guidance && !zeroNegative) {
      const negative = opts.negativePrompt || "";
      const negs = typeof negative === "string" ? Array(batch).fill(negative) : negative;
      const negative2 = opts.negativePrompt2 || negative;
      const negs2 = typeof negative2 === "string" ? Array(batch).fill(negative2) : negative2;
      if (negs.length !== batch || negs2.length !== batch) {
        throw new PipelineInputError(`the negative prompt has ${negs.length !== batch ? negs.length : negs2.length} entries but there are ${batch} prompts`);
      }
      negatives = [negs, negs2];
    }
    return { n, prompts, prompts2, batch, syntax, guidance, negatives };
  }

  /** The 75-token chunks per prompt encode() gives these prompts: A1111's most, ComfyUI's least common multiple; 1 for diffusers'. */
  chunkCount(opts: EncodePromptOptions): number {
    const l = this.lists(opts);
    if (l.syntax === "diffusers") return 1;
    return chunkTotal([...this.chunkList(l.prompts, l.prompts2, l.syntax), ...(l.negatives ? this.chunkList(...l.negatives, l.syntax) : [])], l.syntax);
  }

  /** `minChunks` (A1111 syntax): empty chunks up to that count at least, so prompts encoded apart fit one UNet shape (prompt editing). */
  async encode(opts: EncodePromptOptions, { minChunks = 1 }: { minChunks?: number } = {}): Promise<PromptEmbeddings> {
    const { n, prompts, prompts2, batch, syntax, guidance, negatives } = this.lists(opts);
    const [e1, e2] = this.encoders;
    if (!e1 && typeof opts.clipSkip === "object" && opts.clipSkip.textEncoder !== undefined) throw new PipelineInputError("clipSkip.textEncoder: this model has no text_encoder (an SDXL refiner has text_encoder_2 only)");
    const skips = clipSkipPerEncoder(opts.clipSkip, [e1?.config.numHiddenLayers ?? e2.config.numHiddenLayers, e2.config.numHiddenLayers]);
    const { hidden: D, pooled: P } = this.dims;
    let S = this.dims.seqLen;
    let pos: { hidden: Float32Array; pooled: Float32Array };
    let neg: { hidden: Float32Array; pooled: Float32Array } | undefined;
    if (syntax !== "diffusers") {
      const r = await this.encodeChunked(prompts, prompts2, negatives, skips, syntax, minChunks);
      S *= r.n;
      pos = r.pos;
      neg = r.neg;
    } else {
      pos = await this.encodeList(prompts, prompts2, skips);
      neg = negatives && await this.encodeList(...negatives, skips);
    }
    const result: PromptEmbeddings = {
      promptEmbeds: { data: repeatRows(pos.hidden, batch, n), shape: [batch * n, S, D] },
      pooledPromptEmbeds: { data: repeatRows(pos.pooled, batch, n), shape: [batch * n, P] },
    };
    if (guidance) {
      neg ??= { hidden: new Float32Array(pos.hidden.length), pooled: new Float32Array(pos.pooled.length) };
      result.negativePromptEmbeds = { data: repeatRows(neg.hidden, batch, n), shape: [batch * n, S, D] };
      result.negativePooledPromptEmbeds = { data: repeatRows(neg.pooled, batch, n), shape: [batch * n, P] };
    }
    return result;
  }

  async release(): Promise<void> {
    for (const e of this.encoders) await e?.release();
  }
}
