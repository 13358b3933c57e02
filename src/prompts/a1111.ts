/**
 * AUTOMATIC1111's prompt emphasis and chunking, reimplemented to give the same results:
 *   (word) ×1.1, [word] ÷1.1, (word:1.3) ×1.3, nesting multiplies, `\(` `\)` `\[` `\]` `\\` are literals,
 *   unbalanced brackets apply to the end of the prompt, BREAK starts a new 75-token chunk.
 * Long prompts are split into chunks of 75 tokens, each encoded as BOS + 75 + EOS = 77 ids; the
 * encoder outputs of the chunks are concatenated along the sequence and each token's hidden state is
 * scaled by its weight (`applyEmphasis`).
 */

/** Text with its weight; A1111 marks a BREAK as the entry ["BREAK", -1]. */
export type WeightedText = [text: string, weight: number];

import { attentionTokens } from "./attention-tokens.js";
import { splitBreak } from "./break.js";
import { PromptSyntaxError } from "./errors.js";
import { MAX_PROMPT_CHUNKS, checkPromptLength } from "./limits.js";
import type { EmbeddingFinder } from "./embeddings.js";

export { PromptSyntaxError } from "./errors.js";
export { MAX_PROMPT_CHARS, MAX_PROMPT_CHUNKS } from "./limits.js";

const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/**
 * A1111's `parse_prompt_attention`: the prompt as runs of text with their weights. Linear apart from
 * the bracket products (A1111's order of multiplications, kept for equal floats), which the
 * MAX_PROMPT_CHARS limit bounds.
 */
export function parsePromptAttention(text: string): WeightedText[] {
  checkPromptLength(text);
  const res: WeightedText[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyRange = (start: number, m: number) => {
    for (let p = start; p < res.length; p++) res[p][1] *= m;
  };
  for (const { text: tok, weight } of attentionTokens(text)) {
    if (tok.startsWith("\\")) res.push([tok.slice(1), 1]);
    else if (tok === "(") round.push(res.length);
    else if (tok === "[") square.push(res.length);
    else if (weight !== undefined && round.length) {
      // Python's float() on [+-]?[.\d]+ accepts exactly what Number() accepts; "1.2.3" or "." raise there too.
      const w = Number(weight);
      if (Number.isNaN(w)) throw new PromptSyntaxError(`invalid emphasis weight "${weight}" in "${tok}"`);
      multiplyRange(round.pop()!, w);
    } else if (tok === ")" && round.length) multiplyRange(round.pop()!, ROUND);
    else if (tok === "]" && square.length) multiplyRange(square.pop()!, SQUARE);
    else {
      splitBreak(tok).forEach((part, i) => {
        if (i > 0) res.push(["BREAK", -1]);
        res.push([part, 1]);
      });
    }
  }
  for (const pos of round) multiplyRange(pos, ROUND);
  for (const pos of square) multiplyRange(pos, SQUARE);
  if (res.length === 0) res.push(["", 1]);
  // Merge neighbours of identical weight (in one pass: splicing is quadratic).
  const merged: WeightedText[] = [res[0]];
  for (let i = 1; i < res.length; i++) {
    const last = merged[merged.length - 1];
    if (last[1] === res[i][1]) last[0] += res[i][0];
    else merged.push(res[i]);
  }
  return merged;
}

/** One 77-token encoder input: ids and the weight of each position. */
export interface PromptChunk {
  ids: number[];
  weights: number[];
}

export interface ChunkOptions {
  bos: number;
  eos: number;
  /** Id after the end of text (default eos); OpenCLIP / tokenizer_2 pads with 0 ("!"). */
  pad?: number;
  /** Id of ",</w>": at a chunk boundary, text after a nearby comma moves to the next chunk. */
  comma?: number;
  /** A1111's comma_padding_backtrack setting (default 20; 0 disables). */
  commaBacktrack?: number;
  /** Tokens per chunk between BOS and EOS (75). */
  chunkLength?: number;
  /** Most chunks a prompt may make (default MAX_PROMPT_CHUNKS); more is a PromptSyntaxError. */
  maxChunks?: number;
  /** Textual inversions named in a piece's ids (embeddings.ts): their vectors' ids go in whole, never cut across chunks. */
  findEmbedding?: EmbeddingFinder;
}

/**
 * A1111's `tokenize_line`: splits a parsed prompt into chunks. `tokenize` returns the ids of a text
 * without BOS/EOS. Returns the chunks and A1111's token count (what its UI shows as "N/75").
 */
export function chunkPrompt(prompt: string, tokenize: (text: string) => number[], opts: ChunkOptions): { chunks: PromptChunk[]; tokenCount: number } {
  const len = opts.chunkLength ?? 75;
  const backtrack = opts.commaBacktrack ?? 20;
  const pad = opts.pad ?? opts.eos;
  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let weights: number[] = [];
  let tokenCount = 0;
  let lastComma = -1;

  const maxChunks = opts.maxChunks ?? MAX_PROMPT_CHUNKS;
  const nextChunk = (isLast = false) => {
    if (chunks.length === maxChunks) {
      throw new PromptSyntaxError(`the prompt makes more than ${maxChunks} chunks of ${len} tokens (the limit; BREAK starts a chunk)`);
    }
    tokenCount += isLast ? tokens.length : len;
    while (tokens.length < len) { tokens.push(opts.eos); weights.push(1); }
    const ids = [opts.bos, ...tokens, opts.eos];
    // As A1111's process_tokens: everything after the first EOS becomes the pad id.
    if (pad !== opts.eos) {
      const end = ids.indexOf(opts.eos);
      for (let i = end + 1; i < ids.length; i++) ids[i] = pad;
    }
    chunks.push({ ids, weights: [1, ...weights, 1] });
    lastComma = -1;
    tokens = [];
    weights = [];
  };

  for (const [text, weight] of parsePromptAttention(prompt)) {
    if (text === "BREAK" && weight === -1) { nextChunk(); continue; }
    const ids = tokenize(text);
    for (let at = 0; at < ids.length;) {
      const token = ids[at];
      if (token === opts.comma) lastComma = tokens.length;
      else if (backtrack !== 0 && tokens.length === len && lastComma !== -1 && tokens.length - lastComma <= backtrack) {
        // Move the words after the last comma into the next chunk rather than cut them.
        const at = lastComma + 1;
        const movedTokens = tokens.slice(at);
        const movedWeights = weights.slice(at);
        tokens = tokens.slice(0, at);
        weights = weights.slice(0, at);
        nextChunk();
        tokens = movedTokens;
        weights = movedWeights;
      }
      if (tokens.length === len) nextChunk();
      const embedding = opts.findEmbedding?.(ids, at);
      if (!embedding) {
        tokens.push(token);
        weights.push(weight);
        at++;
        continue;
      }
      if (tokens.length + embedding.ids.length > len) nextChunk();
      tokens.push(...embedding.ids);
      weights.push(...embedding.ids.map(() => weight));
      at += embedding.consumed;
    }
  }
  if (tokens.length || chunks.length === 0) nextChunk(true);
  return { chunks, tokenCount };
}

/** What chunkPrompt needs from a tokenizer (CLIPTokenizer fits). */
export interface ChunkTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  /** BOS + ids + EOS. */
  encode(text: string): number[];
}

/** chunkPrompt with a CLIP tokenizer's ids and special tokens (its own pad id, the comma token). */
export function chunkPromptWith(prompt: string, tokenizer: ChunkTokenizer, opts: { commaBacktrack?: number; findEmbedding?: EmbeddingFinder } = {}): { chunks: PromptChunk[]; tokenCount: number } {
  const ids = (text: string) => (text === "" ? [] : tokenizer.encode(text).slice(1, -1));
  const comma = ids(",");
  return chunkPrompt(prompt, ids, {
    bos: tokenizer.bosTokenId, eos: tokenizer.eosTokenId, pad: tokenizer.padTokenId,
    comma: comma.length === 1 ? comma[0] : undefined, commaBacktrack: opts.commaBacktrack, findEmbedding: opts.findEmbedding,
  });
}

/** A1111's empty chunk (BOS, then EOS to the end, then the pad rule): fills up the shorter of prompt / negative prompt. */
export function emptyChunk(opts: { bos: number; eos: number; pad?: number; chunkLength?: number }): PromptChunk {
  const n = (opts.chunkLength ?? 75) + 2;
  const ids = [opts.bos, opts.eos, ...Array<number>(n - 2).fill(opts.pad ?? opts.eos)];
  return { ids, weights: Array<number>(n).fill(1) };
}

/**
 * Applies the weights to one chunk's encoder output `hidden` [tokens, width] in place. "original"
 * (A1111's default) scales each token and then restores the mean of the whole tensor; "no-norm"
 * only scales; "ignore" leaves it unchanged. The mean is taken in float64 here (torch uses float32).
 */
export function applyEmphasis(hidden: Float32Array, weights: readonly number[], width: number, mode: "original" | "no-norm" | "ignore" = "original"): void {
  if (hidden.length !== weights.length * width) throw new Error(`applyEmphasis: ${hidden.length} values for ${weights.length} tokens of width ${width}`);
  if (mode === "ignore") return;
  let before = 0;
  let after = 0;
  for (let t = 0; t < weights.length; t++) {
    for (let i = t * width; i < (t + 1) * width; i++) {
      before += hidden[i];
      hidden[i] *= weights[t];
      after += hidden[i];
    }
  }
  if (mode === "original") {
    const k = before / after;
    for (let i = 0; i < hidden.length; i++) hidden[i] *= k;
  }
}
