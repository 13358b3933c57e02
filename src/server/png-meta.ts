/**
 * A PNG's size and text chunks without decoding its pixels: the chunks before the first IDAT (where
 * encodePng and PIL put "parameters"). For listing many stored images cheaply.
 */
import { readTextChunk } from "../image/png-text.js";

export interface PngMeta {
  width: number;
  height: number;
  text: Record<string, string>;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Text read per file, at most (a stored image is ours, but stay bounded anyway). */
const TEXT_BUDGET = 256 << 10;

/** undefined when the bytes are no PNG with an IHDR. */
export function readPngMeta(buf: Buffer): PngMeta | undefined {
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE)) return undefined;
  if (buf.toString("latin1", 12, 16) !== "IHDR") return undefined;
  const meta: PngMeta = { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20), text: {} };
  const budget = { left: TEXT_BUDGET };
  let pos = 8;
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    if (type === "IDAT" || type === "IEND" || pos + 12 + len > buf.length) break;
    if (type === "tEXt" || type === "zTXt" || type === "iTXt") {
      try {
        const t = readTextChunk(type, buf.subarray(pos + 8, pos + 8 + len), budget);
        if (t) meta.text[t.keyword] = t.text;
      } catch { /* a bad text chunk: the image is still listed */ }
    }
    pos += 12 + len;
  }
  return meta;
}
