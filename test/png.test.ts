import jpeg from "jpeg-js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { ImageFormatError, decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { readImageFile, rgbToTensor, toRgb8 } from "../src/image/image.js";
import { formatInfotext, samplerLabel } from "../src/image/infotext.js";
import { PNG_SIGNATURE, pngChunk } from "./helpers/png-chunks.js";

/** An image where neighbouring pixels differ in several ways, so every row filter gets chosen somewhere. */
function testImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) {
    const i = (y * width + x) * 3 + c;
    data[i] = y % 4 === 0 ? (x * 7 + c * 50) & 255 : y % 4 === 1 ? (y * 11 + c) & 255 : y % 4 === 2 ? ((x * y * 31) ^ (c * 97)) & 255 : (x + y) * 3 + c;
  }
  return { width, height, data };
}

/** A PNG written by hand: IHDR fields, raw scanlines (filter byte 0 added), optional palette. */
function handPng(width: number, height: number, depth: number, colorType: number, rows: number[][], opts: { palette?: number[]; interlace?: number } = {}): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([depth, colorType, 0, 0, opts.interlace ?? 0], 8);
  const raw = Buffer.from(rows.flatMap((r) => [0, ...r]));
  return Buffer.concat([
    PNG_SIGNATURE, pngChunk("IHDR", ihdr),
    ...(opts.palette ? [pngChunk("PLTE", Uint8Array.from(opts.palette))] : []),
    pngChunk("IDAT", deflateSync(raw)), pngChunk("IEND", new Uint8Array(0)),
  ]);
}

test("png: encode -> decode round trip, with the parameters text chunk", () => {
  const img = testImage(37, 23);
  const parameters = "a cat, 4k\nNegative prompt: blurry\nSteps: 25, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 37x23, Model: SSD-1B";
  const png = encodePng(img, { parameters });
  assert.ok(png.includes(Buffer.from(`tEXtparameters\0a cat, 4k`, "latin1")), "a tEXt chunk named parameters, before the image data");
  assert.ok(png.indexOf("tEXt") < png.indexOf("IDAT"));
  const back = decodePng(png);
  assert.equal(back.width, 37);
  assert.equal(back.height, 23);
  assert.deepEqual(back.data, img.data);
  assert.equal(back.text.parameters, parameters);
  // text beyond Latin-1 goes into an iTXt chunk as UTF-8
  const uni = decodePng(encodePng(img, { parameters: "猫 🐱 café" }));
  assert.equal(uni.text.parameters, "猫 🐱 café");
});

test("png: every colour type and bit depth decodes to 8-bit RGB", () => {
  const rgb = (png: Buffer) => Array.from(decodePng(png).data);
  // grey 8-bit
  assert.deepEqual(rgb(handPng(2, 1, 8, 0, [[0, 200]])), [0, 0, 0, 200, 200, 200]);
  // grey 1-bit: 1 -> 255
  assert.deepEqual(rgb(handPng(3, 1, 1, 0, [[0b10100000]])), [255, 255, 255, 0, 0, 0, 255, 255, 255]);
  // grey 4-bit: 0x8 -> 136
  assert.deepEqual(rgb(handPng(2, 1, 4, 0, [[0x8f]])), [136, 136, 136, 255, 255, 255]);
  // grey + alpha: alpha dropped
  assert.deepEqual(rgb(handPng(1, 1, 8, 4, [[90, 10]])), [90, 90, 90]);
  // RGBA: alpha dropped, like PIL's convert("RGB")
  assert.deepEqual(rgb(handPng(2, 1, 8, 6, [[1, 2, 3, 0, 4, 5, 6, 255]])), [1, 2, 3, 4, 5, 6]);
  // RGB 16-bit: high bytes
  assert.deepEqual(rgb(handPng(1, 2, 16, 2, [[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc], [0xff, 0xff, 0, 0, 0x80, 0]])), [0x12, 0x56, 0x9a, 0xff, 0, 0x80]);
  // palette, 2 bits per index, rows padded to whole bytes
  const palette = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120];
  assert.deepEqual(rgb(handPng(3, 2, 2, 3, [[0b00011000], [0b11000100]], { palette })), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 10, 20, 30, 40, 50, 60]);
});

test("png: bad files are rejected with a reason", () => {
  const good = encodePng(testImage(4, 4));
  assert.throws(() => decodePng(Buffer.from("GIF89a....")), /not a PNG file/);
  const corrupt = Buffer.from(good);
  corrupt[40] ^= 0xff;
  assert.throws(() => decodePng(corrupt), ImageFormatError);
  assert.throws(() => decodePng(handPng(1, 1, 8, 2, [[1, 2, 3]], { interlace: 1 })), /interlaced PNGs are not supported/);
  assert.throws(() => decodePng(handPng(2, 2, 8, 2, [[1, 2, 3]])), /truncated/);
  assert.throws(() => decodePng(handPng(1, 1, 8, 3, [[0]])), /without a PLTE/);

  const dir = mkdtempSync(join(tmpdir(), "png-"));
  try {
    writeFileSync(join(dir, "photo.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16]));
    assert.throws(() => readImageFile(join(dir, "photo.jpg")), /photo\.jpg: not a readable JPEG/);
    // A real JPEG (written by jpeg-js at full quality) decodes to the same picture within JPEG's loss.
    const src = testImage(16, 8);
    const rgba = new Uint8Array(16 * 8 * 4);
    for (let p = 0; p < 16 * 8; p++) { rgba.set(src.data.subarray(p * 3, p * 3 + 3), p * 4); rgba[p * 4 + 3] = 255; }
    writeFileSync(join(dir, "real.jpg"), jpeg.encode({ width: 16, height: 8, data: rgba }, 100).data);
    const back = readImageFile(join(dir, "real.jpg"));
    assert.equal(back.width, 16);
    assert.equal(back.height, 8);
    let worst = 0;
    for (let i = 0; i < back.data.length; i++) worst = Math.max(worst, Math.abs(back.data[i] - src.data[i]));
    assert.ok(worst <= 24, `JPEG round trip differs by ${worst} levels`);
    assert.throws(() => readImageFile(join(dir, "missing.png")), /cannot read image .*missing\.png: no such file/);
    writeFileSync(join(dir, "junk.png"), "hello");
    assert.throws(() => readImageFile(join(dir, "junk.png")), /junk\.png: not a PNG file/);
    writeFileSync(join(dir, "ok.png"), good);
    assert.deepEqual(readImageFile(join(dir, "ok.png")).data, testImage(4, 4).data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("image: float images to 8 bits round like numpy (half to even) and clamp; RGB to NCHW tensor", () => {
  const vals = [0, 1, 0.5 / 255, 1.5 / 255, 2.5 / 255, 0.49 / 255, 127.5 / 255, 1.2, -0.3];
  const data = Float32Array.from([...vals, 0, 0, 0]); // 4 pixels
  const out = toRgb8({ data, shape: [1, 2, 2, 3] });
  const expected = vals.map((v) => { const x = Math.fround(Math.fround(v) * 255); const r = Math.round(x); return Math.min(255, Math.max(0, Math.abs(x % 1) === 0.5 && r % 2 ? r - 1 : r)); });
  assert.deepEqual(Array.from(out.data.subarray(0, vals.length)), expected);
  assert.equal(out.data[0], 0);
  assert.equal(out.data[7], 255);
  assert.equal(out.data[8], 0);
  const t = rgbToTensor({ width: 2, height: 1, data: Uint8Array.from([255, 0, 51, 0, 255, 102]) });
  assert.deepEqual(t.shape, [1, 3, 1, 2]);
  assert.deepEqual(Array.from(t.data), [1, 0, 0, 1, 0.2, 0.4].map(Math.fround));
});

test("infotext: AUTOMATIC1111 parameters format and sampler names", () => {
  assert.equal(
    formatInfotext({ prompt: "a cat", negativePrompt: "blurry", steps: 25, sampler: "Euler", cfgScale: 5, seed: 42, width: 1024, height: 1024, model: "SSD-1B" }),
    "a cat\nNegative prompt: blurry\nSteps: 25, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 1024x1024, Model: SSD-1B",
  );
  assert.equal(
    formatInfotext({ prompt: "x", steps: 5, sampler: "DPM++ 2M Karras", cfgScale: 7.5, seed: 1n << 40n, width: 768, height: 1344, denoisingStrength: 0.6 }),
    "x\nSteps: 5, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1099511627776, Size: 768x1344, Denoising strength: 0.6",
  );
  assert.equal(samplerLabel("EulerDiscreteScheduler", {}), "Euler");
  assert.equal(samplerLabel("EulerAncestralDiscreteScheduler", {}), "Euler a");
  assert.equal(samplerLabel("DPMSolverMultistepScheduler", { algorithm_type: "dpmsolver++", solver_order: 2, use_karras_sigmas: true }), "DPM++ 2M Karras");
  assert.equal(samplerLabel("DPMSolverMultistepScheduler", { algorithm_type: "sde-dpmsolver++", solver_order: 2 }), "DPM++ 2M SDE");
});
