/**
 * ESRGAN-family upscalers (basicsr RRDBNet) against the esrgan fixture (torch 1.13, float32): cases a
 * (x4), b (x2, pixel_unshuffle 2) and c (RealESRGAN_x4plus sizes) with synth weights of the basicsr
 * names, through the library and `ssd1b upscale`; the old ESRGAN layout file; tiled vs untiled; other
 * scales (A1111's passes + Lanczos); and the refusals (not an RRDBNet, missing tensors, images too large).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, diff, fixture, openFixture } from "./helpers/fixtures.js";
import { PNG_SIGNATURE, pngChunk } from "./helpers/png-chunks.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { TensorStore, readHeader, saveTensors } from "../src/safetensors/index.js";
import { Upscaler } from "../src/pipelines/upscaler.js";
import { EsrganModelError, canonicalTensors, inferRrdbNetConfig, rrdbNetParameters, type RrdbNetConfig } from "../src/models/esrgan/index.js";
import { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { ImageFormatError, toRgb8 } from "../src/image/image.js";
import { resizePlanes } from "../src/image/resize.js";
import type { TensorEntry } from "../src/safetensors/read.js";
import { startServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import type { JobQueue } from "../src/server/queue.js";
import { UpscalerLibrary } from "../src/server/upscaler-library.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const TOL = 1e-5; // the fixture README's rel L2 on out.CASE
const tmp = mkdtempSync(join(tmpdir(), "esrgan-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Case { config: RrdbNetConfig & Record<string, number>; input_shape: number[]; output_shape?: number[]; manifest?: Record<string, number[]> }
const cases = (): Record<string, Case> => JSON.parse(readFileSync(fixture("esrgan", "cases.json"), "utf8")).cases;
const manifestOf = (name: string): Record<string, number[]> =>
  name === "c" ? JSON.parse(readFileSync(fixture("esrgan", "manifest-x4plus.json"), "utf8")) : cases()[name].manifest!;
const fmt = (d: { maxAbs: number; relL2: number }) => `relL2 ${d.relL2.toExponential(2)}, max|d| ${d.maxAbs.toExponential(2)}`;

/** A new-layout (basicsr) file: every manifest key with its synth values. */
const files = new Map<string, string>();
function synthFile(name: string): string {
  let f = files.get(name);
  if (f) return f;
  f = join(tmp, `case-${name}.safetensors`);
  saveTensors(f, Object.fromEntries(Object.entries(manifestOf(name)).map(([k, s]) => [k, { dtype: "F32" as const, shape: s, data: synthTensor(k, s) }])));
  files.set(name, f);
  return f;
}

/** The fixture's input formula for any size: R = x/(W-1), G = y/(H-1), B = ((x+y) mod 5)/4. */
function ramp(h: number, w: number): Float32Array {
  const x = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) for (let i = 0; i < w; i++) {
    x[y * w + i] = i / (w - 1); x[h * w + y * w + i] = y / (h - 1); x[2 * h * w + y * w + i] = ((i + y) % 5) / 4;
  }
  return x;
}

const toRgbImage = (planes: Float32Array, h: number, w: number): RgbImage => {
  const nhwc = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < h * w; p++) nhwc[p * 3 + c] = Math.min(1, Math.max(0, planes[c * h * w + p]));
  return toRgb8({ data: nhwc, shape: [1, h, w, 3] });
};
const maxLevel = (a: RgbImage, b: RgbImage) => {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
};
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, "upscale", ...args], { encoding: "utf8" });

test("esrgan config: inferred from the tensors of cases a, b, c (702 keys of RealESRGAN_x4plus)", { skip: NO_FIXTURES }, () => {
  for (const [name, c] of Object.entries(cases())) {
    const manifest = manifestOf(name);
    const entries = new Map<string, TensorEntry>(Object.entries(manifest).map(([k, s]) => [k, { name: k, dtype: "F32", shape: s, file: "", offset: 0, byteLength: 0 }]));
    const cfg = inferRrdbNetConfig(entries, name);
    const { num_in_ch, num_out_ch, num_feat, num_block, num_grow_ch, scale } = c.config as unknown as Record<string, number>;
    assert.deepEqual(cfg, { numInCh: num_in_ch, numOutCh: num_out_ch, numFeat: num_feat, numBlock: num_block, numGrowCh: num_grow_ch, scale });
    // what the model asks for is exactly the manifest
    const sorted = (m: Iterable<[string, number[]]>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
    assert.deepEqual(sorted(rrdbNetParameters(cfg)), sorted(Object.entries(manifest)));
  }
  assert.equal(Object.keys(manifestOf("c")).length, 702);
});

test("pixel_unshuffle: torch's channel order (act.b.unshuffle, exact)", { skip: NO_FIXTURES }, async () => {
  const io = openFixture("esrgan", "io.safetensors");
  const g = new Graph();
  const x = g.input("x", [1, 3, 16, 20]);
  g.output("y", F.pixelUnshuffle(x, 2));
  const m = await CompiledGraph.create(g, "unshuffle");
  const y = (await m.run({ x: io.float32("in.b") })).y;
  await m.release();
  assert.deepEqual(io.get("act.b.unshuffle").shape, [1, 12, 8, 10]);
  assert.equal(diff(y, io.float32("act.b.unshuffle")).maxAbs, 0);
});

for (const name of ["a", "b", "c"]) {
  test(`esrgan case ${name}: library output within rel L2 ${TOL} of torch`, { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
    const c = cases()[name];
    const io = openFixture("esrgan", "io.safetensors");
    const up = await Upscaler.fromFile(synthFile(name));
    try {
      assert.equal(up.layout, "basicsr");
      assert.equal(up.scale, c.config.scale);
      const y = await up.forward({ data: io.float32(`in.${name}`), shape: c.input_shape }, { tile: 0 });
      assert.deepEqual(y.shape, io.get(`out.${name}`).shape);
      const d = diff(y.data, io.float32(`out.${name}`));
      assert.ok(d.relL2 <= TOL, `case ${name}: ${fmt(d)}`);
      console.log(`esrgan case ${name} (library): ${fmt(d)}`);
    } finally {
      await up.release();
    }
  });
}

test("esrgan old layout: model.N names map onto basicsr names as key-map-a.json says; same output as the new layout", { skip: NO_FIXTURES }, async () => {
  const oldFile = fixture("esrgan", "old-layout-a.safetensors");
  const pairs: [string, string][] = JSON.parse(readFileSync(fixture("esrgan", "key-map-a.json"), "utf8"));
  const header = readHeader(oldFile).tensors;
  const canon = canonicalTensors(header);
  assert.equal(canon.layout, "esrgan-old");
  assert.deepEqual(canon.unmapped, []);
  assert.equal(canon.tensors.size, 72);
  // the same entry (file, byte range): looked up, never copied
  for (const [newKey, oldKey] of pairs) assert.equal(canon.tensors.get(newKey), header.get(oldKey), `${newKey} <- ${oldKey}`);
  const io = openFixture("esrgan", "io.safetensors");
  const x = { data: io.float32("in.a"), shape: [1, 3, 12, 16] };
  const oldUp = await Upscaler.fromFile(oldFile), newUp = await Upscaler.fromFile(synthFile("a"));
  try {
    assert.deepEqual(oldUp.config, newUp.config);
    const [yo, yn] = [await oldUp.forward(x), await newUp.forward(x)];
    assert.equal(diff(yo.data, yn.data).maxAbs, 0);
    const d = diff(yo.data, io.float32("out.a"));
    assert.ok(d.relL2 <= TOL, fmt(d));
    console.log(`esrgan old layout a: ${fmt(d)}`);
  } finally {
    await oldUp.release(); await newUp.release();
  }
});

test("esrgan xinntao layout (RRDB_trunk, trunk_conv, upconv1, HRconv) and a params_ema wrapper load as the same network", { skip: NO_FIXTURES }, async () => {
  const rename = (k: string) => k.replace(/^body\.(\d+)\.rdb(\d)/, "RRDB_trunk.$1.RDB$2").replace(/^conv_body\./, "trunk_conv.")
    .replace(/^conv_up1\./, "upconv1.").replace(/^conv_up2\./, "upconv2.").replace(/^conv_hr\./, "HRconv.");
  const f = join(tmp, "trunk-a.safetensors");
  saveTensors(f, Object.fromEntries(Object.entries(manifestOf("a")).map(([k, s]) => [rename(k), { dtype: "F32" as const, shape: s, data: synthTensor(k, s) }])));
  const up = await Upscaler.fromFile(f);
  try {
    assert.equal(up.layout, "esrgan-trunk");
    const io = openFixture("esrgan", "io.safetensors");
    const d = diff((await up.forward({ data: io.float32("in.a"), shape: [1, 3, 12, 16] })).data, io.float32("out.a"));
    assert.ok(d.relL2 <= TOL, fmt(d));
    // Real-ESRGAN's params_ema wrapper (the .pth's state-dict key) kept by a conversion: unwrapped
    const wrapped = new Map([...readHeader(synthFile("a")).tensors].map(([k, e]) => [`params_ema.${k}`, e]));
    const w = Upscaler.fromTensors(wrapped, "wrapped");
    assert.equal(diff((await w.forward({ data: io.float32("in.a"), shape: [1, 3, 12, 16] })).data, io.float32("out.a")).relL2 <= TOL, true);
    await w.release();
  } finally {
    await up.release();
  }
});

test("ssd1b upscale --tensors: cases a and b, and the old-layout file, within tolerance", { skip: NO_FIXTURES, timeout: 300_000 }, () => {
  const io = openFixture("esrgan", "io.safetensors");
  for (const [name, model] of [["a", synthFile("a")], ["b", synthFile("b")], ["a", fixture("esrgan", "old-layout-a.safetensors")]] as const) {
    const inputs = join(tmp, `cli-in-${name}.safetensors`), output = join(tmp, `cli-out-${name}.safetensors`);
    saveTensors(inputs, { [`in.${name}`]: { dtype: "F32", shape: io.get(`in.${name}`).shape, data: io.float32(`in.${name}`) } });
    const r = cli(["--model", model, "--tensors", inputs, "--output", output]);
    assert.equal(r.status, 0, r.stderr);
    const out = TensorStore.open(output);
    const d = diff(out.float32(`out.${name}`), io.float32(`out.${name}`));
    assert.ok(d.relL2 <= TOL, `cli ${name}: ${fmt(d)}`);
    console.log(`esrgan cli --tensors ${name} (${model.endsWith("old-layout-a.safetensors") ? "old layout" : "new layout"}): ${fmt(d)}`);
  }
});

test("ssd1b upscale --image: PNGs of cases a and b give the fixture outputs within 1 level", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const io = openFixture("esrgan", "io.safetensors");
  for (const name of ["a", "b"]) {
    const [, , h, w] = cases()[name].input_shape;
    const input = toRgbImage(io.float32(`in.${name}`), h, w);
    const png = join(tmp, `in-${name}.png`), out = join(tmp, `out-${name}.png`);
    writeFileSync(png, encodePng(input));
    const r = cli(["--model", synthFile(name), "--image", png, "--output", out]);
    assert.equal(r.status, 0, r.stderr);
    const got = decodePng(readFileSync(out));
    const s = cases()[name].config.scale;
    assert.deepEqual([got.width, got.height], [w * s, h * s]);
    // the input is rounded to 8 bits here, the reference ran on floats: ±1 level
    const ref = toRgbImage(io.float32(`out.${name}`), h * s, w * s);
    const levels = maxLevel(got, ref);
    assert.ok(levels <= 1, `case ${name}: ${levels} levels`);
    assert.match(got.text.parameters, /^Postprocess upscale by: \d+, Postprocess upscaler: case-/);
    // the library on the same PNG gives the same bytes
    const up = await Upscaler.fromFile(synthFile(name));
    assert.equal(maxLevel(await up.upscale(decodePng(readFileSync(png))), got), 0);
    await up.release();
    console.log(`esrgan cli --image ${name}: max ${levels} level(s) from the fixture`);
  }
});

test("esrgan tiling: tile 8 with overlap = untiled within 1e-5 three pixels from tile borders, within 1 level at them", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const H = 28, W = 36; // 4 x 5 tiles of 8 (the last ones shorter)
  const x = { data: ramp(H, W), shape: [1, 3, H, W] };
  for (const [name, overlap] of [["a", 4], ["a", 8], ["b", 8]] as const) {
    const up = await Upscaler.fromFile(synthFile(name));
    try {
      const s = up.scale, OH = H * s, OW = W * s;
      const full = await up.forward(x, { tile: 0 });
      const tiled = await up.forward(x, { tile: 8, tileOverlap: overlap });
      let near = 0, far = 0;
      for (let c = 0; c < 3; c++) for (let r = 0; r < OH; r++) for (let q = 0; q < OW; q++) {
        // distance in input pixels to the nearest border between two tile cores
        const dy = Math.min(...[8, 16, 24].map((b) => Math.abs((r + 0.5) / s - b)));
        const dx = Math.min(...[8, 16, 24, 32].map((b) => Math.abs((q + 0.5) / s - b)));
        const e = Math.abs(tiled.data[(c * OH + r) * OW + q] - full.data[(c * OH + r) * OW + q]);
        if (Math.min(dx, dy) >= 3) far = Math.max(far, e); else near = Math.max(near, e);
      }
      assert.ok(far <= 1e-5, `${name} overlap ${overlap}: ${far} away from borders`);
      assert.ok(near <= 1 / 255, `${name} overlap ${overlap}: ${near} at borders`);
      assert.ok(maxLevel(toRgbImage(tiled.data, OH, OW), toRgbImage(full.data, OH, OW)) <= 1);
      console.log(`esrgan tiling ${name} tile 8 overlap ${overlap}: max|d| ${far.toExponential(1)} away from borders, ${near.toExponential(1)} at them`);
    } finally {
      await up.release();
    }
  }
  // a size that is not a multiple of the unshuffle factor: reflect-padded, cropped back, tiled or not
  const up = await Upscaler.fromFile(synthFile("b"));
  const odd = { data: ramp(13, 17), shape: [1, 3, 13, 17] };
  const [a, b] = [await up.forward(odd, { tile: 0 }), await up.forward(odd, { tile: 6, tileOverlap: 8 })];
  assert.deepEqual(a.shape, [1, 3, 26, 34]);
  assert.ok(diff(b.data, a.data).maxAbs <= 1 / 255);
  await up.release();
});

test("esrgan scales: other than the model's as A1111 does (passes, then Lanczos); the Lanczos resize", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const up = await Upscaler.fromFile(synthFile("a"));
  try {
    const img: RgbImage = toRgbImage(ramp(10, 12), 10, 12);
    const x4 = await up.upscale(img, { tile: 0 });
    assert.deepEqual([x4.width, x4.height], [48, 40]);
    // 2: one pass to 4x, then Lanczos down to 2x
    const planes4 = await up.upscalePlanes({ data: ramp(10, 12).map((v) => Math.round(v * 255) / 255), shape: [1, 3, 10, 12] }, { tile: 0 });
    const x2 = await up.upscale(img, { scale: 2, tile: 0 });
    assert.deepEqual([x2.width, x2.height], [24, 20]);
    const down = resizePlanes(planes4.data, 3, 40, 48, 20, 24, "lanczos").map((v) => Math.min(1, Math.max(0, v)));
    assert.ok(maxLevel(x2, toRgbImage(down, 20, 24)) <= 1);
    // 8: two passes (4x, 16x), then down to 8x; 3.5 -> floor(12 · 3.5) = 42
    assert.deepEqual([(await up.upscale(img, { scale: 8, tile: 0 })).width, (await up.upscale(img, { scale: 3.5, tile: 0 })).width], [96, 42]);
  } finally {
    await up.release();
  }
  // Lanczos keeps constants and is the identity at the same size
  const flat = new Float32Array(2 * 5 * 7).fill(0.25);
  for (const v of resizePlanes(flat, 2, 5, 7, 11, 3, "lanczos")) assert.ok(Math.abs(v - 0.25) < 1e-6);
  const r = Float32Array.from({ length: 12 }, (_, i) => i / 11);
  assert.deepEqual(resizePlanes(r, 1, 3, 4, 3, 4, "lanczos"), r);
  // nearest as PIL: source floor((o + 0.5) · in / out)
  assert.deepEqual([...resizePlanes(Float32Array.of(1, 2, 3), 1, 1, 3, 1, 6, "nearest")], [1, 1, 2, 2, 3, 3]);
});

test("esrgan refusals: not an RRDBNet, missing and extra tensors, images too large", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  // a TAESD-like file: no RRDBNet keys at all
  const notEsrgan = join(tmp, "not-esrgan.safetensors");
  saveTensors(notEsrgan, { "decoder.layers.0.weight": { dtype: "F32", shape: [4, 4, 3, 3], data: new Float32Array(144) } });
  await assert.rejects(Upscaler.fromFile(notEsrgan), (e: Error) => e instanceof EsrganModelError
    && /not an RRDBNet/.test(e.message) && /"conv_first\.weight"/.test(e.message) && /"conv_up1\.weight"/.test(e.message) && /decoder\.layers\.0\.weight/.test(e.message));
  let r = cli(["--model", notEsrgan, "--image", "x.png", "--output", join(tmp, "x.png")]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not an RRDBNet .*missing "conv_first\.weight"/);
  // an old-layout file missing one conv: named as the file names it
  const header = readHeader(fixture("esrgan", "old-layout-a.safetensors")).tensors;
  const partial = new Map(header);
  partial.delete("model.1.sub.1.RDB2.conv3.0.weight");
  assert.throws(() => Upscaler.fromTensors(partial, "old-a"), /1 tensor\(s\) of an RRDBNet x4 \(num_feat 16, num_block 2, num_grow_ch 8\) are missing: "model\.1\.sub\.1\.RDB2\.conv3\.0\.weight"/);
  const extra = new Map(header);
  extra.set("model.1.sub.0.RDB1.conv1x1.weight", header.get("model.0.weight")!);
  assert.throws(() => Upscaler.fromTensors(extra, "esrgan-plus"), /not part of an RRDBNet.*conv1x1/);
  // an old-arch x8 (three upsampling stages: model.0 .. model.13) is another network
  const x8 = new Map(header);
  x8.set("model.13.weight", header.get("model.10.weight")!);
  assert.throws(() => Upscaler.fromTensors(x8, "x8"), /last entry is model\.13 \(3 upsampling stage\(s\), x8\); only the x4 arch/);
  // images: the input over src/image's limit, the output over the upscaled limit (before any work)
  const up = await Upscaler.fromFile(synthFile("a"));
  const img: RgbImage = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3) };
  await assert.rejects(up.upscale(img, { maxPixels: 1000 }), (e: Error) => e instanceof ImageFormatError && /40x30 .*over the limit of 1000 pixels/.test(e.message));
  await assert.rejects(up.upscale(img, { scale: 300 }), (e: Error) => e instanceof ImageFormatError && /the upscaled image is 12000x9000/.test(e.message));
  await up.release();
  // the CLI refuses a PNG declaring 5000 x 5000 from its header
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(5000, 0); ihdr.writeUInt32BE(5000, 4); ihdr.set([8, 2, 0, 0, 0], 8);
  const bomb = join(tmp, "bomb.png");
  writeFileSync(bomb, Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", ihdr), pngChunk("IDAT", new Uint8Array(8)), pngChunk("IEND", new Uint8Array(0))]));
  r = cli(["--model", synthFile("a"), "--image", bomb, "--output", join(tmp, "bomb-out.png")]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /5000x5000 .*over the limit/);
  const serve = spawnSync(process.execPath, [CLI, "serve", "--queue", "redis://127.0.0.1:1", "--upscaler-dir", join(tmp, "nowhere")], { encoding: "utf8", timeout: 30000 });
  assert.equal(serve.status, 2, serve.stderr);
  assert.match(serve.stderr, /--upscaler-dir .*nowhere: no such folder/);
  r = cli(["--model", synthFile("a"), "--image", bomb, "--output", join(tmp, "o.png"), "--scale", "0"]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--scale must be a positive number/);
});

test("server: /sdapi/v1/upscalers lists --upscaler-dir; /sdapi/v1/extra-single-image and extra-batch-images upscale as the library", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = join(tmp, "upscalers");
  mkdirSync(join(dir, "sub"), { recursive: true });
  copyFileSync(synthFile("a"), join(dir, "case-a.safetensors"));
  copyFileSync(synthFile("b"), join(dir, "sub", "case-b.safetensors"));
  saveTensors(join(dir, "not-an-upscaler.safetensors"), { "x.weight": { dtype: "F32", shape: [2], data: new Float32Array(2) } });
  const upscalers = new UpscalerLibrary(dir);
  // these routes never touch the generation queue: a stand-in that only closes
  const queue = { files: new FileStore(), close: async () => {}, model: () => ({ name: "none" }) } as unknown as JobQueue;
  const server = await startServer({ queue, upscalers, host: "127.0.0.1", port: 0 });
  const post = (body: unknown) => fetch(`${server.url}/sdapi/v1/extra-single-image`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  try {
    const list = await (await fetch(`${server.url}/sdapi/v1/upscalers`)).json();
    assert.deepEqual(list, [
      { name: "None", model_name: null, model_path: null, model_url: null, scale: 4 },
      { name: "Lanczos", model_name: null, model_path: null, model_url: null, scale: 4 },
      { name: "Nearest", model_name: null, model_path: null, model_url: null, scale: 4 },
      { name: "case-a", model_name: "case-a", model_path: realpathSync(join(dir, "case-a.safetensors")), model_url: null, scale: 4 },
      { name: "case-b", model_name: "case-b", model_path: realpathSync(join(dir, "sub", "case-b.safetensors")), model_url: null, scale: 2 },
    ]);
    const io = openFixture("esrgan", "io.safetensors");
    const input = toRgbImage(io.float32("in.a"), 12, 16);
    const b64 = encodePng(input).toString("base64");
    let r = await post({ image: b64, upscaler_1: "case-a", upscaling_resize: 4 });
    const body = await r.json() as { html_info: string; image: string };
    assert.equal(r.status, 200, JSON.stringify(body));
    assert.equal(body.html_info, "<p>Postprocess upscale by: 4, Postprocess upscaler: case-a</p>");
    const got = decodePng(Buffer.from(body.image, "base64"));
    const up = await Upscaler.fromFile(synthFile("a"));
    assert.equal(maxLevel(got, await up.upscale(input)), 0);
    await up.release();
    assert.ok(maxLevel(got, toRgbImage(io.float32("out.a"), 48, 64)) <= 1);
    // model-free: Lanczos 2x, Nearest 3x, None unchanged; the x2 model at 2 (default upscaling_resize)
    for (const [name, scale, w] of [["Lanczos", 2, 32], ["Nearest", 3, 48], ["None", 2, 16], ["case-b", undefined, 32]] as const) {
      r = await post({ image: b64, upscaler_1: name, ...(scale ? { upscaling_resize: scale } : {}) });
      assert.equal(r.status, 200, name);
      assert.equal(decodePng(Buffer.from((await r.json() as { image: string }).image, "base64")).width, w, name);
    }
    r = await post({ image: b64, upscaler_1: "nope" });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /unknown upscaler "nope" \(available: None, Lanczos, Nearest, case-a, case-b\)/);
    r = await post({ image: b64, upscaler_1: "../case-a" });
    assert.equal(r.status, 400);
    r = await post({ image: b64, upscaler_1: "case-a", gfpgan_visibility: 0.5 });
    assert.equal(r.status, 400);
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(5000, 0); ihdr.writeUInt32BE(5000, 4); ihdr.set([8, 2, 0, 0, 0], 8);
    const bomb = Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", ihdr), pngChunk("IDAT", new Uint8Array(8)), pngChunk("IEND", new Uint8Array(0))]);
    r = await post({ image: bomb.toString("base64"), upscaler_1: "case-a" });
    assert.equal(r.status, 400);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, /5000x5000 .*over the limit/);
    // extra-batch-images: each image as extra-single-image makes it; a bad entry is a 400 before any upscale
    const batch = (body: unknown) => fetch(`${server.url}/sdapi/v1/extra-batch-images`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    r = await batch({ imageList: [{ data: b64, name: "a.png" }, { data: b64, name: "b.png" }], upscaler_1: "case-a", upscaling_resize: 4 });
    const many = await r.json() as { html_info: string; images: string[] };
    assert.equal(r.status, 200, JSON.stringify(many));
    assert.equal(many.images.length, 2);
    assert.equal(many.html_info, "<p>Postprocess upscale by: 4, Postprocess upscaler: case-a</p>");
    for (const img of many.images) assert.equal(maxLevel(decodePng(Buffer.from(img, "base64")), got), 0);
    for (const body of [{ imageList: [] }, { imageList: [{ data: b64 }, { name: "x" }] }, { imageList: Array(17).fill({ data: b64 }) }, { imageList: [{ data: bomb.toString("base64") }] }]) {
      r = await batch({ ...body, upscaler_1: "case-a" });
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    }
  } finally {
    await server.close();
    await upscalers.release();
  }
});

test("esrgan x1 (pixel_unshuffle 4): config from conv_first's 48 channels, odd sizes padded and cropped, tiled ~ untiled", { timeout: 300_000 }, async () => {
  const cfg: RrdbNetConfig = { numInCh: 3, numOutCh: 3, numFeat: 8, numBlock: 1, numGrowCh: 4, scale: 1 };
  const params = rrdbNetParameters(cfg);
  assert.deepEqual(params.get("conv_first.weight"), [8, 48, 3, 3]);
  const f = join(tmp, "x1.safetensors");
  saveTensors(f, Object.fromEntries([...params].map(([k, s]) => [k, { dtype: "F32" as const, shape: s, data: synthTensor(k, s) }])));
  const up = await Upscaler.fromFile(f);
  try {
    assert.deepEqual(up.config, cfg);
    const x = { data: ramp(18, 23), shape: [1, 3, 18, 23] };
    const [a, b] = [await up.forward(x, { tile: 0 }), await up.forward(x, { tile: 8, tileOverlap: 16 })];
    assert.deepEqual(a.shape, [1, 3, 18, 23]);
    assert.ok(diff(b.data, a.data).maxAbs <= 1 / 255);
    // A1111 runs an x1 model once at scale 1
    const img = toRgbImage(x.data, 18, 23);
    assert.deepEqual([(await up.upscale(img, { scale: 1 })).width, (await up.upscale(img, { scale: 2 })).width], [23, 46]);
  } finally {
    await up.release();
  }
});
