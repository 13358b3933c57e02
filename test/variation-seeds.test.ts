import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { a1111Slerp, variationNoise } from "../src/random/variation-noise.js";
import { TorchGenerator } from "../src/random/index.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { runCli } from "./helpers/cli.js";
import { decodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";

test("A1111 slerp: by hand on orthogonal columns, the ends, and the straight blend for (nearly) equal noise", () => {
  // one channel, h = 2, w = 1: low (1, 0), high (0, 1): omega = pi/2, weights sin(pi/4) each
  const r = a1111Slerp(0.5, Float32Array.of(1, 0), Float32Array.of(0, 1), 1, 2, 1);
  assert.ok(Math.abs(r[0] - Math.SQRT1_2) < 1e-6 && Math.abs(r[1] - Math.SQRT1_2) < 1e-6, `${r}`);
  // norms are per (channel, column) over the rows: scaling one column of high changes nothing
  const low = Float32Array.of(3, 1, 2, 2), high = Float32Array.of(1, 3, 4, 1); // [1, 2, 2]
  const a = a1111Slerp(0.3, low, high, 1, 2, 2), b = a1111Slerp(0.3, low, Float32Array.of(2, 3, 8, 1), 1, 2, 2);
  assert.ok(Math.abs(a[1] - b[1]) < 1e-6 && Math.abs(a[3] - b[3]) < 1e-6, "column 1 unchanged by scaling column 0");
  const n = new TorchGenerator(1).randn([4, 8, 8]), s = new TorchGenerator(2).randn([4, 8, 8]);
  assert.deepEqual(a1111Slerp(0, n, s, 4, 8, 8), n);
  const one = a1111Slerp(1, n, s, 4, 8, 8);
  for (let i = 0; i < s.length; i++) assert.ok(Math.abs(one[i] - s[i]) < 1e-5);
  // equal noise: dot = 1 > 0.9995, A1111's straight blend low * val + high * (1 - val) = the noise
  const same = a1111Slerp(0.4, n, n, 4, 8, 8);
  for (let i = 0; i < n.length; i++) assert.ok(Math.abs(same[i] - n[i]) < 1e-6);
  assert.throws(() => variationNoise(n, [1, 4, 8, 8], [1], 1.5), /variation strength must be in \[0, 1\]/);
});

const tmp = mkdtempSync(join(tmpdir(), "variation-"));
let pipe: StableDiffusionXLPipeline | undefined;
after(async () => { await pipe?.release(); rmSync(tmp, { recursive: true, force: true }); });

test("variation seeds in the pipeline: strength 0 is the seed's image, strength 1 the variation seed's (Euler draws no step noise)", { skip: NO_FIXTURES }, async () => {
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const base = { prompt: "a castle", numInferenceSteps: 3, scheduler: "Euler", width: 32, height: 32, outputType: "latent" as const };
  const plain = (await pipe.generate({ ...base, seed: 5 })).latents.data;
  const zero = (await pipe.generate({ ...base, seed: 5, variationSeed: 9, variationStrength: 0 })).latents.data;
  assert.deepEqual(zero, plain);
  const full = (await pipe.generate({ ...base, seed: 5, variationSeed: 9, variationStrength: 1 })).latents.data;
  const other = (await pipe.generate({ ...base, seed: 9 })).latents.data;
  for (let i = 0; i < other.length; i++) assert.ok(Math.abs(full[i] - other[i]) < 1e-4);
  // image i takes variation seed + i, as A1111's subseed + i
  const two = (await pipe.generate({ ...base, seeds: [5, 6], numImagesPerPrompt: 2, variationSeed: 9, variationStrength: 1 })).latents.data;
  const ten = (await pipe.generate({ ...base, seed: 10 })).latents.data;
  for (let i = 0; i < ten.length; i++) assert.ok(Math.abs(two[ten.length + i] - ten[i]) < 1e-4);
  const half = (await pipe.generate({ ...base, seed: 5, variationSeed: 9, variationStrength: 0.5 })).latents.data;
  assert.ok(half.some((v, i) => Math.abs(v - plain[i]) > 1e-2) && half.some((v, i) => Math.abs(v - other[i]) > 1e-2));
  await assert.rejects(pipe.generate({ ...base, seed: 5, variationStrength: 0.5 }), /variationStrength needs a variationSeed/);
  await assert.rejects(pipe.generate({ ...base, seed: 5, variationSeed: 1, variationStrength: 2 }), /variationStrength must be in \[0, 1\]/);
});

test("cli --variation-seed / --variation-strength: the library's image and A1111's infotext fields", { skip: NO_FIXTURES }, async () => {
  const out = join(tmp, "var.png");
  const r = runCli(["generate", "--model", tinyModelIn(tmp), "--prompt", "a castle", "--steps", "3", "--scheduler", "Euler", "--seed", "5", "--width", "32", "--height", "32",
    "--variation-seed", "9", "--variation-strength", "0.5", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const png = decodePng(readFileSync(out));
  assert.match(png.text.parameters ?? "", /Variation seed: 9, Variation seed strength: 0\.5/);
  const lib = await pipe!.generate({ prompt: "a castle", numInferenceSteps: 3, guidanceScale: 5, scheduler: "Euler", seed: 5, width: 32, height: 32, variationSeed: 9, variationStrength: 0.5 });
  assert.deepEqual(Array.from(png.data), Array.from(toRgb8(lib.images).data));
  const bad = runCli(["generate", "--model", tinyModelIn(tmp), "--prompt", "x", "--variation-seed", "3"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--variation-seed and --variation-strength go together/);
});

test("cli --seed-resize-from W,H: the library's seedResizeFrom and A1111's \"Seed resize from\"", { skip: NO_FIXTURES }, async () => {
  const out = join(tmp, "resize.png");
  const r = runCli(["generate", "--model", tinyModelIn(tmp), "--prompt", "a castle", "--steps", "3", "--scheduler", "Euler", "--seed", "5", "--width", "32", "--height", "32",
    "--seed-resize-from", "48,16", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const png = decodePng(readFileSync(out));
  assert.match(png.text.parameters ?? "", /Seed resize from: 48x16/);
  pipe ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const lib = await pipe.generate({ prompt: "a castle", numInferenceSteps: 3, guidanceScale: 5, scheduler: "Euler", seed: 5, width: 32, height: 32, seedResizeFrom: { width: 48, height: 16 } });
  assert.deepEqual(Array.from(png.data), Array.from(toRgb8(lib.images).data));
  const bad = runCli(["generate", "--model", tinyModelIn(tmp), "--prompt", "x", "--seed-resize-from", "48,16", "--num-images", "2"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--seed-resize-from takes one image/);
});
