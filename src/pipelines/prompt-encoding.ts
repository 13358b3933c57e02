/**
 * SDXL prompt encoding with both CLIP text encoders, as diffusers' StableDiffusionXLPipeline.encode_prompt:
 * each encoder's penultimate hidden states, concatenated on the feature axis ([B, 77, D1 + D2]); the
 * pooled embedding is text_encoder_2's projected text_embeds. Negative prompts follow
 * force_zeros_for_empty_prompt: no negative prompt gives zeros, an explicit "" is encoded.
 */
import { join } from "node:path";
import { CLIPTokenizer } from "../tokenizer/index.js";
import { createClipTextEncoder, type ClipTextEncoder } from "../models/clip/clip-text-model.js";
import type { Variant } from "../loaders/component.js";
import type { SessionOptions } from "../runtime/session.js";
import type { FloatTensor } from "../image/image.js";
import { PipelineInputError } from "./errors.js";

export interface PromptEmbeddings {
  /** [B * numImagesPerPrompt, 77, D1 + D2] */
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

export class PromptEncoder {
  constructor(
    readonly tokenizers: readonly [CLIPTokenizer, CLIPTokenizer],
    readonly encoders: readonly [ClipTextEncoder, ClipTextEncoder],
    readonly forceZerosForEmptyPrompt: boolean,
    /** Told about prompts cut to 77 tokens. */
    private readonly warn: (message: string) => void = () => {},
  ) {
    if (!encoders[1].withProjection) throw new PipelineInputError("text_encoder_2 must be a CLIPTextModelWithProjection (its text_embeds are SDXL's pooled embedding)");
  }

  /** Loads tokenizer/, tokenizer_2/, text_encoder/, text_encoder_2/ of a diffusers folder (one prompt per run). */
  static async open(dir: string, opts: { variant?: Variant; session?: SessionOptions; forceZerosForEmptyPrompt?: boolean; warn?: (m: string) => void } = {}): Promise<PromptEncoder> {
    const tokenizers = [CLIPTokenizer.fromDirectory(join(dir, "tokenizer")), CLIPTokenizer.fromDirectory(join(dir, "tokenizer_2"))] as const;
    const e1 = await createClipTextEncoder(join(dir, "text_encoder"), { variant: opts.variant, batch: 1, withProjection: false, session: opts.session });
    let e2: ClipTextEncoder;
    try {
      e2 = await createClipTextEncoder(join(dir, "text_encoder_2"), { variant: opts.variant, batch: 1, withProjection: true, session: opts.session });
    } catch (e) {
      await e1.release();
      throw e;
    }
    return new PromptEncoder(tokenizers, [e1, e2], opts.forceZerosForEmptyPrompt ?? true, opts.warn);
  }

  /** Width of prompt_embeds (D1 + D2) and of the pooled embedding. */
  get dims(): { hidden: number; pooled: number; seqLen: number } {
    const [a, b] = this.encoders;
    return { hidden: a.config.hiddenSize + b.config.hiddenSize, pooled: b.config.projectionDim, seqLen: this.tokenizers[0].maxLength };
  }

  /** Runs both encoders on each prompt: hidden [B, S, D1 + D2] and pooled [B, P]. */
  private async encodeList(prompts: string[], prompts2: string[]): Promise<{ hidden: Float32Array; pooled: Float32Array }> {
    const { hidden: D, pooled: P, seqLen: S } = this.dims;
    const d1 = this.encoders[0].config.hiddenSize;
    const hidden = new Float32Array(prompts.length * S * D);
    const pooled = new Float32Array(prompts.length * P);
    for (let b = 0; b < prompts.length; b++) {
      const outs = [];
      for (const [k, text] of [prompts[b], prompts2[b]].entries()) {
        const tok = this.tokenizers[k];
        const full = tok.encode(text);
        if (full.length > tok.maxLength) {
          this.warn(`prompt truncated: CLIP handles ${tok.maxLength} tokens, ${full.length - tok.maxLength} were dropped from "${text.slice(0, 40)}${text.length > 40 ? "..." : ""}"`);
        }
        const ids = tok.encodePadded(text);
        if (ids.length !== S) throw new PipelineInputError(`tokenizer_${k + 1} pads to ${ids.length} tokens, tokenizer to ${S}`);
        outs.push(await this.encoders[k].run(BigInt64Array.from(ids, BigInt)));
      }
      const [o1, o2] = outs;
      const h1 = o1.penultimate_hidden_state, h2 = o2.penultimate_hidden_state;
      for (let s = 0; s < S; s++) {
        const row = (b * S + s) * D;
        hidden.set(h1.subarray(s * d1, (s + 1) * d1), row);
        hidden.set(h2.subarray(s * (D - d1), (s + 1) * (D - d1)), row + d1);
      }
      pooled.set(o2.text_embeds!, b * P);
    }
    return { hidden, pooled };
  }

  async encode(opts: EncodePromptOptions): Promise<PromptEmbeddings> {
    const n = opts.numImagesPerPrompt ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new PipelineInputError(`numImagesPerPrompt must be a positive integer, got ${n}`);
    const prompts = asList(opts.prompt);
    const batch = prompts.length;
    if (batch === 0) throw new PipelineInputError("no prompt given");
    // diffusers' `prompt_2 or prompt`: an empty second prompt falls back to the first
    const prompts2 = opts.prompt2 ? asList(opts.prompt2) : prompts;
    if (prompts2.length !== batch) throw new PipelineInputError(`prompt2 has ${prompts2.length} entries for ${batch} prompts`);
    const { hidden: D, pooled: P, seqLen: S } = this.dims;
    const pos = await this.encodeList(prompts, prompts2);
    const result: PromptEmbeddings = {
      promptEmbeds: { data: repeatRows(pos.hidden, batch, n), shape: [batch * n, S, D] },
      pooledPromptEmbeds: { data: repeatRows(pos.pooled, batch, n), shape: [batch * n, P] },
    };
    if (opts.doClassifierFreeGuidance ?? true) {
      let neg: { hidden: Float32Array; pooled: Float32Array };
      if (opts.negativePrompt === undefined && this.forceZerosForEmptyPrompt) {
        neg = { hidden: new Float32Array(pos.hidden.length), pooled: new Float32Array(pos.pooled.length) };
      } else {
        const negative = opts.negativePrompt || "";
        const negs = typeof negative === "string" ? Array(batch).fill(negative) : negative;
        const negative2 = opts.negativePrompt2 || negative;
        const negs2 = typeof negative2 === "string" ? Array(batch).fill(negative2) : negative2;
        if (negs.length !== batch || negs2.length !== batch) {
          throw new PipelineInputError(`the negative prompt has ${negs.length !== batch ? negs.length : negs2.length} entries but there are ${batch} prompts`);
        }
        neg = await this.encodeList(negs, negs2);
      }
      result.negativePromptEmbeds = { data: repeatRows(neg.hidden, batch, n), shape: [batch * n, S, D] };
      result.negativePooledPromptEmbeds = { data: repeatRows(neg.pooled, batch, n), shape: [batch * n, P] };
    }
    return result;
  }

  async release(): Promise<void> {
    for (const e of this.encoders) await e.release();
  }
}
