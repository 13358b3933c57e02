import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { toByteLevel } from "./bytes-to-unicode.js";

/**
 * CLIP byte-level BPE, token-for-token equal to Hugging Face `CLIPTokenizer`
 * (transformers 5, backed by `tokenizers`) as diffusers' SDXL pipelines use it:
 *
 * 1. added tokens (bos/eos/unk/pad, e.g. "<|endoftext|>" or tokenizer_2's "!")
 *    are cut out of the raw text verbatim, each becoming one token;
 * 2. every other span is normalized: NFC, then per-character lowercase;
 * 3. split with the CLIP pattern (whitespace is dropped), then with the GPT-2
 *    byte-level pattern, UTF-8 bytes mapped to printable characters;
 * 4. BPE with "</w>" appended to each word's last symbol.
 */

/** CLIP's pre-tokenizer pattern. Text is already lowercase, so no `i` flag is needed.
 *  `\p{White_Space}` is Oniguruma's `\s` (JS `\s` would add U+FEFF and miss U+0085). */
const CLIP_SPLIT =
  /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\p{White_Space}\p{L}\p{N}]+/gu;

/** The GPT-2 pattern of the ByteLevel pre-tokenizer, run on each CLIP piece (whitespace
 *  alternatives dropped: pieces hold none). It only changes the literal "<|endoftext|>" /
 *  "<|startoftext|>" pieces left when those were not matched verbatim (e.g. upper case). */
const BYTE_LEVEL_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}+|[^\p{White_Space}\p{L}\p{N}]+/gu;

const END_OF_WORD = "</w>";
const CACHE_LIMIT = 10_000;

/** `tokenizers` lowercases char by char (Rust `char::to_lowercase`), so a capital sigma always
 *  becomes "σ", never the word-final "ς" that `String.prototype.toLowerCase()` picks by context. */
function lowercase(s: string): string {
  return s.includes("\u03a3") ? Array.from(s, (c) => c.toLowerCase()).join("") : s.toLowerCase();
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export interface CLIPTokenizerOptions {
  vocab: Record<string, number>;
  /** Merge rules, best (lowest rank) first. */
  merges: ReadonlyArray<readonly [string, string]>;
  maxLength?: number;
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  /** Further added tokens to cut out of the text verbatim. */
  addedTokens?: string[];
}

export class CLIPTokenizer {
  readonly maxLength: number;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;

  private readonly vocab: Map<string, number>;
  /** "left right" -> merge rank (byte-level symbols never contain a space). */
  private readonly ranks = new Map<string, number>();
  /** Matches any added token, longest first (tokenizers matches leftmost-longest). */
  private readonly addedTokens: RegExp;
  /** Normalized CLIP piece -> BPE tokens. */
  private readonly cache = new Map<string, string[]>();

  constructor(opts: CLIPTokenizerOptions) {
    this.vocab = new Map(Object.entries(opts.vocab));
    opts.merges.forEach(([a, b], rank) => {
      const key = `${a} ${b}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    const id = (token: string) => {
      const found = this.vocab.get(token);
      if (found === undefined) throw new Error(`CLIPTokenizer: token ${JSON.stringify(token)} is not in the vocabulary`);
      return found;
    };
    const bos = opts.bosToken ?? "<|startoftext|>";
    const eos = opts.eosToken ?? "<|endoftext|>";
    const pad = opts.padToken ?? "<|endoftext|>";
    const unk = opts.unkToken ?? "<|endoftext|>";
    this.maxLength = opts.maxLength ?? 77;
    this.bosTokenId = id(bos);
    this.eosTokenId = id(eos);
    this.padTokenId = id(pad);
    this.unkTokenId = id(unk);
    const added = [...new Set([bos, eos, pad, unk, ...(opts.addedTokens ?? [])])];
    added.forEach(id);
    added.sort((a, b) => b.length - a.length);
    this.addedTokens = new RegExp(added.map(escapeRegExp).join("|"), "gu");
  }

  /** Loads a diffusers `tokenizer/` or `tokenizer_2/` folder. */
  static fromDirectory(dir: string): CLIPTokenizer {
    const read = (name: string, required: boolean): string | undefined => {
      const path = join(dir, name);
      if (existsSync(path)) return readFileSync(path, "utf8");
      if (required) throw new Error(`CLIPTokenizer: ${name} not found in ${dir}`);
      return undefined;
    };
    const vocab = JSON.parse(read("vocab.json", true)!) as Record<string, number>;
    const merges = parseMerges(read("merges.txt", true)!);
    const config = JSON.parse(read("tokenizer_config.json", true)!) as Record<string, unknown>;
    const mapText = read("special_tokens_map.json", false);
    // As in transformers' from_pretrained, special_tokens_map.json overrides tokenizer_config.json.
    const specials = { ...config, ...(mapText ? (JSON.parse(mapText) as Record<string, unknown>) : {}) };
    const decoder = (config.added_tokens_decoder ?? {}) as Record<string, unknown>;
    const maxLength = config.model_max_length;
    return new CLIPTokenizer({
      vocab,
      merges,
      maxLength: typeof maxLength === "number" ? maxLength : undefined,
      bosToken: tokenContent(specials.bos_token),
      eosToken: tokenContent(specials.eos_token),
      padToken: tokenContent(specials.pad_token),
      unkToken: tokenContent(specials.unk_token),
      addedTokens: Object.values(decoder).map(tokenContent).filter((t): t is string => t !== undefined),
    });
  }

  /** BPE tokens of `text`, without bos/eos. */
  tokenize(text: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (const m of text.matchAll(this.addedTokens)) {
      this.tokenizeSpan(text.slice(start, m.index), out);
      out.push(m[0]);
      start = m.index + m[0].length;
    }
    this.tokenizeSpan(text.slice(start), out);
    return out;
  }

  /** bos + ids + eos, untruncated. */
  encode(text: string): number[] {
    return [this.bosTokenId, ...this.ids(text), this.eosTokenId];
  }

  /** diffusers' `padding="max_length", truncation=True`: exactly `maxLength` ids. */
  encodePadded(text: string): number[] {
    const ids = [this.bosTokenId, ...this.ids(text).slice(0, this.maxLength - 2), this.eosTokenId];
    while (ids.length < this.maxLength) ids.push(this.padTokenId);
    return ids;
  }

  private ids(text: string): number[] {
    // Every byte-level symbol is in CLIP's vocabulary, so unk is a formality.
    return this.tokenize(text).map((t) => this.vocab.get(t) ?? this.unkTokenId);
  }

  /** Normalizes and tokenizes text that holds no added token. */
  private tokenizeSpan(span: string, out: string[]): void {
    if (span.length === 0) return;
    for (const piece of lowercase(span.normalize("NFC")).match(CLIP_SPLIT) ?? []) {
      let tokens = this.cache.get(piece);
      if (tokens === undefined) {
        tokens = [];
        for (const word of piece.match(BYTE_LEVEL_SPLIT) ?? []) tokens.push(...this.bpe(toByteLevel(word)));
        if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
        this.cache.set(piece, tokens);
      }
      out.push(...tokens);
    }
  }

  /** Repeatedly merges the adjacent pair of lowest rank (leftmost on ties), as `tokenizers` does. */
  private bpe(word: string): string[] {
    const parts = Array.from(word);
    parts[parts.length - 1] += END_OF_WORD;
    const rankAt = (i: number) => this.ranks.get(`${parts[i]} ${parts[i + 1]}`) ?? Infinity;
    // pairRanks[i] is the rank of (parts[i], parts[i + 1]); only neighbours change after a merge.
    const pairRanks = parts.slice(1).map((_, i) => rankAt(i));
    for (;;) {
      let at = -1;
      let best = Infinity;
      for (let i = 0; i < pairRanks.length; i++) {
        if (pairRanks[i] < best) {
          best = pairRanks[i];
          at = i;
        }
      }
      if (at < 0) return parts;
      parts.splice(at, 2, parts[at] + parts[at + 1]);
      pairRanks.splice(at, 1);
      if (at > 0) pairRanks[at - 1] = rankAt(at - 1);
      if (at < pairRanks.length) pairRanks[at] = rankAt(at);
    }
  }
}

/** A special-token entry is either a string or an AddedToken object `{ content, ... }`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return undefined;
}

/** merges.txt: an optional "#version" header, then one "left right" pair per line. */
function parseMerges(text: string): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.length === 0 || (i === 0 && line.startsWith("#version"))) return;
    const parts = line.split(" ");
    if (parts.length !== 2) throw new Error(`CLIPTokenizer: merges.txt line ${i + 1} is not a pair: ${JSON.stringify(line)}`);
    merges.push([parts[0], parts[1]]);
  });
  return merges;
}
