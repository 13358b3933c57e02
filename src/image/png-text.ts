/**
 * PNG text chunks (tEXt, zTXt, iTXt). Compressed text is inflated against a budget shared by the
 * whole file, so a small zTXt cannot expand to gigabytes; a malformed chunk is skipped, as PIL does.
 */
import { inflateSync } from "node:zlib";
import { ImageFormatError } from "./errors.js";

export function readTextChunk(type: string, data: Buffer, budget: { left: number }): { keyword: string; text: string } | undefined {
  const z = data.indexOf(0);
  if (z < 1) return undefined;
  const keyword = data.toString("latin1", 0, z);
  if (type === "tEXt") return { keyword, text: data.toString("latin1", z + 1) };
  if (type === "zTXt") {
    if (z + 2 > data.length || data[z + 1] !== 0) return undefined;
    return { keyword, text: inflateText(data.subarray(z + 2), budget, keyword).toString("latin1") };
  }
  // iTXt: keyword 0, compression flag, method, language tag 0, translated keyword 0, text
  if (z + 3 > data.length) return undefined;
  const compressed = data[z + 1] === 1;
  const lang = data.indexOf(0, z + 3);
  const translated = lang < 0 ? -1 : data.indexOf(0, lang + 1);
  if (translated < 0) return undefined;
  const body = data.subarray(translated + 1);
  return { keyword, text: (compressed ? inflateText(body, budget, keyword) : body).toString("utf8") };
}

function inflateText(data: Buffer, budget: { left: number }, keyword: string): Buffer {
  let out: Buffer;
  try {
    out = inflateSync(data, { maxOutputLength: Math.max(1, budget.left) });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new ImageFormatError(`PNG text chunk "${keyword.slice(0, 79)}" inflates past the limit of ${budget.left} bytes of text per image`);
    }
    throw new ImageFormatError(`PNG text chunk "${keyword.slice(0, 79)}" does not decompress (${(e as Error).message})`);
  }
  budget.left -= out.length;
  return out;
}
