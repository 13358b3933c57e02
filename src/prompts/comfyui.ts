/**
 * ComfyUI's prompt weights and chunks (comfy/sd1_clip.py), for prompts the ComfyUI API receives:
 *   - `(text)` multiplies the weight by 1.1 per level, `(text:1.3)` sets it (not multiplied by the outer
 *     level), `\(` and `\)` are literal parentheses; there is no `[...]` and no BREAK;
 *   - each piece of one weight is tokenized whole into chunks of 77 ids (BOS, 75 tokens, EOS, then the
 *     tokenizer's pad id): a piece of fewer than 8 tokens that does not fit moves whole to the next
 *     chunk, a longer one is cut where the chunk ends (ComfyUI's max_word_length); an `embedding:NAME`
 *     word is a piece of its own, its vectors (embeddings.ts);
 *   - a weight w != 1 moves a token's hidden state away from the empty prompt's at that position:
 *     z' = (z - z_empty) · w + z_empty, once any token of the prompt has a weight other than 1.
 * A prompt without weights under 76 tokens is the diffusers tokenization, so its embeddings are the same.
 */
import type { ChunkTokenizer, PromptChunk } from "./a1111.js";
import { PromptSyntaxError } from "./errors.js";
import { MAX_PROMPT_CHUNKS } from "./limits.js";
import type { EmbeddingVocabulary } from "./embeddings.js";

/** A piece of prompt text and its weight. */
export type WeightedText = [string, number];

/** ComfyUI's parse_parentheses: the top-level pieces, parenthesised ones kept with their parentheses. */
function parseParentheses(s: string): string[] {
  const out: string[] = [];
  let current = "", depth = 0;
  for (const ch of s) {
    if (ch === "(") {
      if (depth === 0) {
        if (current) out.push(current);
        current = "(";
      } else current += ch;
      depth++;
    } else if (ch === ")") {
      depth--;
      if (depth === 0) { out.push(current + ")"); current = ""; } else current += ch;
    } else current += ch;
  }
  if (current) out.push(current);
  return out;
}

/** What Python's float() reads (decimal and exponent forms, inf, nan; spaces around). */
const PY_FLOAT = /^\s*[+-]?((\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?|\d+\.|inf(inity)?|nan)\s*$/i;

function pyFloat(s: string): number | undefined {
  if (!PY_FLOAT.test(s)) return undefined;
  const t = s.trim().toLowerCase().replace(/_/g, "");
  if (/inf/.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
  return /nan/.test(t) ? NaN : Number(t);
}

/** ComfyUI's token_weights over escape_important's text (\( and \) stand in as \0\2 and \0\1). */
function tokenWeights(s: string, weight: number): WeightedText[] {
  const out: WeightedText[] = [];
  for (const piece of parseParentheses(s)) {
    if (piece.length >= 2 && piece.startsWith("(") && piece.endsWith(")")) {
      let inner = piece.slice(1, -1), w = weight * 1.1;
      const colon = inner.lastIndexOf(":");
      if (colon > 0) {
        const v = pyFloat(inner.slice(colon + 1));
        if (v !== undefined) { w = v; inner = inner.slice(0, colon); }
      }
      out.push(...tokenWeights(inner, w));
    } else out.push([piece, weight]);
  }
  return out;
}

/** Deeper nesting is refused: each level is a recursion (ComfyUI's too). */
const MAX_NESTING = 64;

/** The prompt's weighted pieces, escapes resolved; a weight that is not a finite number is refused. */
export function parseComfyWeights(prompt: string): WeightedText[] {
  const escaped = prompt.replace(/\\\)/g, "\0\u0001").replace(/\\\(/g, "\0\u0002");
  let depth = 0;
  for (const ch of escaped) {
    depth += ch === "(" ? 1 : ch === ")" ? -1 : 0;
    if (depth > MAX_NESTING) throw new PromptSyntaxError(`the prompt nests parentheses more than ${MAX_NESTING} deep`);
  }
  const pieces = tokenWeights(escaped, 1).map(([t, w]): WeightedText => [t.replace(/\0\u0001/g, ")").replace(/\0\u0002/g, "("), w]);
  const bad = pieces.find(([, w]) => !Number.isFinite(w));
  if (bad) throw new PromptSyntaxError(`the weight of "${bad[0].slice(0, 40)}" is ${bad[1]}; weights must be finite numbers`);
  return pieces;
}

/** ComfyUI's max_word_length: pieces this long or longer may be cut at a chunk's end. */
const MAX_WORD_LENGTH = 8;

/** ComfyUI's tokenize_with_weights: 77-id chunks with a weight per id (1 for BOS, EOS and pads). */
export function chunkComfyPrompt(prompt: string, tokenizer: ChunkTokenizer, opts: { length?: number; maxChunks?: number; embeddings?: EmbeddingVocabulary } = {}): PromptChunk[] {
  const length = opts.length ?? 77, maxChunks = opts.maxChunks ?? MAX_PROMPT_CHUNKS;
  const { bosTokenId: bos, eosTokenId: eos, padTokenId: pad } = tokenizer;
  const chunks: PromptChunk[] = [];
  let ids = [bos], weights = [1];
  const close = (padded: number) => {
    ids.push(eos, ...Array<number>(padded).fill(pad));
    weights.push(1, ...Array<number>(padded).fill(1));
    chunks.push({ ids, weights });
    if (chunks.length > maxChunks) throw new PromptSyntaxError(`the prompt makes more than ${maxChunks} chunks of ${length - 2} tokens (the limit)`);
    ids = [bos];
    weights = [1];
  };
  // each piece of one weight, split at its embedding:NAME words: text and embeddings, each a group
  const groups = parseComfyWeights(prompt).flatMap(([text, weight]) => (text === "" ? [] : (opts.embeddings?.comfyPieces(text) ?? [text]).map((g) => [g, weight] as const)));
  for (const [piece, weight] of groups) {
    let group = typeof piece === "string" ? tokenizer.encode(piece).slice(1, -1) : piece;
    const large = group.length >= MAX_WORD_LENGTH;
    while (group.length > 0) {
      if (group.length + ids.length > length - 1) {
        const room = length - ids.length - 1;
        if (large) {
          ids.push(...group.slice(0, room));
          weights.push(...Array<number>(room).fill(weight));
          group = group.slice(room);
          close(0);
        } else close(room);
      } else {
        ids.push(...group);
        weights.push(...Array<number>(group.length).fill(weight));
        group = [];
      }
    }
  }
  close(length - ids.length - 1);
  return chunks;
}

/** ComfyUI's weighting of one chunk's hidden states [tokens, width] in place, against the empty prompt's. */
export function applyComfyWeights(hidden: Float32Array, empty: Float32Array, weights: readonly number[], width: number): void {
  if (hidden.length !== weights.length * width || empty.length !== hidden.length) throw new Error(`applyComfyWeights: ${hidden.length} values (${empty.length} empty) for ${weights.length} tokens of width ${width}`);
  for (let t = 0; t < weights.length; t++) {
    const w = weights[t];
    if (w === 1) continue;
    for (let i = t * width; i < (t + 1) * width; i++) hidden[i] = (hidden[i] - empty[i]) * w + empty[i];
  }
}
