/**
 * Image bombs and fuzzed PNG / JPEG files: sizes are checked from the header before decoding,
 * inflates are capped, and every failure is an ImageFormatError. FUZZ_SCALE=20 for a longer run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import jpeg from "jpeg-js";
import { decodeImage, DEFAULT_MAX_PIXELS, ImageFormatError } from "../src/image/image.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { PNG_SIGNATURE, crc32, pngChunk } from "./helpers/png-chunks.js";
import { Prng, fuzzCases, fuzzSeed } from "./helpers/prng.js";

function png(width: number, height: number, idat: Uint8Array, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", ihdr), ...extra, pngChunk("IDAT", idat), pngChunk("IEND", new Uint8Array(0))]);
}

/** Patches IHDR's width and height and fixes its CRC, so that the size check is what fails. */
function patchPngSize(file: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(file);
  b.writeUInt32BE(width >>> 0, 16); b.writeUInt32BE(height >>> 0, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
  return b;
}

const image = (w: number, h: number, seed = 1): RgbImage => {
  const r = new Prng(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7 + r.int(40)) & 0xff) };
};
const jpegOf = (img: RgbImage) => {
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let p = 0; p < img.width * img.height; p++) rgba.set([...img.data.subarray(p * 3, p * 3 + 3), 255], p * 4);
  return Buffer.from(jpeg.encode({ width: img.width, height: img.height, data: rgba }, 80).data);
};
/** Offset of the SOF0 segment's height field. */
const sofAt = (b: Buffer) => { for (let i = 2; i < b.length - 1; i++) if (b[i] === 0xff && b[i + 1] === 0xc0) return i + 5; throw new Error("no SOF0"); };

/** Runs f, returns its time in ms and the rss growth in MiB; f must throw an ImageFormatError matching re. */
function refused(f: () => unknown, re: RegExp): { ms: number; mib: number } {
  const rss = process.memoryUsage().rss, t = performance.now();
  assert.throws(f, (e: Error) => e instanceof ImageFormatError && re.test(e.message));
  return { ms: performance.now() - t, mib: (process.memoryUsage().rss - rss) / 2 ** 20 };
}

test("PNG bomb: a huge IHDR is refused before inflating, naming the limit and the size", () => {
  const bomb = png(100_000, 100_000, deflateSync(Buffer.alloc(1000)));
  const { ms, mib } = refused(() => decodeImage(bomb, "init image"), /^init image: PNG is 100000x100000 \(10000\.0 megapixels\), over the limit of 16777216 pixels/);
  assert.ok(ms < 100 && mib < 32, `${ms} ms, +${mib} MiB`);
  assert.throws(() => decodePng(patchPngSize(encodePng(image(8, 8)), 0x7fffffff, 0x7fffffff)), /over the limit/);
  // the limit is the caller's to choose, and every decoder takes it
  const small = encodePng(image(64, 64));
  assert.equal(decodeImage(small, "x").width, 64);
  assert.throws(() => decodeImage(small, "x", { maxPixels: 4000 }), /PNG is 64x64 .*over the limit of 4000 pixels/);
  assert.throws(() => decodePng(small, { maxPixels: 4000 }), ImageFormatError);
  assert.equal(DEFAULT_MAX_PIXELS, 4096 * 4096);
});

test("PNG bomb: image data that inflates past what IHDR implies is cut off", () => {
  const bomb = png(64, 64, deflateSync(Buffer.alloc(64 << 20)));
  const { ms, mib } = refused(() => decodePng(bomb), /inflates to more than the 12352 bytes a 64x64 image holds/);
  assert.ok(ms < 500 && mib < 32, `${ms} ms, +${mib} MiB`);
});

test("PNG bomb: compressed text chunks are capped at 1 MiB in all", () => {
  const pixels = deflateSync(Buffer.alloc(8 * 25));
  const ztxt = pngChunk("zTXt", Buffer.concat([Buffer.from("parameters\0\0", "latin1"), deflateSync(Buffer.alloc(32 << 20, 0x41))]));
  assert.ok(ztxt.length < 64 << 10, `${ztxt.length} bytes`);
  const { ms, mib } = refused(() => decodePng(png(8, 8, pixels, [ztxt])), /text chunk "parameters" inflates past the limit of 1048576 bytes/);
  assert.ok(ms < 500 && mib < 32, `${ms} ms, +${mib} MiB`);
  // many chunks under the cap each still share one budget
  const piece = pngChunk("zTXt", Buffer.concat([Buffer.from("k\0\0", "latin1"), deflateSync(Buffer.alloc(300_000, 0x41))]));
  assert.throws(() => decodePng(png(8, 8, pixels, [piece, piece, piece, piece])), /past the limit/);
  const ok = decodePng(png(8, 8, pixels, [piece]));
  assert.equal(ok.text.k.length, 300_000);
});

test("JPEG bomb: a small JPEG with a patched SOF size is refused before decoding", () => {
  const small = jpegOf(image(16, 16));
  assert.equal(decodeImage(small, "x").width, 16);
  const at = sofAt(small);
  const huge = Buffer.from(small); huge.writeUInt16BE(65535, at); huge.writeUInt16BE(65535, at + 2);
  const r1 = refused(() => decodeImage(huge, "init image"), /^init image: JPEG is 65535x65535 .*over the limit/);
  const mid = Buffer.from(small); mid.writeUInt16BE(4000, at); mid.writeUInt16BE(4000, at + 2); // under the limit, but 600 bytes cannot hold it
  const r2 = refused(() => decodeImage(mid, "init image"), /truncated JPEG: \d+ bytes cannot hold a 4000x4000 image/);
  for (const { ms, mib } of [r1, r2]) assert.ok(ms < 100 && mib < 32, `${ms} ms, +${mib} MiB`);
  assert.throws(() => decodeImage(jpegOf(image(64, 64)), "x", { maxPixels: 1000 }), /JPEG is 64x64 .*over the limit of 1000 pixels/);
  // scans: each one walks every block again
  const sos = small.indexOf(Buffer.from([0xff, 0xda]));
  const scan = small.subarray(sos, small.length - 2);
  const many = Buffer.concat([small.subarray(0, sos), ...Array(80).fill(scan), Buffer.from([0xff, 0xd9])]);
  refused(() => decodeImage(many, "x"), /more than 64 scans/);
});

function mutatePng(r: Prng, file: Buffer): Buffer {
  const b = Buffer.from(file);
  switch (r.int(5)) {
    case 0: return patchPngSize(b, r.pick([0, 1, 7, 8, 9, 4096, 65535, 2 ** 31 - 1, 2 ** 32 - 1]), r.pick([0, 1, 8, 16, 5000, 2 ** 31]));
    case 1: return b.subarray(0, r.int(b.length));
    case 2: { // damage the compressed image data and fix its CRC, so that inflate and unfilter meet the damage
      const at = b.indexOf("IDAT", 8, "latin1"), len = b.readUInt32BE(at - 4);
      for (let k = 0; k < 1 + r.int(3); k++) b[at + 4 + r.int(len)] = r.int(256);
      b.writeUInt32BE(crc32(b.subarray(at, at + 4 + len)), at + 4 + len);
      return b;
    }
    case 3: { // any IHDR byte (depth, colour type, interlace), CRC fixed
      b[16 + r.int(13)] = r.pick([0, 1, 2, 3, 4, 6, 8, 16, 255, r.int(256)]);
      b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
      return b;
    }
    default: { // a chunk's length field
      b.writeUInt32BE(r.pick([0, 1, 13, 2 ** 31, 2 ** 32 - 1, r.int(200)]), r.pick([8, 33]));
      return b;
    }
  }
}

function mutateJpeg(r: Prng, file: Buffer): Buffer {
  const b = Buffer.from(file);
  const at = sofAt(b);
  switch (r.int(5)) {
    case 0: b.writeUInt16BE(r.pick([0, 1, 16, 17, 4096, 5000, 65535]), at); b.writeUInt16BE(r.pick([0, 1, 16, 4096, 65535]), at + 2); return b;
    case 1: return b.subarray(0, r.int(b.length));
    case 2: for (let k = 0; k < 1 + r.int(4); k++) b[r.int(b.length)] = r.int(256); return b;
    case 3: b[at + 4] = r.pick([0, 1, 2, 3, 4, 5, 255]); return b; // component count
    default: { // a segment length
      const seg = 4 + r.int(Math.min(200, b.length - 6)); b.writeUInt16BE(r.pick([0, 1, 2, 65535, r.int(300)]), seg); return b;
    }
  }
}

test("image fuzz: mutated PNGs and JPEGs decode or fail with an ImageFormatError, quickly and in bounded memory", () => {
  const seed = fuzzSeed(4242);
  const r = new Prng(seed);
  const pngs = [encodePng(image(24, 16)), encodePng(image(5, 3), { parameters: "a cat\nSteps: 20" }), png(8, 8, deflateSync(Buffer.alloc(8 * 25)))];
  const jpegs = [jpegOf(image(16, 16)), jpegOf(image(33, 17, 2))];
  const cases = fuzzCases(20_000);
  const rss0 = process.memoryUsage().rss;
  let slowest = 0, decoded = 0;
  for (let c = 0; c < cases; c++) {
    const isPng = c % 2 === 0;
    const input = isPng ? mutatePng(r, r.pick(pngs)) : mutateJpeg(r, r.pick(jpegs));
    const t = performance.now();
    try {
      const img = decodeImage(input, "fuzz");
      assert.equal(img.data.length, img.width * img.height * 3);
      assert.ok(img.width * img.height <= DEFAULT_MAX_PIXELS);
      decoded++;
    } catch (e) {
      if (!(e instanceof ImageFormatError)) assert.fail(`seed ${seed} case ${c} (${isPng ? "PNG" : "JPEG"}): ${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? e}`);
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
  const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(`image fuzz: ${cases} cases (seed ${seed}), ${decoded} decoded; slowest ${slowest.toFixed(0)} ms; rss +${grown.toFixed(0)} MiB`);
  assert.ok(slowest < 2000, `a case took ${slowest} ms`);
  assert.ok(grown < 512, `rss grew ${grown.toFixed(0)} MiB`);
});
