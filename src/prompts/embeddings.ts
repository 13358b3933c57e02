/**
 * Where textual inversions (embeddings) go in a prompt's token ids, in each prompt syntax's way. The
 * text encoders hold every embedding's vectors as extra rows after their vocabulary (row r of k);
 * a prompt names them:
 *   - diffusers: the token as an added token of the tokenizer (load_textual_inversion): the exact,
 *     case-sensitive text anywhere in the prompt, a multi-vector one expanded to its n vectors
 *     (maybe_convert_prompt's "tok tok_1 ..."); the ids are vocab + r, so the pooled embedding is taken
 *     where transformers' argmax of the ids lands (on the embedding, as in diffusers);
 *   - a1111: the token's BPE ids (lowercased) found in a weighted piece's ids, A1111's
 *     find_embedding_at_position (longest first), its vectors never cut across chunks;
 *   - comfyui: `embedding:NAME` (ComfyUI's identifier) at the start of a piece or after a space or
 *     newline; NAME is the next word (commas stripped), the rest is text again.
 * a1111 and comfyui mark the vectors with ids r - k (negative: the end-of-text argmax stays on the
 * EOS token, where A1111 and ComfyUI pool).
 */
import { PromptSyntaxError } from "./errors.js";

export interface EmbeddingToken {
  token: string;
  vectors: number;
}

/** What the matching needs of a tokenizer: content ids of a text (no BOS / EOS). */
export type ContentIds = (text: string) => number[];

export class EmbeddingVocabulary {
  /** Each embedding's first row in the encoders' extra rows. */
  private readonly rows = new Map<string, number>();
  /** Extra rows in all. */
  readonly size: number;
  /** Tokens by their first character, longest first (an added-token trie's longest match). */
  private readonly byFirst = new Map<string, EmbeddingToken[]>();

  constructor(readonly embeddings: readonly EmbeddingToken[]) {
    let row = 0;
    for (const e of embeddings) {
      if (this.rows.has(e.token)) throw new PromptSyntaxError(`two embeddings are named ${JSON.stringify(e.token)}`);
      this.rows.set(e.token, row);
      row += e.vectors;
    }
    this.size = row;
    for (const e of [...embeddings].sort((a, b) => b.token.length - a.token.length)) {
      const list = this.byFirst.get(e.token[0]) ?? [];
      list.push(e);
      this.byFirst.set(e.token[0], list);
    }
  }

  get(token: string): EmbeddingToken | undefined { return this.embeddings.find((e) => e.token === token); }

  /** The ids a1111 and comfyui give an embedding's vectors: r - k, negative. */
  markers(e: EmbeddingToken): number[] {
    const first = this.rows.get(e.token)! - this.size;
    return Array.from({ length: e.vectors }, (_, j) => first + j);
  }

  /** diffusers: the content ids of `text` with each embedding token's vectors as ids vocab + r. */
  diffusersIds(text: string, ids: ContentIds, vocab: number): number[] {
    const out: number[] = [];
    let start = 0, i = 0;
    while (i < text.length) {
      const e = this.byFirst.get(text[i])?.find((x) => text.startsWith(x.token, i));
      if (!e) { i++; continue; }
      if (i > start) out.push(...ids(text.slice(start, i)));
      const first = vocab + this.rows.get(e.token)!;
      for (let j = 0; j < e.vectors; j++) out.push(first + j);
      i += e.token.length;
      start = i;
    }
    if (start < text.length) out.push(...ids(text.slice(start)));
    return out;
  }

  /** a1111: a lookup of the embedding whose token ids start at `at` in a piece's ids (longest first). */
  a1111Finder(ids: ContentIds): EmbeddingFinder {
    const named = this.embeddings.map((e) => ({ e, ids: ids(e.token) })).filter((x) => x.ids.length > 0).sort((a, b) => b.ids.length - a.ids.length);
    return (tokens, at) => {
      for (const { e, ids: want } of named) {
        if (want.every((id, k) => tokens[at + k] === id)) return { ids: this.markers(e), consumed: want.length };
      }
      return undefined;
    };
  }

  /**
   * comfyui: a weighted piece as ComfyUI splits it, text and embeddings in order (text as it is, an
   * embedding as its marker ids). A name that is no embedding here is an error naming the ones there are.
   */
  comfyPieces(text: string): (string | number[])[] {
    const parts = text.split(/ embedding:|\nembedding:/);
    const out: (string | number[])[] = [];
    parts.forEach((part, k) => {
      if (k === 0 && !part.startsWith(IDENTIFIER)) { if (part) out.push(part); return; }
      const body = k === 0 ? part.slice(IDENTIFIER.length) : part;
      const words = body.split(/\s+/).filter((w) => w !== "");
      const word = words[0] ?? "";
      // as ComfyUI's _try_get_embedding: the word, else the word without its commas (which stay as text)
      const exact = this.comfyName(word), stripped = word.replace(/^,+|,+$/g, "");
      const e = exact ?? (stripped.length < word.length ? this.comfyName(stripped) : undefined);
      if (!e) {
        const known = this.embeddings.map((x) => x.token).join(", ");
        throw new PromptSyntaxError(`embedding:${word} is not an embedding here (${known ? `embeddings: ${known}` : "none is loaded: serve --embeddings-dir DIR, or --embedding FILE"})`);
      }
      out.push(this.markers(e));
      const rest = (exact ? words.slice(1) : [word.slice(stripped.length), ...words.slice(1)]).filter((w) => w !== "").join(" ");
      if (rest) out.push(rest);
    });
    return out;
  }

  /** ComfyUI names an embedding by its file name, with or without the extension. */
  private comfyName(word: string): EmbeddingToken | undefined {
    return this.get(word) ?? this.get(word.replace(/\.safetensors$/i, ""));
  }
}

const IDENTIFIER = "embedding:";

/** The embedding at `at` of a piece's ids: its marker ids and how many of the piece's ids it stands for. */
export type EmbeddingFinder = (tokens: readonly number[], at: number) => { ids: number[]; consumed: number } | undefined;
