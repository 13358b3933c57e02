/**
 * Inpainting image operations against diffusers 0.27.2 / PIL (fixtures inpaint/tiny-ssd): the mask
 * processing, PIL's GaussianBlur, get_crop_region, the "fill" crop-resize and apply_overlay.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import jpeg from "jpeg-js";
import { readFileSync } from "node:fs";
import { NO_FIXTURES, fixture, openFixture } from "./helpers/fixtures.js";
import { gradChecker, rectMask } from "./helpers/inpaint-inputs.js";
import { PNG_SIGNATURE, pngChunk } from "./helpers/png-chunks.js";
import type { TensorStore } from "../src/safetensors/index.js";
import type { RgbImage } from "../src/image/png.js";
import { encodePng } from "../src/image/png.js";
import { ImageFormatError } from "../src/image/errors.js";
import {
  MaskError, a1111BinaryMask, assertMaskNotEmpty, binarizeMask, checkMaskSize, emptyMaskReason, grayToMask, invertMask,
  maskFromAlpha, maskFromRgb, repaintedPixels, rgbToGray, type GrayImage,
} from "../src/image/mask.js";
import { decodeImageRgba } from "../src/image/rgba.js";
import { gaussianBlurGray, pilBoxRadius } from "../src/image/gaussian-blur.js";
import { a1111CropRegion, expandCropRegion, getCropRegion } from "../src/image/crop-region.js";
import { crop } from "../src/image/raster.js";
import { a1111Resize, diffusersResize } from "../src/image/resize-modes.js";
import { prepareInpaintInputs } from "../src/image/inpaint-preprocess.js";
import { a1111ApplyOverlay, a1111OverlayMask, applyOverlay, maskedOriginal } from "../src/image/overlay.js";

const W = 32, H = 32;
let store: TensorStore | undefined;
const cases = () => (store ??= openFixture("inpaint", "tiny-ssd", "cases.safetensors"));


/** Fixture [1,1,H,W] or [1,H,W,3] floats (uint8/255) back to levels; asserts they are whole levels. */
function levels(name: string): Uint8Array {
  const f = cases().float32(name);
  return Uint8Array.from(f, (v) => {
    const l = Math.round(v * 255);
    assert.ok(Math.abs(v * 255 - l) < 1e-3, `${name} holds a non-integer level ${v * 255}`);
    return l;
  });
}

/** Max |a - b| over two level arrays. */
function maxLevelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test("mask: convert('L') luma, binarize at 0.5, invert, alpha mask", () => {
  const rgb: RgbImage = { width: 4, height: 1, data: Uint8Array.of(255, 255, 255, 0, 0, 0, 255, 0, 0, 10, 200, 30) };
  // (R*19595 + G*38470 + B*7471 + 0x8000) >> 16
  assert.deepEqual([...rgbToGray(rgb).data], [255, 0, 76, 124]);
  const m = maskFromRgb(rgb);
  assert.deepEqual([...binarizeMask(m).data], [1, 0, 0, 0]);
  assert.deepEqual([...binarizeMask(grayToMask({ width: 3, height: 1, data: Uint8Array.of(127, 128, 255) })).data], [0, 1, 1]);
  assert.deepEqual([...invertMask(binarizeMask(m)).data], [0, 1, 1, 1]);
  const rgba = { width: 3, height: 1, data: Uint8Array.of(9, 9, 9, 0, 9, 9, 9, 255, 9, 9, 9, 51) };
  assert.deepEqual([...maskFromAlpha(rgba).data].map((v) => +v.toFixed(4)), [1, 0, 0.8]);
});

test("mask: all-black masks and size mismatches give clear errors", () => {
  const black = grayToMask({ width: 8, height: 4, data: new Uint8Array(32).fill(127) });
  assert.equal(repaintedPixels(black), 0);
  assert.match(emptyMaskReason(black)!, /nothing to repaint.*8x4.*below 0\.5/);
  assert.throws(() => assertMaskNotEmpty(black), MaskError);
  assert.equal(emptyMaskReason(grayToMask(rectMask(8, 4, 0, 1, 0, 1))), undefined);
  assert.throws(() => checkMaskSize({ width: 64, height: 32 }, { width: 32, height: 32 }), /mask is 64x32 but the image is 32x32/);
  assert.throws(() => getCropRegion(rectMask(8, 8, 0, 0, 0, 0), 8, 8, 2), /all black/);
  assert.equal(a1111CropRegion(rectMask(8, 8, 0, 0, 0, 0), 8, 8, 2), undefined);
  assert.throws(() => decodeImageRgba(Buffer.from("hello, not an image"), "mask.png"), (e: Error) => e instanceof ImageFormatError && /^mask\.png: /.test(e.message));
});

test("decodeImageRgba: PNG alpha channel, palette tRNS and opaque RGB", () => {
  const ihdr = (w: number, h: number, depth: number, type: number) => {
    const b = Buffer.alloc(13);
    b.writeUInt32BE(w, 0); b.writeUInt32BE(h, 4); b[8] = depth; b[9] = type;
    return pngChunk("IHDR", b);
  };
  const png = (...chunks: Buffer[]) => Buffer.concat([PNG_SIGNATURE, ...chunks, pngChunk("IEND", Buffer.alloc(0))]);
  const rgbaPng = png(ihdr(2, 1, 8, 6), pngChunk("IDAT", deflateSync(Buffer.from([0, 1, 2, 3, 0, 4, 5, 6, 200]))));
  assert.deepEqual([...decodeImageRgba(rgbaPng, "a").data], [1, 2, 3, 0, 4, 5, 6, 200]);
  assert.deepEqual(maskFromAlpha(decodeImageRgba(rgbaPng, "a")).data[0], 1);
  const palPng = png(ihdr(2, 1, 8, 3), pngChunk("PLTE", Buffer.from([10, 20, 30, 40, 50, 60])), pngChunk("tRNS", Buffer.from([0])),
    pngChunk("IDAT", deflateSync(Buffer.from([0, 0, 1]))));
  assert.deepEqual([...decodeImageRgba(palPng, "p").data], [10, 20, 30, 0, 40, 50, 60, 255]);
  const opaque = decodeImageRgba(encodePng({ width: 1, height: 1, data: Uint8Array.of(7, 8, 9) }), "o");
  assert.deepEqual([...opaque.data], [7, 8, 9, 255]);
  // grey + alpha, and an RGB colour key in tRNS
  const gaPng = png(ihdr(2, 1, 8, 4), pngChunk("IDAT", deflateSync(Buffer.from([0, 50, 255, 60, 0]))));
  assert.deepEqual([...decodeImageRgba(gaPng, "ga").data], [50, 50, 50, 255, 60, 60, 60, 0]);
  const keyPng = png(ihdr(2, 1, 8, 2), pngChunk("tRNS", Buffer.from([0, 1, 0, 2, 0, 3])), pngChunk("IDAT", deflateSync(Buffer.from([0, 1, 2, 3, 1, 2, 4]))));
  assert.deepEqual([...decodeImageRgba(keyPng, "k").data], [1, 2, 3, 0, 1, 2, 4, 255]);
  // JPEG: opaque, through the same decoder and limits as decodeImage
  const jpg = jpeg.encode({ width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, 128) }, 90).data;
  const dj = decodeImageRgba(jpg, "j");
  assert.equal(dj.data.length, 8 * 8 * 4);
  for (let p = 0; p < 64; p++) assert.equal(dj.data[4 * p + 3], 255);
  assert.throws(() => decodeImageRgba(jpg, "big.jpg", { maxPixels: 10 }), /big\.jpg: .*limit/);
  assert.throws(() => decodeImageRgba(rgbaPng, "big.png", { maxPixels: 1 }), /big\.png: PNG is 2x1 .*over the limit of 1 pixels/);
});

test("fixture masks: the rect masks are what the README formula gives, and binarize gives mask_preprocessed", { skip: NO_FIXTURES }, () => {
  const rects: [string, number, number, number, number][] = [["strength1_euler", 8, 24, 10, 26], ["euler_ancestral", 4, 20, 6, 30]];
  for (const [name, y0, y1, x0, x1] of rects) {
    const mask = rectMask(W, H, y0, y1, x0, x1);
    assert.deepEqual(levels(`${name}.mask`), mask.data, name);
    assert.deepEqual(binarizeMask(grayToMask(mask)).data, cases().float32(`${name}.mask_preprocessed`), name);
  }
});

test("PIL GaussianBlur(4) of the rect mask equals blurred_mask's CASE.mask bit for bit; binarized, its mask_preprocessed", { skip: NO_FIXTURES }, () => {
  assert.equal(pilBoxRadius(4), 3.4375); // sigma² = 16/3: l = 3, a = 7/16
  const blurred = gaussianBlurGray(rectMask(W, H, 8, 24, 10, 26), 4);
  assert.equal(maxLevelDiff(blurred.data, levels("blurred_mask.mask")), 0);
  assert.equal(Math.max(...blurred.data), 233); // README: max 0.914
  const bin = binarizeMask(grayToMask(blurred));
  assert.deepEqual(bin.data, cases().float32("blurred_mask.mask_preprocessed"));
  assert.equal(repaintedPixels(bin), 200);
});

test("get_crop_region(mask, 32, 32, pad=8) of padding_mask_crop is (2, 2, 30, 30); aspect growth rules", { skip: NO_FIXTURES }, () => {
  const mask = { width: W, height: H, data: levels("padding_mask_crop.mask") };
  assert.deepEqual(mask.data, rectMask(W, H, 12, 20, 10, 22).data);
  assert.deepEqual(getCropRegion(mask, W, H, 8), [2, 2, 30, 30]);
  // 12x8 box (x 10-22, y 12-20) for a square: int(12 - 8) = 4 rows, 2 above and 2 below
  assert.deepEqual(getCropRegion(mask, W, H, 0), [10, 10, 22, 22]);
  // wide processing size: the box grows in x, then is shifted back inside the image
  assert.deepEqual(expandCropRegion([0, 0, 10, 20], 64, 32, 32, 32), [0, 0, 40, 20].map((v, i) => (i === 2 ? Math.min(v, 32) : v)));
  assert.deepEqual(expandCropRegion([25, 0, 31, 6], 64, 32, 32, 32), [20, 0, 32, 6]);
  assert.deepEqual(a1111CropRegion(mask, W, H, 8), [2, 2, 30, 30]);
});

test("padding_mask_crop: crop + resize_mode 'fill' (PIL Lanczos 28 -> 32) gives init_image_preprocessed and mask_preprocessed exactly", { skip: NO_FIXTURES }, () => {
  const init = gradChecker(W, H);
  const ref = cases().float32("padding_mask_crop.init_image_preprocessed");
  const fromFixture = cases().float32("padding_mask_crop.init_image");
  for (let p = 0; p < W * H; p++) for (let c = 0; c < 3; c++) assert.equal(Math.round(fromFixture[c * W * H + p] * 255), init.data[p * 3 + c]);
  const box = getCropRegion(rectMask(W, H, 12, 20, 10, 22), W, H, 8);
  const img = diffusersResize(crop(init, ...box), W, H, "fill");
  let maxAbs = 0;
  for (let p = 0; p < W * H; p++) for (let c = 0; c < 3; c++) {
    const mine = Math.fround(2 * Math.fround(img.data[p * 3 + c] / 255) - 1);
    maxAbs = Math.max(maxAbs, Math.abs(mine - ref[c * W * H + p]));
  }
  assert.equal(maxAbs, 0, "init_image_preprocessed: 0 levels of difference");
  const m = diffusersResize(crop(rectMask(W, H, 12, 20, 10, 22), ...box), W, H, "fill");
  assert.equal(m.data.length, W * H * 3); // Image.new("RGB") canvas; convert("L") of R = G = B is lossless
  const gray = rgbToGray(m as RgbImage);
  assert.deepEqual(binarizeMask(grayToMask(gray)).data, cases().float32("padding_mask_crop.mask_preprocessed"));
});

test("apply_overlay: image_before_overlay -> images of padding_mask_crop bit for bit; unmasked pixels are the init image", { skip: NO_FIXTURES }, () => {
  const init = gradChecker(W, H);
  const mask = rectMask(W, H, 12, 20, 10, 22);
  const gen: RgbImage = { width: W, height: H, data: levels("padding_mask_crop.image_before_overlay") };
  const out = applyOverlay(mask, init, gen, [2, 2, 30, 30]);
  assert.equal(maxLevelDiff(out.data, levels("padding_mask_crop.images")), 0);
  for (let p = 0; p < W * H; p++) if (mask.data[p] === 0) for (let c = 0; c < 3; c++) assert.equal(out.data[3 * p + c], init.data[3 * p + c]);
  // like diffusers, the mask and original are resized to the generated image's size first
  assert.throws(() => maskedOriginal(init, rectMask(16, 16, 0, 4, 0, 4)), /mask is 16x16 but the original image is 32x32/);
});

test("resize modes: same-size default is a copy; crop and fill keep the aspect ratio; A1111's 0/1/2", () => {
  const img = gradChecker(48, 32);
  assert.deepEqual(diffusersResize(img, 48, 32).data, img.data);
  // 48x32 -> 32x32 crop: resized to 48x32 (height fits), centre 32 columns
  const cropped = a1111Resize(img, 32, 32, 1);
  assert.deepEqual(cropped.data, crop(img, 8, 0, 40, 32).data);
  assert.deepEqual(diffusersResize(img, 32, 32, "crop").data, cropped.data);
  // 48x32 -> 48x48 fill: 48x32 pasted at y 8, bands of 8 rows above and below from the edge rows
  const filled = a1111Resize(img, 48, 48, 2);
  assert.deepEqual(crop(filled, 0, 8, 48, 40).data, img.data);
  const row = (im: { data: Uint8Array }, y: number) => [...im.data.subarray(y * 48 * 3, (y + 1) * 48 * 3)];
  for (let y = 0; y < 8; y++) assert.deepEqual(row(filled, y), row(filled, 0));
  // the band extrapolates a little: Lanczos at the box edge weighs rows 0,1,2 by ~1.22, -0.27, 0.05
  assert.ok(maxLevelDiff(row(filled, 0), row(img, 0)) <= 3);
  assert.deepEqual(diffusersResize(img, 48, 48, "fill").data, filled.data);
  assert.equal(a1111Resize(img, 24, 16, 0).width, 24);
  assert.throws(() => diffusersResize(img, 0, 16), /positive integers/);
  assert.throws(() => a1111Resize(img, 16, 16, 3 as 0), /resize_mode 3/);
});

test("A1111 apply_overlay (inpaint_full_res uncrop + overlay) gives padding_mask_crop's images too; overlay mask doubling", { skip: NO_FIXTURES }, () => {
  const init = gradChecker(W, H);
  const mask = rectMask(W, H, 12, 20, 10, 22);
  const gen: RgbImage = { width: W, height: H, data: levels("padding_mask_crop.image_before_overlay") };
  // outside the crop box the mask is 0, so A1111's transparent canvas there makes no difference
  const out = a1111ApplyOverlay(gen, { width: W, height: H, data: maskedOriginal(init, mask) }, [2, 2, 28, 28]);
  assert.equal(maxLevelDiff(out.data, levels("padding_mask_crop.images")), 0);
  assert.deepEqual([...a1111OverlayMask({ width: 3, height: 1, data: Uint8Array.of(0, 100, 200) }).data], [0, 200, 255]);
  assert.throws(() => a1111ApplyOverlay(gradChecker(8, 8), { width: W, height: H, data: maskedOriginal(init, mask) }), /generated image is 8x8 but the overlay is 32x32/);
});

test("A1111 create_binary_mask: alpha > 128 where the RGBA mask has transparency, else luma", () => {
  const withAlpha = { width: 3, height: 1, data: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 128, 9, 9, 9, 129) };
  assert.deepEqual([...a1111BinaryMask(withAlpha).data], [0, 0, 255]);
  assert.deepEqual([...a1111BinaryMask(withAlpha, false).data], [0, 128, 129]);
  const opaque = { width: 2, height: 1, data: Uint8Array.of(255, 255, 255, 255, 10, 200, 30, 255) };
  assert.deepEqual([...a1111BinaryMask(opaque).data], [255, 124]);
});

test("prepareInpaintInputs reproduces init_image_preprocessed and mask_preprocessed of all 8 inpainting cases", { skip: NO_FIXTURES }, () => {
  const json = JSON.parse(readFileSync(fixture("inpaint", "tiny-ssd", "cases.json"), "utf8").replace(/-?Infinity\b/g, "null")) as Record<string, { height: number; width: number; padding_mask_crop: number | null; vae_scale_factor: number; crops_coords: number[] | null }>; // Python json writes -Infinity
  const names = Object.keys(json);
  assert.equal(names.length, 8);
  for (const name of names) {
    const c = json[name];
    const [, , h, w] = cases().get(`${name}.init_image`).shape;
    const initF = cases().float32(`${name}.init_image`);
    const init: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
    for (let p = 0; p < w * h; p++) for (let ch = 0; ch < 3; ch++) init.data[3 * p + ch] = Math.round(initF[ch * w * h + p] * 255);
    assert.deepEqual(init.data, gradChecker(w, h).data, `${name}: grad_checker`);
    const mask: GrayImage = { width: w, height: h, data: levels(`${name}.mask`) };
    const out = prepareInpaintInputs(init, mask, c.width, c.height, { vaeScaleFactor: c.vae_scale_factor, paddingMaskCrop: c.padding_mask_crop ?? undefined });
    assert.deepEqual(out.image.data, cases().float32(`${name}.init_image_preprocessed`), `${name}: image`);
    assert.deepEqual(out.mask.data, cases().float32(`${name}.mask_preprocessed`), `${name}: mask`);
    assert.deepEqual(out.crop ?? null, c.crops_coords, `${name}: crop`);
    for (let i = 0; i < out.maskedImage.data.length; i++) {
      const p = i % (out.width * out.height);
      assert.equal(out.maskedImage.data[i], out.mask.data[p] < 0.5 ? out.image.data[i] : 0);
    }
  }
  const init = gradChecker(W, H);
  assert.throws(() => prepareInpaintInputs(init, rectMask(W, H, 0, 0, 0, 0), W, H), /nothing to repaint/);
  assert.throws(() => prepareInpaintInputs(init, rectMask(W, H, 0, 0, 0, 0), W, H, { paddingMaskCrop: 8 }), /all black/);
  assert.throws(() => prepareInpaintInputs(init, rectMask(16, 32, 0, 4, 0, 4), W, H), /mask is 16x32 but the image is 32x32/);
});
