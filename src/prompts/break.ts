/**
 * Splits text at A1111's BREAK keyword, as `re.split(r"\s*\bBREAK\b\s*", text)` with Unicode word
 * boundaries, in one pass: a regex with a leading `\s*` is quadratic on long runs of spaces.
 */
const SPACE = /\s/;
const WORD = /[\p{L}\p{N}_]/u;

const isSpace = (s: string, i: number) => SPACE.test(s[i]);

/** The code point ending just before index i (a surrogate pair counts as one). */
function isWordBefore(s: string, i: number): boolean {
  if (i <= 0) return false;
  const lo = s.charCodeAt(i - 1);
  const start = lo >= 0xdc00 && lo <= 0xdfff && i >= 2 && (s.charCodeAt(i - 2) & 0xfc00) === 0xd800 ? i - 2 : i - 1;
  return WORD.test(String.fromCodePoint(s.codePointAt(start)!));
}

const isWordAt = (s: string, i: number) => i < s.length && WORD.test(String.fromCodePoint(s.codePointAt(i)!));

export function splitBreak(text: string): string[] {
  const parts: string[] = [];
  let pos = 0; // end of the previous match
  for (let j = text.indexOf("BREAK"); j >= 0; j = text.indexOf("BREAK", j + 1)) {
    if (isWordBefore(text, j) || isWordAt(text, j + 5)) continue;
    // The leftmost match starts at the run of spaces before BREAK (not before the previous match)
    // and takes the run of spaces after it.
    let start = j;
    while (start > pos && isSpace(text, start - 1)) start--;
    let end = j + 5;
    while (end < text.length && isSpace(text, end)) end++;
    parts.push(text.slice(pos, start));
    pos = end;
    j = end - 1;
  }
  parts.push(text.slice(pos));
  return parts;
}
