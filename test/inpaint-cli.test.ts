import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAVE_FIXTURES, NO_FIXTURES, fixture, openFixture, levelDiff } from "./helpers/fixtures.js";
import { runCli } from "./helpers/cli.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { parsePythonJson } from "../src/schedulers/index.js";

const ssd1b = runCli;

const tmp = mkdtempSync(join(tmpdir(), "inpaint-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const tinyModel = () => tinyModelIn(tmp);

/** A stored [1, C, H, W] uint8/255 tensor as a PNG (grey masks replicated to RGB). */
function tensorPng(data: Float32Array, shape: readonly number[], file: string): string {
  const [, c, h, w] = shape;
  const img: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
  for (let i = 0; i < w * h; i++) for (let ch = 0; ch < 3; ch++) img.data[3 * i + ch] = Math.round(data[(c === 1 ? 0 : ch) * w * h + i] * 255);
  writeFileSync(file, encodePng(img));
  return file;
}

const cases = HAVE_FIXTURES ? parsePythonJson(readFileSync(fixture("inpaint", "tiny-ssd", "cases.json"), "utf8")) as Record<string, any> : {};

/** The case's rect mask (before any blur) as a [1, 1, H, W] tensor. */
function rectMask(c: any): Float32Array {
  const m = c.mask_image, out = new Float32Array(c.height * c.width);
  for (let y = m.y0; y < m.y1; y++) for (let x = m.x0; x < m.x1; x++) out[y * c.width + x] = 1;
  return out;
}

for (const name of ["strength1_euler", "nonsquare_48x32", "blurred_mask"]) {
  test(`cli inpaint ${name}: PNG image and mask in, diffusers' image out (within 1 level)`, { skip: NO_FIXTURES }, (t) => {
    const c = cases[name];
    const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
    const image = tensorPng(ref.float32(`${name}.init_image`), ref.get(`${name}.init_image`).shape, join(tmp, `${name}-image.png`));
    // blurred_mask: the rect as the user has it, blurred by --mask-blur as diffusers' mask_processor.blur does
    const blur = c.mask_image.blurred_with ? ["--mask-blur", "4"] : [];
    const mask = tensorPng(blur.length ? rectMask(c) : ref.float32(`${name}.mask`), [1, 1, c.height, c.width], join(tmp, `${name}-mask.png`));
    const out = join(tmp, `${name}-out.png`);
    const r = ssd1b(["inpaint", "--model", tinyModel(), "--image", image, "--mask", mask, "--prompt", c.prompt, "--negative-prompt", c.negative_prompt,
      "--steps", String(c.num_inference_steps), "--guidance", String(c.guidance_scale), "--seed", String(c.seed), "--strength", String(c.strength), ...blur, "--output", out]);
    assert.equal(r.code, 0, r.stderr);
    const d = levelDiff(readFileSync(out), ref.float32(`${name}.images`));
    t.diagnostic(`max difference ${d.toFixed(3)} levels`);
    assert.ok(d <= 1, `${d} levels`);
    assert.match(decodePng(readFileSync(out)).text.parameters ?? "", new RegExp(`Denoising strength: ${c.strength}`));
  });
}

test("cli inpaint: a mask of another size, an all-black mask, a bad strength: clear errors, nothing written", { skip: NO_FIXTURES }, () => {
  const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
  const image = tensorPng(ref.float32("strength1_euler.init_image"), [1, 3, 32, 32], join(tmp, "e-image.png"));
  const small = tensorPng(new Float32Array(16 * 32).fill(1), [1, 1, 16, 32], join(tmp, "e-small.png"));
  const black = tensorPng(new Float32Array(32 * 32), [1, 1, 32, 32], join(tmp, "e-black.png"));
  const out = join(tmp, "e-out.png");
  const base = ["inpaint", "--model", tinyModel(), "--image", image, "--prompt", "x", "--steps", "2", "--output", out];
  let r = ssd1b([...base, "--mask", small]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is 32x16 but .* is 32x32; the mask must have the image's size/);
  r = ssd1b([...base, "--mask", black]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /all black: nothing to repaint/);
  r = ssd1b([...base, "--mask", image, "--strength", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--strength must be in \(0, 1\]/);
  writeFileSync(join(tmp, "not-an-image.png"), "hello");
  r = ssd1b([...base, "--mask", join(tmp, "not-an-image.png")]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /not-an-image\.png/);
  assert.equal(existsSync(out), false);
});

test("cli generate: --prompt repeated gives one image per prompt, as the library's list prompt; micro-conditioning flags equal the fixture", { skip: NO_FIXTURES }, async (t) => {
  const dir = tinyModel();
  const out = join(tmp, "two.png");
  let r = ssd1b(["generate", "--model", dir, "--prompt", "a cat", "--prompt", "a dog", "--negative-prompt", "blurry", "--steps", "2", "--seed", "3", "--width", "32", "--height", "32", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    const lib = await pipe.generate({ prompt: ["a cat", "a dog"], negativePrompt: "blurry", numInferenceSteps: 2, guidanceScale: 5, seed: 3, width: 32, height: 32 });
    for (const [i, file] of ["two-0.png", "two-1.png"].entries()) {
      const png = decodePng(readFileSync(join(tmp, file)));
      assert.deepEqual(Array.from(png.data), Array.from(toRgb8(lib.images, i).data), `${file} equals image ${i}`);
      assert.match(png.text.parameters ?? "", new RegExp(`^${["a cat", "a dog"][i]}\nNegative prompt: blurry\n`));
    }
  } finally {
    await pipe.release();
  }
  const mc = join(tmp, "micro.png");
  r = ssd1b(["generate", "--model", dir, "--prompt", "a castle", "--negative-prompt", "ugly, blurry, poor quality", "--steps", "3", "--seed", "5",
    "--scheduler", "euler", "--width", "32", "--height", "32", "--original-size", "64,96", "--crops-coords-top-left", "4,8", "--target-size", "32,32", "--output", mc]);
  assert.equal(r.code, 0, r.stderr);
  const d = levelDiff(readFileSync(mc), openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("micro_cond.images"));
  t.diagnostic(`micro_cond: max difference ${d.toFixed(3)} levels`);
  assert.ok(d <= 1, `${d} levels`);
  r = ssd1b(["generate", "--model", dir, "--prompt", "x", "--original-size", "64"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--original-size takes two whole numbers/);
});
