/**
 * PNG writing (8-bit RGB with text chunks) and reading (every non-interlaced colour type and bit
 * depth, returned as 8-bit RGB), on node:zlib only.
 */
import { deflateSync, inflateSync } from "node:zlib";
import { ImageFormatError } from "./errors.js";
import { MAX_PNG_TEXT_BYTES, checkImageSize, type DecodeLimits } from "./limits.js";
import { readTextChunk } from "./png-text.js";

export { ImageFormatError } from "./errors.js";

/** An 8-bit RGB image, row-major HWC. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const SIGNATURE = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return crc;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE((crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0, 8 + data.length);
  return out;
}

/** tEXt when the text is Latin-1 (what PIL writes for A1111's "parameters"), else UTF-8 iTXt. */
function textChunk(keyword: string, text: string): Buffer {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword)) throw new ImageFormatError(`invalid PNG text keyword ${JSON.stringify(keyword)}`);
  if (/^[\x00-\xff]*$/.test(text)) return chunk("tEXt", Buffer.from(`${keyword}\0${text}`, "latin1"));
  // iTXt: keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, text
  return chunk("iTXt", Buffer.concat([Buffer.from(`${keyword}\0\0\0\0\0`, "latin1"), Buffer.from(text, "utf8")]));
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Filters each row with the type of least absolute signed sum (libpng's heuristic) for smaller files. */
function filterRows(img: RgbImage, bpp = 3): Uint8Array {
  const stride = img.width * bpp;
  const out = new Uint8Array((stride + 1) * img.height);
  const cand = Array.from({ length: 5 }, () => new Uint8Array(stride));
  const zero = new Uint8Array(stride);
  for (let y = 0; y < img.height; y++) {
    const row = img.data.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? img.data.subarray((y - 1) * stride, y * stride) : zero;
    let best = 0, bestSum = Infinity;
    for (let f = 0; f < 5; f++) {
      const c = cand[f];
      let sum = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp] : 0, b = up[i], cc = i >= bpp ? up[i - bpp] : 0;
        const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : paeth(a, b, cc);
        const v = (row[i] - pred) & 0xff;
        c[i] = v;
        sum += v < 128 ? v : 256 - v;
      }
      if (sum < bestSum) { bestSum = sum; best = f; }
    }
    out[y * (stride + 1)] = best;
    out.set(cand[best], y * (stride + 1) + 1);
  }
  return out;
}

/** Encodes 8-bit RGB as PNG, with optional text chunks (e.g. { parameters: "..." }) before the image data. */
export function encodePng(img: RgbImage, text: Record<string, string> = {}): Buffer {
  if (img.data.length !== img.width * img.height * 3) throw new ImageFormatError(`RGB data has ${img.data.length} bytes for ${img.width}x${img.height}`);
  return encodeWithColourType(img, 2, 3, text);
}

/** Encodes 8-bit RGBA (straight alpha) as PNG, with optional text chunks. */
export function encodePngRgba(img: { width: number; height: number; data: Uint8Array }, text: Record<string, string> = {}): Buffer {
  if (img.data.length !== img.width * img.height * 4) throw new ImageFormatError(`RGBA data has ${img.data.length} bytes for ${img.width}x${img.height}`);
  return encodeWithColourType(img, 6, 4, text);
}

function encodeWithColourType(img: RgbImage, colourType: 2 | 6, bpp: number, text: Record<string, string>): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr.set([8, colourType, 0, 0, 0], 8); // bit depth 8, RGB or RGBA, deflate, adaptive filtering, no interlace
  return Buffer.concat([
    SIGNATURE,
    chunk("IHDR", ihdr),
    ...Object.entries(text).map(([k, v]) => textChunk(k, v)),
    chunk("IDAT", deflateSync(filterRows(img, bpp), { level: 9 })),
    chunk("IEND", new Uint8Array(0)),
  ]);
}

export interface DecodedPng extends RgbImage {
  /** tEXt / iTXt / zTXt chunks by keyword. */
  text: Record<string, string>;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function unfilter(raw: Uint8Array, height: number, stride: number, bpp: number): Uint8Array {
  if (raw.length < height * (stride + 1)) throw new ImageFormatError(`PNG image data is truncated (${raw.length} of ${height * (stride + 1)} bytes)`);
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = out.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? out.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp] : 0, b = up[i], c = i >= bpp ? up[i - bpp] : 0;
      const pred = f === 0 ? 0 : f === 1 ? a : f === 2 ? b : f === 3 ? (a + b) >> 1 : f === 4 ? paeth(a, b, c) : -1;
      if (pred < 0) throw new ImageFormatError(`PNG row ${y} has unknown filter type ${f}`);
      row[i] = (src[i] + pred) & 0xff;
    }
  }
  return out;
}

/**
 * Decodes a PNG to 8-bit RGB (alpha dropped, as PIL's convert("RGB") does; 16-bit samples keep their
 * high byte). The size in IHDR is checked against `limits` before anything is inflated, and no
 * inflate can produce more than the header implies (image data) or MAX_PNG_TEXT_BYTES (text).
 */
export function decodePng(bytes: Uint8Array, limits: DecodeLimits = {}): DecodedPng {
  return decodePngPixels(bytes, limits, 3) as DecodedPng;
}

/**
 * Decodes a PNG to 8-bit RGBA (PIL's convert("RGBA")): alpha from the alpha channel, from a palette's
 * tRNS entries, or 0 where a grey/RGB pixel equals the tRNS colour key; 255 otherwise. Limits as decodePng.
 */
export function decodePngRgba(bytes: Uint8Array, limits: DecodeLimits = {}): DecodedPng {
  return decodePngPixels(bytes, limits, 4) as DecodedPng;
}

/** The decoder behind decodePng / decodePngRgba: `out` = 3 (RGB) or 4 (RGBA) bytes per pixel. */
function decodePngPixels(bytes: Uint8Array, limits: DecodeLimits, out: 3 | 4): DecodedPng {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !SIGNATURE.every((v, i) => buf[i] === v)) throw new ImageFormatError("not a PNG file (bad signature)");
  let pos = 8;
  let width = 0, height = 0, depth = 0, colorType = -1;
  let palette: Uint8Array | undefined;
  let trns: Uint8Array | undefined;
  const idat: Buffer[] = [];
  const text: Record<string, string> = {};
  const textBudget = { left: MAX_PNG_TEXT_BYTES };
  while (pos + 12 <= buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    if (pos + 12 + len > buf.length) throw new ImageFormatError(`PNG chunk ${JSON.stringify(type)} is truncated`);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if ((crc32(buf.subarray(pos + 4, pos + 8 + len)) ^ 0xffffffff) >>> 0 !== buf.readUInt32BE(pos + 8 + len)) {
      throw new ImageFormatError(`PNG chunk ${JSON.stringify(type)} has a bad CRC (corrupt file)`);
    }
    const first = pos === 8;
    pos += 12 + len;
    if (first !== (type === "IHDR")) throw new ImageFormatError("PNG does not start with its IHDR chunk");
    if (type === "IHDR") {
      if (len !== 13) throw new ImageFormatError(`PNG IHDR chunk has ${len} bytes, not 13`);
      width = data.readUInt32BE(0); height = data.readUInt32BE(4); depth = data[8]; colorType = data[9];
      checkImageSize("PNG", width, height, limits);
      if (data[12] !== 0) throw new ImageFormatError("interlaced PNGs are not supported; save the image without interlacing");
    } else if (type === "PLTE") palette = data;
    else if (type === "tRNS") trns = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "tEXt" || type === "zTXt" || type === "iTXt") {
      const t = readTextChunk(type, data, textBudget);
      if (t) text[t.keyword] = t.text;
    } else if (type === "IEND") break;
  }
  const channels = CHANNELS[colorType];
  if (!width || !height || channels === undefined) throw new ImageFormatError("PNG has no valid IHDR chunk");
  if (![1, 2, 4, 8, 16].includes(depth) || (depth < 8 && channels !== 1) || (colorType === 3 && depth > 8)) {
    throw new ImageFormatError(`PNG bit depth ${depth} is invalid for colour type ${colorType}`);
  }
  if (colorType === 3 && !palette) throw new ImageFormatError("palette PNG without a PLTE chunk");
  const stride = Math.ceil((width * depth * channels) / 8);
  const expected = height * (stride + 1); // a filter byte and a row, per row
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new ImageFormatError(`PNG image data inflates to more than the ${expected} bytes a ${width}x${height} image holds`);
    }
    throw new ImageFormatError(`PNG image data does not decompress (${(e as Error).message})`);
  }
  const bitsPerPixel = depth * channels;
  const px = unfilter(raw, height, stride, Math.max(1, bitsPerPixel >> 3));
  const rgb = new Uint8Array(width * height * out);
  const maxV = (1 << Math.min(depth, 8)) - 1;
  // tRNS colour key (grey: 1 sample, RGB: 3), compared at the file's own bit depth
  const key = trns && (colorType === 0 || colorType === 2) && trns.length >= (colorType === 0 ? 2 : 6)
    ? Array.from({ length: colorType === 0 ? 1 : 3 }, (_, c) => (trns![2 * c] << 8) | trns![2 * c + 1]) : undefined;
  for (let y = 0; y < height; y++) {
    const row = px.subarray(y * stride, (y + 1) * stride);
    // raw(x, c): channel c of pixel x at the file's bit depth
    const raw16 = (x: number, c: number): number => {
      if (depth === 16) return (row[(x * channels + c) * 2] << 8) | row[(x * channels + c) * 2 + 1];
      if (depth === 8) return row[x * channels + c];
      const bit = x * depth;
      return (row[bit >> 3] >> (8 - depth - (bit & 7))) & maxV;
    };
    // sample(x, c): channel c of pixel x, scaled to 8 bits (16-bit samples keep their high byte)
    const sample = (x: number, c: number): number => (depth === 16 ? raw16(x, c) >> 8 : raw16(x, c));
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * out;
      let a = 255;
      if (colorType === 3) {
        const i = sample(x, 0);
        if (3 * i + 2 >= palette!.length) throw new ImageFormatError(`palette index ${i} outside the PLTE chunk`);
        rgb[o] = palette![3 * i]; rgb[o + 1] = palette![3 * i + 1]; rgb[o + 2] = palette![3 * i + 2];
        if (trns && i < trns.length) a = trns[i];
      } else if (channels <= 2) {
        const g = depth < 8 ? Math.round((sample(x, 0) * 255) / maxV) : sample(x, 0);
        rgb[o] = rgb[o + 1] = rgb[o + 2] = g;
        if (channels === 2) a = sample(x, 1);
        else if (key && raw16(x, 0) === key[0]) a = 0;
      } else {
        rgb[o] = sample(x, 0); rgb[o + 1] = sample(x, 1); rgb[o + 2] = sample(x, 2);
        if (channels === 4) a = sample(x, 3);
        else if (key && raw16(x, 0) === key[0] && raw16(x, 1) === key[1] && raw16(x, 2) === key[2]) a = 0;
      }
      if (out === 4) rgb[o + 3] = a;
    }
  }
  return { width, height, data: rgb, text };
}
