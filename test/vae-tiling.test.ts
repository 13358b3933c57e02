/**
 * Tiled VAE (diffusers' enable_vae_tiling): the tile geometry and blending against values worked out by hand,
 * a stand-in decoder whose tiles must add up to the whole image, the tiny VAE tiled against whole, and the
 * option, methods and flags.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, diff } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { checkTileSize, runTiled, tileAxis, type Planes } from "../src/pipelines/vae-tiling.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { parseModelLoad } from "../src/cli/commands/generate.js";
import { UsageError } from "../src/cli/usage-error.js";

const tmp = mkdtempSync(join(tmpdir(), "vae-tiling-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A stand-in decoder: nearest-neighbour upsampling by `s` (a tile's output is exactly that part of the whole). */
const upsample = (s: number) => async (p: Planes): Promise<Planes> => {
  const height = p.height * s, width = p.width * s;
  const data = new Float32Array(p.channels * height * width);
  for (let c = 0; c < p.channels; c++) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    data[(c * height + y) * width + x] = p.data[(c * p.height + Math.floor(y / s)) * p.width + Math.floor(x / s)];
  }
  return { data, channels: p.channels, height, width };
};

/** The top-left [c, rows, cols] of a [c, h, w] array. */
function crop(a: Float32Array, c: number, h: number, w: number, rows: number, cols: number): Float32Array {
  const out = new Float32Array(c * rows * cols);
  for (let k = 0; k < c; k++) for (let y = 0; y < rows; y++) out.set(a.subarray((k * h + y) * w, (k * h + y) * w + cols), (k * rows + y) * cols);
  return out;
}

test("tileAxis: diffusers' decode geometry for the SDXL VAE (latent tiles of 128 every 96, 256 px blended, 768 kept)", () => {
  assert.deepEqual(tileAxis(256, 128, 1024), { starts: [0, 96, 192], tile: 128, blend: 256, keep: 768 });
  assert.deepEqual(tileAxis(128, 128, 1024).starts, [0, 96], "diffusers' range(0, 128, 96) cuts a second, short tile when it tiles at all");
  // encode: image tiles of 1024 every 768, 32 latent rows blended, 96 kept
  assert.deepEqual(tileAxis(2048, 1024, 128), { starts: [0, 768, 1536], tile: 1024, blend: 32, keep: 96 });
});

test("runTiled: tiles of a stand-in decoder add up to the whole output (geometry and crops), odd sizes included", async () => {
  for (const [h, w] of [[40, 56], [17, 33], [16, 16], [100, 7]]) {
    const input: Planes = { data: Float32Array.from({ length: 2 * h * w }, (_, i) => Math.sin(i * 0.731) * 3), channels: 2, height: h, width: w };
    const whole = await upsample(8)(input);
    const tiled = await runTiled(input, tileAxis(h, 16, 128), tileAxis(w, 16, 128), upsample(8));
    assert.deepEqual([tiled.height, tiled.width, tiled.channels], [whole.height, whole.width, 2], `${h}x${w}`);
    // blending a value with itself: a·(1 - t) + a·t, float32 rounding apart
    const d = diff(tiled.data, whole.data);
    assert.ok(d.maxAbs <= 3 * 2 ** -22 * d.maxRef, `${h}x${w}: max|d| ${d.maxAbs}`);
  }
});

test("runTiled: the blend weights and diffusers' order (above first, then left, each with the blended neighbour), worked out by hand", async () => {
  // 2x2 tiles of constants A00 = 1, A01 = 2, A10 = 4, A11 = 8: latent 24x24, latent tiles of 16 every 12, output
  // tiles of 128 px, 32 px blended, 96 kept. At output pixel (96 + y, 96 + x), y, x < 32, wy = y/32, wx = x/32:
  // tile (0,1) after its left blend is A00(1-wx) + A01 wx, tile (1,0) after its top blend A00(1-wy) + A10 wy;
  // tile (1,1) first takes V = [A00(1-wx) + A01 wx](1-wy) + A11 wy, then [A00(1-wy) + A10 wy](1-wx) + V wx.
  const A = [[1, 2], [4, 8]];
  const rows = tileAxis(24, 16, 128);
  assert.deepEqual(rows.starts, [0, 12]);
  // Each input pixel holds 100·row + column, so a tile's first value tells where it was cut.
  const input: Planes = { data: Float32Array.from({ length: 24 * 24 }, (_, p) => 100 * Math.floor(p / 24) + (p % 24)), channels: 1, height: 24, width: 24 };
  const out = await runTiled(input, rows, rows, async (p) => {
    const i = rows.starts.indexOf(Math.floor(p.data[0] / 100)), j = rows.starts.indexOf(p.data[0] % 100);
    return { data: new Float32Array(p.height * 8 * p.width * 8).fill(A[i][j]), channels: 1, height: p.height * 8, width: p.width * 8 };
  });
  assert.deepEqual([out.height, out.width], [192, 192]);
  const at = (y: number, x: number) => out.data[y * 192 + x];
  const close = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 1e-6 * Math.abs(want), `${what}: ${got}, want ${want}`);
  for (const [y, x] of [[0, 0], [5, 17], [31, 31], [16, 0], [0, 31]]) {
    const wy = y / 32, wx = x / 32;
    close(at(y, 96 + x), A[0][0] * (1 - wx) + A[0][1] * wx, `top row seam (${y}, ${96 + x})`);
    close(at(96 + y, x), A[0][0] * (1 - wy) + A[1][0] * wy, `left column seam (${96 + y}, ${x})`);
    const v = (A[0][0] * (1 - wx) + A[0][1] * wx) * (1 - wy) + A[1][1] * wy;
    close(at(96 + y, 96 + x), (A[0][0] * (1 - wy) + A[1][0] * wy) * (1 - wx) + v * wx, `corner (${96 + y}, ${96 + x})`);
  }
  close(at(0, 0), 1, "tile (0,0) inside");
  close(at(150, 40), 4, "tile (1,0) below the seam");
  close(at(150, 150), 8, "tile (1,1) inside");
  close(at(40, 191), 2, "tile (0,1) right edge");
});

test("checkTileSize: multiples of 4x the scale factor, at least 8x it", () => {
  assert.equal(checkTileSize(512, 8), 512);
  assert.equal(checkTileSize(64, 8), 64);
  for (const bad of [500, 32, 0, -64, 512.5]) assert.throws(() => checkTileSize(bad, 8), /vaeTiling\.tileSize must be a multiple of 32 pixels, at least 64/);
});

test("the tiny VAE tiled: whole below the tile, near the whole decode and encode above it", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  try {
    const vae = pipe.vae;
    assert.equal(vae.defaultTiling.tileSize, 32, "the tiny VAE's sample_size");
    const [h, w] = [24, 40]; // latent; the tiny VAE's scale factor is 2: image 48x80
    const latent = Float32Array.from({ length: 4 * h * w }, (_, i) => Math.sin(i * 0.37) * 2);
    const whole = await vae.decode(latent, h, w);
    pipe.enableVaeTiling();
    const small = await vae.decode(latent.subarray(0, 4 * 16 * 16), 16, 16);
    pipe.disableVaeTiling();
    assert.deepEqual(small, await vae.decode(latent.subarray(0, 4 * 16 * 16), 16, 16), "a latent within one tile decodes whole");
    // The first tile's latent [0:16, 0:16] decoded alone: its first 24x24 pixels are the tiled image's there (never blended).
    const firstTile = await vae.decode(crop(latent, 4, h, w, 16, 16), 16, 16);
    pipe.enableVaeTiling(32);
    const tiled = await vae.decode(latent, h, w);
    assert.equal(tiled.length, whole.length);
    await assert.rejects(vae.decode(latent, h, w, false, AbortSignal.abort()), { name: "AbortError" }, "a cancelled request stops between tiles");
    assert.deepEqual(crop(tiled, 3, 48, 80, 24, 24), crop(firstTile, 3, 32, 32, 24, 24));
    // Each tile's GroupNorms and the mid block's attention see only the tile: with random weights and
    // 8-pixel edge tiles that moves this image far (0.37), a real VAE's much less.
    const d = diff(tiled, whole);
    t.diagnostic(`decode 48x80 in tiles of 32: relL2 ${d.relL2.toExponential(2)} against whole`);
    assert.ok(d.relL2 > 1e-3 && d.relL2 < 0.6, `decode: relL2 ${d.relL2}`);

    const image = Float32Array.from({ length: 3 * 48 * 80 }, (_, i) => Math.sin(i * 0.11));
    const tiledEnc = await vae.encode(image, 48, 80);
    pipe.disableVaeTiling();
    const wholeEnc = await vae.encode(image, 48, 80);
    const firstEnc = await vae.encode(crop(image, 3, 48, 80, 32, 32), 32, 32);
    for (const key of ["mean", "logvar"] as const) {
      assert.equal(tiledEnc[key].length, wholeEnc[key].length);
      // latent tiles of 16 keep 12: the first tile's own encode there
      assert.deepEqual(crop(tiledEnc[key], 4, 24, 40, 12, 12), crop(firstEnc[key], 4, 16, 16, 12, 12), key);
      const e = diff(tiledEnc[key], wholeEnc[key]);
      t.diagnostic(`encode ${key} in tiles of 32: relL2 ${e.relL2.toExponential(2)} against whole`);
      assert.ok(e.relL2 > 1e-4 && e.relL2 < 0.6, `encode ${key}: relL2 ${e.relL2}`);
    }
    assert.throws(() => pipe.enableVaeTiling(30), (e: Error) => e instanceof PipelineInputError && /multiple of 8 pixels, at least 16, got 30/.test(e.message));
  } finally {
    await pipe.release();
  }
});

test("vaeTiling at load, and a generated image with it: as large, near the untiled one", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const args = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly", numInferenceSteps: 2, seed: 3, width: 96, height: 64 };
  const images = async (vaeTiling?: { tileSize: number }) => {
    const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { vaeTiling });
    try {
      assert.deepEqual(pipe.vae.tiling, vaeTiling);
      return (await pipe.generate(args)).images;
    } finally {
      await pipe.release();
    }
  };
  const whole = await images(), tiled = await images({ tileSize: 32 });
  assert.deepEqual(tiled.shape, whole.shape);
  const d = diff(tiled.data, whole.data);
  t.diagnostic(`image 96x64 in VAE tiles of 32: relL2 ${d.relL2.toExponential(2)} against whole`);
  assert.ok(d.relL2 > 1e-5 && d.relL2 < 0.2, `relL2 ${d.relL2}`);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { vaeTiling: { tileSize: 20 } }), /vaeTiling\.tileSize must be a multiple of 8 pixels/);
});

test("--vae-tiling and --vae-tile-size", () => {
  assert.equal(parseModelLoad({}).vaeTiling, undefined);
  assert.equal(parseModelLoad({ "vae-tiling": true }).vaeTiling, true);
  assert.deepEqual(parseModelLoad({ "vae-tile-size": "512" }).vaeTiling, { tileSize: 512 });
  assert.deepEqual(parseModelLoad({ "vae-tiling": true, "vae-tile-size": "768" }).vaeTiling, { tileSize: 768 });
  assert.throws(() => parseModelLoad({ "vae-tile-size": "500" }), (e: Error) => e instanceof UsageError && /--vae-tile-size must be a multiple of 32 pixels, at least 64, got 500/.test(e.message));
  assert.throws(() => parseModelLoad({ "vae-tile-size": "big" }), (e: Error) => e instanceof UsageError && /--vae-tile-size must be a whole number/.test(e.message));
});
