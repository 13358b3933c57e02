/**
 * The hires fix: torch's interpolate formulas against hand-computed values and an independent
 * per-point reference, A1111's target-size rules, and the recipe equal to its calls made by hand.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture } from "./helpers/fixtures.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { saveTensors } from "../src/safetensors/index.js";
import { Upscaler } from "../src/pipelines/upscaler.js";
import { UpscalerLibrary } from "../src/server/upscaler-library.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { interpolate } from "../src/image/latent-resize.js";
import { generateHires, hiresTargetSize, upscaleLatents, builtinPixelUpscale, esrganPixelUpscale } from "../src/recipes/hires-fix.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { rgbToTensor, toRgb8 } from "../src/image/image.js";
import { decodePng } from "../src/image/png.js";
import { startServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { runJob } from "../src/server/run-job.js";

const tmp = mkdtempSync(join(tmpdir(), "hires-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const close = (got: Float32Array, want: number[], tol = 1e-6) => {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= tol, `[${i}] ${v} vs ${want[i]}`));
};

test("interpolate: bilinear (align_corners=False) 2x2 -> 4x4 by hand", () => {
  // v(y, x) = 2y + x: per axis the samples sit at source -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped index)
  const out = interpolate({ data: Float32Array.from([0, 1, 2, 3]), shape: [1, 1, 2, 2] }, 4, 4, "bilinear");
  assert.deepEqual(out.shape, [1, 1, 4, 4]);
  close(out.data, [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
});

test("interpolate: nearest is floor(o·s), nearest-exact floor((o+0.5)·s)", () => {
  const row = { data: Float32Array.from([10, 20, 30]), shape: [1, 1, 1, 3] };
  close(interpolate(row, 1, 2, "nearest").data, [10, 20]);
  close(interpolate(row, 1, 2, "nearest-exact").data, [10, 30]);
  close(interpolate(row, 1, 6, "nearest").data, [10, 10, 20, 20, 30, 30]);
  close(interpolate(row, 1, 6, "nearest-exact").data, [10, 10, 20, 20, 30, 30]);
  close(interpolate(row, 1, 4, "nearest").data, [10, 10, 20, 30]); // floor(0, .75, 1.5, 2.25)
  close(interpolate(row, 1, 4, "nearest-exact").data, [10, 20, 20, 30]); // floor(.375, 1.125, 1.875, 2.625)
});

/** Keys' cubic kernel (A = -0.75) on the distance, clamped indices: torch's bicubic written per point. */
function bicubic1d(x: number[], out: number): number[] {
  const A = -0.75;
  const k = (d: number) => { d = Math.abs(d); return d <= 1 ? (A + 2) * d ** 3 - (A + 3) * d ** 2 + 1 : d < 2 ? A * d ** 3 - 5 * A * d ** 2 + 8 * A * d - 4 * A : 0; };
  return Array.from({ length: out }, (_, o) => {
    const src = (o + 0.5) * (x.length / out) - 0.5;
    const i0 = Math.floor(src);
    let s = 0;
    for (let j = i0 - 1; j <= i0 + 2; j++) s += k(src - j) * x[Math.min(Math.max(j, 0), x.length - 1)];
    return s;
  });
}

test("interpolate: bicubic (A=-0.75, align_corners=False) against a per-point reference, and by hand", () => {
  const ramp = [0, 1, 2, 3];
  const got = interpolate({ data: Float32Array.from(ramp), shape: [1, 1, 1, 4] }, 1, 8, "bicubic").data;
  close(got, bicubic1d(ramp, 8), 1e-6);
  // by hand, source 1.25 (t = 0.25): weights -0.10546875, 0.87890625, 0.26171875, -0.03515625 on 0..3
  // (A = -0.75 does not reproduce a ramp, unlike -0.5); source 1.75: the same weights reversed
  close(got.subarray(3, 5), [1.296875, 1.703125]);
  // separable in 2D: a 3x2 plane to 5x4 equals rows then columns of the reference
  const plane = [[1, -2], [0.5, 4], [3, 3]];
  const rows = plane.map((r) => bicubic1d(r, 4));
  const want: number[][] = Array.from({ length: 5 }, () => []);
  for (let x = 0; x < 4; x++) bicubic1d(rows.map((r) => r[x]), 5).forEach((v, y) => (want[y][x] = v));
  const out = interpolate({ data: Float32Array.from(plane.flat()), shape: [1, 1, 3, 2] }, 5, 4, "bicubic");
  close(out.data, want.flat(), 1e-5);
});

test("hires target size: A1111's rules, rounded down to multiples of 8", () => {
  const s = (w: number, h: number, o: { scale?: number; width?: number; height?: number }) => {
    const r = hiresTargetSize(w, h, o);
    return [r.width, r.height, r.upscaleWidth, r.upscaleHeight];
  };
  assert.deepEqual(s(32, 48, { scale: 1.5 }), [48, 72, 48, 72]);
  assert.deepEqual(s(40, 40, { scale: 1.3 }), [48, 48, 48, 48]); // int(52) -> 48
  assert.deepEqual(s(512, 512, {}), [1024, 1024, 1024, 1024]); // hr_scale default 2
  assert.deepEqual(s(32, 48, { width: 64 }), [64, 96, 64, 96]); // hr_resize_x only keeps the ratio
  assert.deepEqual(s(32, 48, { height: 100 }), [64, 96, 64, 96]); // 100·32 // 48 = 66 -> 64
  assert.deepEqual(s(32, 48, { width: 64, height: 64 }), [64, 64, 64, 96]); // cover, then crop
  assert.throws(() => hiresTargetSize(32, 32, { scale: -1 }), /positive/);
});

test("hires fix equals generate -> upscale -> img2img by hand, latent and pixel upscalers", { skip: NO_FIXTURES }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  try {
    const base = { prompt: "a red cube", negativePrompt: "blurry", numInferenceSteps: 4, guidanceScale: 5, width: 32, height: 48, seed: 7 };
    const hires = await generateHires(pipe, base, { scale: 1.5, upscaler: "Latent", strength: 0.5, steps: 6 });
    assert.deepEqual(hires.images.shape, [1, 72, 48, 3]);
    const first = await pipe.generate({ ...base, outputType: "latent" });
    const size = hiresTargetSize(32, 48, { scale: 1.5 });
    const up = upscaleLatents(first.latents, size, "Latent", pipe.vaeScaleFactor);
    const { width: _w, height: _h, ...rest } = base;
    const byHand = await pipe.img2img({ ...rest, image: up, strength: 0.5, numInferenceSteps: 6 });
    assert.deepEqual(hires.images.data, byHand.images.data);
    assert.deepEqual(hires.firstPass.latents.data, first.latents.data);

    // a pixel upscaler: the decoded first pass, Lanczos-resized, then img2img; batches keep one seed each
    const seeds = [3, 4];
    const px = await generateHires(pipe, { ...base, seed: undefined, seeds, numImagesPerPrompt: 2 }, { width: 48, upscaler: "Lanczos", strength: 0.6 });
    assert.deepEqual(px.images.shape, [2, 72, 48, 3]);
    const firstPx = await pipe.generate({ ...base, seed: undefined, seeds, numImagesPerPrompt: 2 });
    const lanczos = builtinPixelUpscale("Lanczos");
    const imgs = [];
    for (let i = 0; i < 2; i++) imgs.push(rgbToTensor(await lanczos(toRgb8(firstPx.images, i), 48, 72)).data);
    const image = { data: Float32Array.from([...imgs[0], ...imgs[1]]), shape: [2, 3, 72, 48] };
    const byHandPx = await pipe.img2img({ ...rest, seed: undefined, seeds, numImagesPerPrompt: 2, image, strength: 0.6, numInferenceSteps: 4 });
    assert.deepEqual(px.images.data, byHandPx.images.data);

    // stopped during the first pass: that pass, decoded, without the second (as A1111's interrupt)
    const stopped = await generateHires(pipe, { ...base, stopEarly: AbortSignal.abort() }, { scale: 1.5 });
    assert.deepEqual(stopped.images.shape, [1, 48, 32, 3]);

    await assert.rejects(generateHires(pipe, base, { upscaler: "Latent (antialiased)" }), /not implemented/);
    await assert.rejects(generateHires(pipe, base, { upscaler: "Bogus" }), /unknown upscaler "Bogus".*Lanczos/);
  } finally {
    await pipe.release();
  }
});

test("A1111 txt2img with enable_hr: the target size, the hires fields in info, a bad hr_upscaler a 400 naming the valid ones", { skip: NO_FIXTURES }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const files = new FileStore();
  const server = await startServer({ queue: new LocalQueue(pipe, 2, files), files, host: "127.0.0.1", port: 0 });
  const post = (body: unknown) => fetch(server.url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  try {
    const base = { prompt: "a red cube", steps: 3, width: 32, height: 48, seed: 5, enable_hr: true };
    for (const [extra, w, h] of [[{ hr_scale: 1.5 }, 48, 72], [{ hr_resize_x: 64, hr_upscaler: "Nearest", hr_second_pass_steps: 4 }, 64, 96],
      [{ firstphase_width: 32, firstphase_height: 32, width: 48, height: 48, hr_upscaler: "Latent (nearest-exact)" }, 48, 48]] as const) {
      const r = await post({ ...base, ...extra });
      assert.equal(r.status, 200, JSON.stringify(extra));
      const out = await r.json() as { images: string[]; info: string };
      const img = decodePng(Buffer.from(out.images[0], "base64"));
      assert.deepEqual([img.width, img.height], [w, h], JSON.stringify(extra));
      const info = JSON.parse(out.info);
      assert.equal(info.denoising_strength, 0.7);
      assert.match(info.infotexts[0], /Denoising strength: 0\.7, Hires (upscale: 1\.5|resize: \d+x\d+)(, Hires steps: 4)?, Hires upscaler: /);
      assert.equal(info.extra_generation_params["Hires upscaler"], "hr_upscaler" in extra ? extra.hr_upscaler : "Latent");
    }
    // the same as the library's recipe with the same seed
    const r = await post({ ...base, hr_scale: 1.5, denoising_strength: 0.6 });
    const png = decodePng(Buffer.from((await r.json() as { images: string[] }).images[0], "base64"));
    const lib = await generateHires(pipe, { prompt: "a red cube", numInferenceSteps: 3, width: 32, height: 48, seeds: [5] }, { scale: 1.5, strength: 0.6 });
    assert.deepEqual(png.data, toRgb8(lib.images).data);

    // one progress over both passes and the iterations
    const reports: [number, number][] = [];
    const spec = { prompt: "x", steps: 3, guidanceScale: 5, seed: 5, perImageSeeds: true, batchSize: 1, iterations: 2, width: 32, height: 48, hires: { upscaler: "Latent", strength: 0.7, scale: 1.5 } };
    const job = await runJob(pipe, spec, { onStep: (r) => reports.push([r.step, r.totalSteps]) });
    assert.deepEqual([job.width, job.height, job.images.length], [48, 72, 2]);
    assert.deepEqual(reports, Array.from({ length: 10 }, (_, i) => [i + 1, 10]));

    const bad = await post({ ...base, hr_upscaler: "4x-Nope" });
    assert.equal(bad.status, 400);
    const e = (await bad.json() as { error: { message: string; param: string } }).error;
    assert.equal(e.param, "hr_upscaler");
    assert.match(e.message, /valid: Latent, Latent \(antialiased\), .*Latent \(nearest-exact\), None, Lanczos, Nearest/);
  } finally {
    await server.close();
    await pipe.release();
  }
});

test("ssd1b generate --hires-scale: the target size, A1111's infotext, a bad --hires-upscaler a usage error", { skip: NO_FIXTURES }, () => {
  const cli = join(PROJECT_ROOT, "dist/src/cli/main.js"), out = join(tmp, "cli.png");
  const args = ["generate", "--model", tinyModelIn(tmp), "--prompt", "a cube", "--steps", "3", "--width", "32", "--height", "48", "--seed", "3"];
  const r = spawnSync(process.execPath, [cli, ...args, "--hires-scale", "1.5", "--hires-steps", "4", "--hires-upscaler", "Nearest", "--output", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const png = readFileSync(out);
  const img = decodePng(png);
  assert.deepEqual([img.width, img.height], [48, 72]);
  assert.match(png.toString("latin1"), /Size: 32x48, Model: tiny-ssd, Denoising strength: 0\.7, Hires upscale: 1\.5, Hires steps: 4, Hires upscaler: Nearest/);
  const bad = spawnSync(process.execPath, [cli, ...args, "--hires-upscaler", "Latent (antialiased)"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /not implemented/);
});

test("A1111 enable_hr with an --upscaler-dir ESRGAN model equals the recipe with esrganPixelUpscale", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = join(tmp, "upscalers");
  mkdirSync(dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(fixture("esrgan", "cases.json"), "utf8")).cases.b.manifest as Record<string, number[]>;
  const file = join(dir, "tiny-x2.safetensors");
  saveTensors(file, Object.fromEntries(Object.entries(manifest).map(([k, s]) => [k, { dtype: "F32" as const, shape: s, data: synthTensor(k, s) }])));
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const files = new FileStore();
  const server = await startServer({ queue: new LocalQueue(pipe, 2, files), files, upscalers: new UpscalerLibrary(dir), host: "127.0.0.1", port: 0 });
  try {
    const r = await fetch(server.url + "/sdapi/v1/txt2img", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "a red cube", steps: 3, width: 32, height: 32, seed: 9, enable_hr: true, hr_scale: 1.5, hr_upscaler: "tiny-x2" }),
    });
    assert.equal(r.status, 200);
    const out = await r.json() as { images: string[]; info: string };
    const png = decodePng(Buffer.from(out.images[0], "base64"));
    assert.deepEqual([png.width, png.height], [48, 48]);
    assert.match(JSON.parse(out.info).infotexts[0], /Hires upscaler: tiny-x2/);
    const esrgan = await Upscaler.fromFile(file);
    const lib = await generateHires(pipe, { prompt: "a red cube", numInferenceSteps: 3, width: 32, height: 32, seeds: [9] }, { scale: 1.5, upscaler: esrganPixelUpscale(esrgan) });
    await esrgan.release();
    assert.deepEqual(png.data, toRgb8(lib.images).data);
  } finally {
    await server.close();
    await pipe.release();
  }
});
