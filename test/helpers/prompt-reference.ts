/**
 * The regex versions of parse_prompt_attention and the LoRA-tag scan that the linear parsers replaced
 * (quadratic on long runs of spaces): the fuzz test checks that both give the same results on short prompts.
 */
type WeightedText = [string, number];

const RE_ATTENTION = /\\\(|\\\)|\\\[|\\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|\]|[^\\()[\]:]+|:/g;
const RE_BREAK = /\s*(?<![\p{L}\p{N}_])BREAK(?![\p{L}\p{N}_])\s*/u;

export function referenceAttention(text: string): WeightedText[] {
  const res: WeightedText[] = [];
  const round: number[] = [], square: number[] = [];
  const mul = (start: number, m: number) => { for (let p = start; p < res.length; p++) res[p][1] *= m; };
  for (const match of text.matchAll(RE_ATTENTION)) {
    const tok = match[0], weight = match[1];
    if (tok.startsWith("\\")) res.push([tok.slice(1), 1]);
    else if (tok === "(") round.push(res.length);
    else if (tok === "[") square.push(res.length);
    else if (weight !== undefined && round.length) {
      const w = Number(weight);
      if (Number.isNaN(w)) throw new Error("invalid weight");
      mul(round.pop()!, w);
    } else if (tok === ")" && round.length) mul(round.pop()!, 1.1);
    else if (tok === "]" && square.length) mul(square.pop()!, 1 / 1.1);
    else tok.split(RE_BREAK).forEach((part, i) => { if (i > 0) res.push(["BREAK", -1]); res.push([part, 1]); });
  }
  for (const pos of round) mul(pos, 1.1);
  for (const pos of square) mul(pos, 1 / 1.1);
  if (res.length === 0) res.push(["", 1]);
  for (let i = 0; i + 1 < res.length;) {
    if (res[i][1] === res[i + 1][1]) { res[i][0] += res[i + 1][0]; res.splice(i + 1, 1); } else i++;
  }
  return res;
}

/** The old TAG regex: the prompt without its tags (joined as before) and each tag's argument text. */
export function referenceLoraScan(prompt: string): { text: string; args: string[] } {
  const args: string[] = [];
  const text = prompt.replace(/([ \t]*)<lora:([^<>]*)>([ \t]*)/g, (match: string, _l: string, a: string, _t: string, offset: number) => {
    args.push(a);
    const before = prompt.slice(0, offset), after = prompt.slice(offset + match.length);
    if (before === "" || /\s$/.test(before) || after === "" || /^[\s,.;:!?)\]]/.test(after)) return "";
    return " ";
  });
  return { text: args.length ? text.trim() : prompt, args };
}
