/**
 * GPT-2/CLIP byte-level alphabet: every byte 0..255 maps to one printable
 * character so BPE never sees whitespace or control characters. Printable
 * Latin-1 bytes map to themselves; the rest take code points 256, 257, ...
 * in byte order (so space 0x20 becomes "Ġ", U+0120).
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) table.push(String.fromCharCode(printable(b) ? b : next++));
  return table;
})();

const utf8 = new TextEncoder();

/** The UTF-8 bytes of `text`, each written as its byte-level character. */
export function toByteLevel(text: string): string {
  let out = "";
  for (const b of utf8.encode(text)) out += BYTE_TO_UNICODE[b];
  return out;
}
