/**
 * A1111's tiling (torch padding_mode "circular" on every Conv2d): the lowering's circularConvPads
 * against a circular conv written out by hand, plain lowerings unchanged, and asymmetric pads (the
 * VAE's explicit zero F.pad) left as zeros.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";
import { lowerToOnnx } from "../src/ir/onnx/lower.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { TorchGenerator } from "../src/random/index.js";
import { readFileSync } from "node:fs";
import { runCli } from "./helpers/cli.js";
import { decodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";

const values = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 77 + i * 0.731));

/** torch's Conv2d(padding=p, padding_mode="circular"), stride s, written out. */
function circularConv(x: Float32Array, [c, h, w]: number[], wt: Float32Array, co: number, k: number, p: number, s: number, zeros = false): Float32Array {
  const ho = Math.floor((h + 2 * p - k) / s) + 1, wo = Math.floor((w + 2 * p - k) / s) + 1;
  const out = new Float32Array(co * ho * wo);
  for (let o = 0; o < co; o++) for (let y = 0; y < ho; y++) for (let xo = 0; xo < wo; xo++) {
    let acc = 0;
    for (let ci = 0; ci < c; ci++) for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
      let iy = y * s + ky - p, ix = xo * s + kx - p;
      if (zeros && (iy < 0 || iy >= h || ix < 0 || ix >= w)) continue;
      iy = (iy + h) % h; ix = (ix + w) % w;
      acc += wt[((o * c + ci) * k + ky) * k + kx] * x[(ci * h + iy) * w + ix];
    }
    out[(o * ho + y) * wo + xo] = acc;
  }
  return out;
}

async function run(bytes: Uint8Array, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["cpu"] });
  try {
    return (await session.run({ x: new ort.Tensor("float32", x, shape) })).y.data as Float32Array;
  } finally {
    await session.release();
  }
}

function convGraph(c: number, h: number, w: number, co: number, k: number, pads: [number, number, number, number], stride: number, wt: Float32Array): Graph {
  const g = new Graph();
  const x = g.input("x", [1, c, h, w]);
  g.output("y", F.conv2d(x, g.constant(wt, [co, c, k, k]), undefined, { pads, stride }));
  return g;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; };

test("circular conv padding: Pad mode wrap + a pad-0 conv equals torch's circular Conv2d (stride 1 and 2); plain lowering keeps zeros", async () => {
  const [c, h, w, co] = [2, 5, 6, 3];
  const x = values(c * h * w, 1);
  for (const [k, p, s] of [[3, 1, 1], [3, 1, 2], [5, 2, 1]]) {
    const wt = values(co * c * k * k, 2 + k);
    const g = convGraph(c, h, w, co, k, [p, p, p, p], s, wt);
    const tiled = await run(lowerToOnnx(g, "t", { circularConvPads: true }).bytes, x, [1, c, h, w]);
    assert.ok(maxDiff(tiled, circularConv(x, [c, h, w], wt, co, k, p, s)) < 1e-5, `k ${k} p ${p} s ${s} circular`);
    const plain = await run(lowerToOnnx(g, "t").bytes, x, [1, c, h, w]);
    assert.ok(maxDiff(plain, circularConv(x, [c, h, w], wt, co, k, p, s, true)) < 1e-5, `k ${k} p ${p} s ${s} zeros`);
  }
});

test("circular conv padding leaves asymmetric pads (an explicit zero F.pad folded into the conv) as zeros", async () => {
  const [c, h, w, co, k] = [2, 6, 6, 2, 3];
  const x = values(c * h * w, 3), wt = values(co * c * k * k, 4);
  const g = convGraph(c, h, w, co, k, [0, 0, 1, 1], 2, wt);
  const a = await run(lowerToOnnx(g, "t", { circularConvPads: true }).bytes, x, [1, c, h, w]);
  const b = await run(lowerToOnnx(g, "t").bytes, x, [1, c, h, w]);
  assert.deepEqual(a, b);
});

/** [N, C, H, W] (or [N, H, W, C] with channelsLast) rolled right by `by` columns. */
function rollColumns(x: Float32Array, shape: number[], by: number, channelsLast = false): Float32Array {
  const w = channelsLast ? shape[2] : shape[3], inner = channelsLast ? shape[3] : 1, rows = x.length / (w * inner);
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < w; c++) for (let k = 0; k < inner; k++) {
    out[(r * w + (c + by) % w) * inner + k] = x[(r * w + c) * inner + k];
  }
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), "tiling-"));
let pipe: StableDiffusionXLPipeline | undefined;
after(async () => { await pipe?.release(); rmSync(tmp, { recursive: true, force: true }); });

test("tiling: the image of latents rolled by 4 columns is the image rolled by 8 pixels (so its left and right edges meet seamlessly); without tiling it is not", { skip: NO_FIXTURES }, async () => {
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  // the tiny UNet halves twice and the VAE doubles once: a 4-column latent roll is an 8-pixel image roll
  const shape = [1, 4, 16, 16];
  const latents = new TorchGenerator(3).randn(shape);
  const rolled = rollColumns(latents, shape, 4);
  const base = { prompt: "a brick wall", numInferenceSteps: 2, scheduler: "Euler", width: 32, height: 32, seed: 1 };
  const image = async (l: Float32Array, tiling: boolean) => (await pipe!.generate({ ...base, latents: l, tiling })).images;
  const a = await image(latents, true), b = await image(rolled, true);
  // b holds a's right edge (column 31) next to its left edge (column 0) at columns 7 | 8, as any inner pair
  const d = maxDiff(b.data, rollColumns(a.data, a.shape, 8, true));
  assert.ok(d < 1e-4, `tiled: rolled latents give the rolled image (max diff ${d})`);
  const p = await image(latents, false), q = await image(rolled, false);
  assert.ok(maxDiff(q.data, rollColumns(p.data, p.shape, 8, true)) > 1e-3, "zero padding is not seamless");
  assert.ok(maxDiff(a.data, p.data) > 1e-3, "tiling changes the image");
  // img2img and inpainting encode with the tiled VAE too (their own sessions); the plain call is as before
  const init = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).map((_, i) => (i * 37) % 256) };
  const i2i = await pipe.img2img({ ...base, image: init, strength: 0.5, tiling: true });
  const plain = await pipe.img2img({ ...base, image: init, strength: 0.5 });
  assert.ok(maxDiff(i2i.images.data, plain.images.data) > 1e-3);
  assert.deepEqual((await pipe.img2img({ ...base, image: init, strength: 0.5, tiling: false })).images.data, plain.images.data);
});

test("cli --tiling: the library's tiled image, with A1111's \"Tiling: True\" in the PNG text", { skip: NO_FIXTURES }, async () => {
  const out = join(tmp, "tiled.png");
  const r = runCli(["generate", "--model", tinyModelIn(tmp), "--prompt", "a brick wall", "--steps", "2", "--scheduler", "Euler", "--seed", "4", "--width", "32", "--height", "32", "--tiling", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const png = decodePng(readFileSync(out));
  assert.match(png.text.parameters ?? "", /Tiling: True/);
  pipe ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const lib = await pipe.generate({ prompt: "a brick wall", numInferenceSteps: 2, guidanceScale: 5, scheduler: "Euler", seed: 4, width: 32, height: 32, tiling: true });
  assert.deepEqual(Array.from(png.data), Array.from(toRgb8(lib.images).data));
});
