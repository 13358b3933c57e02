/**
 * The tokens of A1111's `re_attention`, scanned by hand in one pass (same alternatives, same order):
 *   \( \) \[ \] \\ | \ | ( | [ | :\s*([+-]?[.\d]+)\s*\) | ) | ] | [^\\()[\]:]+ | :
 * Each alternative is decided by its first character and matched greedily, which is exact here:
 * no shorter match of a part could let the rest match.
 */
export interface AttentionToken {
  text: string;
  /** The number of a `:1.3)` token. */
  weight?: string;
}

const SPACE = /\s/;
const isDigitOrDot = (c: number) => c === 0x2e || (c >= 0x30 && c <= 0x39);
const SPECIAL = new Set(["\\", "(", ")", "[", "]", ":"]);

/** `:\s*([+-]?[.\d]+)\s*\)` at i, or undefined. */
function weightAt(s: string, i: number): AttentionToken | undefined {
  let j = i + 1;
  while (j < s.length && SPACE.test(s[j])) j++;
  const numStart = j;
  if (s[j] === "+" || s[j] === "-") j++;
  const digits = j;
  while (j < s.length && isDigitOrDot(s.charCodeAt(j))) j++;
  if (j === digits) return undefined;
  const numEnd = j;
  while (j < s.length && SPACE.test(s[j])) j++;
  if (s[j] !== ")") return undefined;
  return { text: s.slice(i, j + 1), weight: s.slice(numStart, numEnd) };
}

export function* attentionTokens(s: string): Generator<AttentionToken> {
  for (let i = 0; i < s.length;) {
    const c = s[i];
    let tok: AttentionToken;
    if (c === "\\") {
      const next = s[i + 1];
      tok = { text: next === "(" || next === ")" || next === "[" || next === "]" || next === "\\" ? c + next : c };
    } else if (c === ":") {
      tok = weightAt(s, i) ?? { text: c };
    } else if (SPECIAL.has(c)) {
      tok = { text: c };
    } else {
      let j = i + 1;
      while (j < s.length && !SPECIAL.has(s[j])) j++;
      tok = { text: s.slice(i, j) };
    }
    yield tok;
    i += tok.text.length;
  }
}
