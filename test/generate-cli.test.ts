import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture, openFixture, levelDiff } from "./helpers/fixtures.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { hubCacheDir, resolveModelFolder } from "../src/loaders/model-folder.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

function ssd1b(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), "generate-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

let model: string | undefined;
/** The tiny-ssd pipeline folder with synth weights written by the CLI (made once). */
function tinyModel(): string {
  if (model) return model;
  model = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), model, { recursive: true });
  const r = ssd1b(["synth", model]);
  assert.equal(r.code, 0, r.stderr);
  return model;
}


test("cli generate: the basic case as an 8-bit PNG equals diffusers' image (within 1 level), with A1111 parameters", { skip: NO_FIXTURES }, (t) => {
  const dir = tinyModel();
  const out = join(tmp, "basic", "astronaut.png");
  const r = ssd1b(["generate", "--model", dir, "--prompt", "An astronaut riding a green horse", "--negative-prompt", "ugly, blurry, poor quality",
    "--steps", "4", "--guidance", "5", "--seed", "0", "--scheduler", "euler", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /seed: 0\n/);
  assert.match(r.stderr, /step 4\/4 \|#+\| [\d.]+ (it\/s|s\/it)/, "progress with step rate");
  const png = readFileSync(out);
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  const d = levelDiff(png, ref);
  t.diagnostic(`max difference ${d.toFixed(3)} levels`);
  assert.ok(d <= 1, `PNG vs reference: ${d} levels`);
  assert.equal(decodePng(png).text.parameters,
    "An astronaut riding a green horse\nNegative prompt: ugly, blurry, poor quality\nSteps: 4, Sampler: Euler, CFG scale: 5, Seed: 0, Size: 32x32, Model: tiny-ssd");
});

test("cli generate: several images are numbered; a random seed is reported and recorded", { skip: NO_FIXTURES }, () => {
  const dir = tinyModel();
  const outDir = join(tmp, "many");
  const r = ssd1b(["generate", "--model", dir, "--prompt", "a cat", "--steps", "2", "--num-images", "2", "--width", "16", "--height", "24", "--output", join(outDir, "cat.png")]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(outDir).sort(), ["cat-0.png", "cat-1.png"]);
  const seed = r.stderr.match(/seed: (\d+)/)?.[1];
  assert.ok(seed, "seed reported");
  const img = decodePng(readFileSync(join(outDir, "cat-1.png")));
  assert.equal(img.width, 16);
  assert.equal(img.height, 24);
  assert.match(img.text.parameters, new RegExp(`^a cat\\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: ${seed}, Size: 16x24, Model: tiny-ssd$`));
});

test("cli img2img: equals the library pipeline on the same PNG (within 1 level)", { skip: NO_FIXTURES }, async () => {
  const dir = tinyModel();
  const fx = openFixture("pipeline", "tiny-ssd", "cases.safetensors");
  // the fixture's init image [1,3,H,W] as an 8-bit PNG
  const init = fx.float32("img2img.init_image");
  const [, , h, w] = fx.get("img2img.init_image").shape;
  const hwc = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < h * w; p++) hwc[p * 3 + c] = init[c * h * w + p];
  const initPng = join(tmp, "init.png");
  const rgb = toRgb8({ data: hwc, shape: [1, h, w, 3] });
  writeFileSync(initPng, encodePng(rgb));
  const out = join(tmp, "i2i", "out.png");
  const args = { prompt: "a watercolor landscape", negativePrompt: "ugly, blurry, poor quality", numInferenceSteps: 5, guidanceScale: 6, seed: 11, strength: 0.6 };
  const r = ssd1b(["img2img", "--model", dir, "--image", initPng, "--prompt", args.prompt, "--negative-prompt", args.negativePrompt,
    "--steps", "5", "--guidance", "6", "--seed", "11", "--strength", "0.6", "--scheduler", "Euler", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /step 3\/3/, "strength 0.6 of 5 steps runs 3");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    const lib = await pipe.img2img({ ...args, image: rgb, scheduler: "Euler" });
    assert.ok(levelDiff(readFileSync(out), lib.images.data) <= 1);
  } finally {
    await pipe.release();
  }
  assert.match(decodePng(readFileSync(out)).text.parameters, /Seed: 11, Size: 32x32, Model: tiny-ssd, Denoising strength: 0.6$/);
});

test("cli generate --clip-skip: the library's clipSkip, \"Clip skip: N + 2\" in the parameters", { skip: NO_FIXTURES }, async () => {
  const dir = tinyModel();
  const out = join(tmp, "clip-skip", "x.png");
  const r = ssd1b(["generate", "--model", dir, "--prompt", "a red cube", "--negative-prompt", "blurry", "--steps", "2", "--seed", "3", "--scheduler", "Euler", "--width", "32", "--height", "32", "--clip-skip", "2", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    const common = { prompt: "a red cube", negativePrompt: "blurry", numInferenceSteps: 2, seed: 3, scheduler: "Euler", width: 32, height: 32 };
    const lib = await pipe.generate({ ...common, clipSkip: 2 });
    assert.ok(levelDiff(readFileSync(out), lib.images.data) <= 1);
    assert.ok(levelDiff(readFileSync(out), (await pipe.generate(common)).images.data) > 1, "not the image without clip skip");
  } finally {
    await pipe.release();
  }
  assert.match(decodePng(readFileSync(out)).text.parameters, /Model: tiny-ssd, Clip skip: 4$/);
});

test("cli generate/img2img: bad input gives a clear error, a non-zero exit code and no file", { skip: NO_FIXTURES }, () => {
  const dir = tinyModel();
  const outDir = join(tmp, "bad");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, "x.png");
  const hfHome = join(tmp, "hf-home");
  writeFileSync(join(tmp, "photo.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46]));
  writeFileSync(join(tmp, "odd.png"), encodePng({ width: 12, height: 8, data: new Uint8Array(12 * 8 * 3) }));
  const gen = ["generate", "--model", dir, "--prompt", "a cat", "--steps", "2", "--output", out];
  const i2i = ["img2img", "--model", dir, "--prompt", "a cat", "--steps", "2", "--output", out, "--image", join(tmp, "init.png")];
  const cases: [string[], RegExp][] = [
    [[...gen, "--scheduler", "Frobnicator"], /unknown scheduler "Frobnicator"; known: .*"Euler a"/],
    [[...gen, "--width", "36"], /--width 36 is not a multiple of 8/],
    [[...gen, "--height", "0"], /--height must be at least 8/],
    [[...gen, "--steps", "0"], /--steps must be at least 1, got 0/],
    [[...gen, "--steps=-3"], /--steps must be at least 1, got -3/],
    [[...gen, "--steps", "2.5"], /--steps must be a whole number/],
    [[...gen, "--guidance", "lots"], /--guidance must be a number/],
    [["generate", "--model", dir, "--output", out], /--prompt is required/],
    [[...gen, "--variant", "fp8"], /--variant must be fp16 or fp32/],
    [[...gen, "--clip-skip=-1"], /--clip-skip must be at least 0, got -1/],
    // the layer count is the model's: checked when it is loaded, before any denoising
    [[...gen, "--clip-skip", "9"], /clipSkip must be an integer from 0 to 4 \(text_encoder has 5 layers\), got 9/],
    [[...gen, "--vae-precision", "half"], /--vae-precision must be fp16, fp32 or auto, got "half"/],
    [["generate", "--model", "someone/Missing-Model", "--prompt", "x", "--output", out],
      // offline (no network in tests): the repo id is looked up in the cache only, and the error says where and what to run
      new RegExp(`offline .*someone/Missing-Model@main is not in the cache at ${join(hfHome, "hub", "models--someone--Missing-Model")}\\. .*ssd1b download someone/Missing-Model`)],
    [["generate", "--model", join(tmp, "no-such-dir"), "--prompt", "x", "--output", out], /model folder not found: .*no-such-dir/],
    [[...i2i, "--strength", "0"], /--strength must be in \(0, 1\], got 0/],
    [[...i2i, "--strength", "1.5"], /--strength must be in \(0, 1\], got 1.5/],
    [[...i2i, "--strength", "0.2"], /strength 0.2 x 2 steps leaves no denoising step/],
    [[...i2i.slice(0, -2), "--image", join(tmp, "missing.png")], /cannot read image .*missing\.png: no such file/],
    [[...i2i.slice(0, -2), "--image", join(tmp, "photo.jpg")], /photo\.jpg: not a readable JPEG/],
    [[...i2i.slice(0, -2), "--image", CLI], /main\.js: not a PNG file/],
    [[...i2i.slice(0, -2), "--image", join(tmp, "odd.png")], /width 12 is not a multiple of 8/],
    [[...i2i.slice(0, -2)], /--image is required/],
  ];
  for (const [args, re] of cases) {
    const r = ssd1b(args, { HF_HOME: hfHome, HF_HUB_CACHE: "", HUGGINGFACE_HUB_CACHE: "", HF_HUB_OFFLINE: "1" });
    assert.notEqual(r.code, 0, `${args.join(" ")}: exit code`);
    assert.match(r.stderr, re, args.join(" "));
    assert.ok(!r.stderr.includes("    at "), "no stack trace");
    assert.deepEqual(readdirSync(outDir), [], `${args.join(" ")}: no file written`);
  }
});

test("model folder: Hugging Face cache snapshots by refs/main, and where it looked when missing", () => {
  const home = join(tmp, "hf");
  const env = { HF_HOME: home };
  assert.equal(hubCacheDir(env), join(home, "hub"));
  assert.equal(hubCacheDir({ HF_HUB_CACHE: "/x/hub", HF_HOME: home }), "/x/hub");
  const repo = join(home, "hub", "models--segmind--SSD-1B");
  const snap = join(repo, "snapshots", "abc123");
  mkdirSync(snap, { recursive: true });
  mkdirSync(join(repo, "snapshots", "old999"), { recursive: true });
  assert.throws(() => resolveModelFolder("segmind/SSD-1B", env), /no snapshot for revision "main"/);
  mkdirSync(join(repo, "refs"), { recursive: true });
  writeFileSync(join(repo, "refs", "main"), "abc123\n");
  assert.throws(() => resolveModelFolder("segmind/SSD-1B", env), /abc123 \(incomplete: no model_index.json\)/);
  writeFileSync(join(snap, "model_index.json"), "{}");
  assert.deepEqual(resolveModelFolder("segmind/SSD-1B", env), { dir: snap, name: "SSD-1B", repoId: "segmind/SSD-1B" });
  assert.throws(() => resolveModelFolder("segmind/SSD-1B@v2", env), /no snapshot for revision "v2"/);
  assert.throws(() => resolveModelFolder("segmind/Vega", env), (e: Error) =>
    e.message.includes(join(home, "hub", "models--segmind--Vega")) && e.message.includes("npx ssd1b download segmind/Vega"));
  // a folder path wins, and must look like a diffusers model
  assert.equal(resolveModelFolder(snap, env).dir, snap);
  assert.throws(() => resolveModelFolder(repo, env), /is not a diffusers model folder/);
});
