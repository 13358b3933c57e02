/**
 * AUTOMATIC1111's LoRA prompt tags: `<lora:NAME>` and `<lora:NAME:WEIGHT>` anywhere in a prompt
 * (or negative prompt) ask for that LoRA at WEIGHT (default 1) and are taken out of the text the
 * text encoders see. `<lora:NAME:TE:UNET>` gives the text encoders and the UNet weights of their own,
 * as A1111's positional te and unet multipliers.
 *
 *   extractLoraTags("a castle <lora:style:0.8>, at dusk")
 *     -> { text: "a castle, at dusk", tags: [{ name: "style", weight: 0.8 }] }
 */

export class LoraTagError extends Error {}

export interface LoraTag {
  name: string;
  /** The UNet's weight (and the text encoders' unless textEncoderWeight is given). */
  weight: number;
  /** The text encoders' weight when it differs. */
  textEncoderWeight?: number;
}

/** A tag as A1111 spells it: `<lora:name:0.8>`, or `<lora:name:TE:UNET>` when the weights differ. */
export const formatLoraTag = (t: LoraTag): string => (t.textEncoderWeight !== undefined && t.textEncoderWeight !== t.weight ? `<lora:${t.name}:${t.textEncoderWeight}:${t.weight}>` : `<lora:${t.name}:${t.weight}>`);

// A1111 matches any <word:args> extra-network tag; only `lora` is ours (others stay in the text).
// The tags are found by a linear scan (see findTags): a regex with a leading `[ \t]*` is quadratic
// on long runs of spaces. Unambiguous, so that a long run of digits cannot backtrack quadratically:
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;
const OPEN = "<lora:";

interface TagMatch {
  /** The match, with the spaces and tabs around the tag. */
  start: number;
  end: number;
  args: string;
}

const isBlank = (c: string | undefined) => c === " " || c === "\t";

/** The matches of /([ \t]*)<lora:([^<>]*)>([ \t]*)/g, left to right, in one pass. */
function findTags(s: string): TagMatch[] {
  const out: TagMatch[] = [];
  let pos = 0; // end of the previous match
  for (let j = s.indexOf(OPEN); j >= 0;) {
    let k = j + OPEN.length;
    while (k < s.length && s[k] !== "<" && s[k] !== ">") k++;
    if (s[k] !== ">") { j = k < s.length ? s.indexOf(OPEN, k) : -1; continue; } // no "<lora:" can start before that "<"
    let start = j;
    while (start > pos && isBlank(s[start - 1])) start--;
    let end = k + 1;
    while (end < s.length && isBlank(s[end])) end++;
    out.push({ start, end, args: s.slice(j + OPEN.length, k) });
    pos = end;
    j = s.indexOf(OPEN, end);
  }
  return out;
}

function parseWeight(raw: string, tag: string): number {
  const s = raw.trim();
  const w = NUMBER.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(w)) throw new LoraTagError(`${tag}: the LoRA weight must be a number like 0.8, got ${JSON.stringify(s)}`);
  return w;
}

function parseTag(args: string, tag: string): LoraTag {
  const parts = args.split(":");
  const name = parts[0].trim();
  if (name === "") throw new LoraTagError(`${tag}: the LoRA name is missing (write <lora:NAME:WEIGHT>)`);
  if (parts.length > 3) throw new LoraTagError(`${tag}: too many ":" (write <lora:NAME:WEIGHT>)`);
  // A1111: the first number is the text encoders' (te), the second the UNet's (unet)
  if (parts.length === 3) return loraTag(name, parseWeight(parts[2], tag), parseWeight(parts[1], tag));
  return { name, weight: parts.length === 2 ? parseWeight(parts[1], tag) : 1 };
}

/**
 * The LoRA tags of a prompt, in order, and the prompt without them. Removing a tag also removes the
 * spaces it leaves doubled (tokenization ignores them anyway), never the user's punctuation.
 */
export function extractLoraTags(prompt: string): { text: string; tags: LoraTag[] } {
  const matches = findTags(prompt);
  if (matches.length === 0) return { text: prompt, tags: [] };
  const tags: LoraTag[] = [];
  const pieces: string[] = [];
  let pos = 0;
  for (const m of matches) {
    tags.push(parseTag(m.args, `<lora:${m.args}>`));
    pieces.push(prompt.slice(pos, m.start));
    // one space between the words on either side; none at the ends, next to a line break or before punctuation
    const before = prompt[m.start - 1], after = prompt[m.end];
    const joinWithSpace = before !== undefined && !/\s/.test(before) && after !== undefined && !/[\s,.;:!?)\]]/.test(after);
    if (joinWithSpace) pieces.push(" ");
    pos = m.end;
  }
  pieces.push(prompt.slice(pos));
  return { text: pieces.join("").trim(), tags };
}

/** The prompt with its LoRA tags removed: what the text encoders see (a malformed tag throws, as in extractLoraTags). */
export function stripLoraTags(prompt: string): string {
  return extractLoraTags(prompt).text;
}

/**
 * Checks tag names against the LoRAs that exist: an unknown one is a LoraTagError that lists them
 * (the first 30).
 */
export function checkLoraNames(tags: readonly LoraTag[], available: readonly string[]): void {
  const known = new Set(available);
  for (const t of tags) {
    if (known.has(t.name)) continue;
    const list = [...available].sort();
    const shown = list.length === 0 ? "there are none" : `available: ${list.slice(0, 30).join(", ")}${list.length > 30 ? `, … (${list.length} in all)` : ""}`;
    throw new LoraTagError(`unknown LoRA ${JSON.stringify(t.name)} (${shown})`);
  }
}

/**
 * One entry per LoRA: weights of repeated names add up (stacking a LoRA twice is the same as once at
 * the sum), LoRAs at weight 0 drop out, and the order is by name so that equal sets compare equal.
 */
export function mergeLoraTags(tags: readonly LoraTag[]): LoraTag[] {
  const sum = new Map<string, [number, number]>();
  for (const t of tags) {
    const [w, te] = sum.get(t.name) ?? [0, 0];
    sum.set(t.name, [w + t.weight, te + (t.textEncoderWeight ?? t.weight)]);
  }
  return [...sum].filter(([, [w, te]]) => w !== 0 || te !== 0).map(([name, [w, te]]) => loraTag(name, w, te)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A tag with a text-encoder weight only where it differs from the UNet's. */
export function loraTag(name: string, weight: number, textEncoderWeight: number): LoraTag {
  return textEncoderWeight === weight ? { name, weight } : { name, weight, textEncoderWeight };
}
