import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, fixture, openFixture, levelDiff } from "./helpers/fixtures.js";
import { runCli } from "./helpers/cli.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { synthComponentFolder } from "./helpers/controlnet-folder.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import { canny } from "../src/image/canny.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { parsePythonJson } from "../src/schedulers/index.js";

const ssd1b = runCli;
const tmp = mkdtempSync(join(tmpdir(), "controlnet-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

let dirs: { model: string; a: string; b: string } | undefined;
function models() {
  if (dirs) return dirs;
  const model = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), model, { recursive: true });
  synthModel(model, "fp32");
  const net = (name: string) => synthComponentFolder(join(tmp, name), fixture("controlnet", "tiny-ssd", name, "config.json"));
  dirs = { model, a: net("controlnet"), b: net("controlnet-b") };
  return dirs;
}

/** A stored [1, 3, H, W] uint8/255 tensor as a PNG file. */
function png(data: Float32Array, h: number, w: number, file: string): string {
  const img: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) img.data[3 * i + c] = Math.round(data[c * w * h + i] * 255);
  writeFileSync(file, encodePng(img));
  return file;
}

const cases = NO_FIXTURES ? {} : parsePythonJson(readFileSync(fixture("controlnet", "tiny-ssd", "cases.json"), "utf8")) as Record<string, any>;

test("cli generate --controlnet: the single and multi fixtures as PNGs within 1 level", { skip: NO_FIXTURES }, (t) => {
  const { model, a, b } = models();
  const ref = openFixture("controlnet", "tiny-ssd", "cases.safetensors");
  const base = (c: any) => ["generate", "--model", model, "--prompt", c.prompt, "--negative-prompt", c.negative_prompt, "--steps", String(c.num_inference_steps),
    "--guidance", String(c.guidance_scale), "--seed", String(c.seed), "--scheduler", "euler"];
  let out = join(tmp, "single.png");
  let r = ssd1b([...base(cases.single), "--controlnet", a, "--control-image", png(ref.float32("single.control_image"), 32, 32, join(tmp, "edges.png")), "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  let d = levelDiff(readFileSync(out), ref.float32("single.images"));
  t.diagnostic(`single: ${d.toFixed(3)} levels`);
  assert.ok(d <= 1, `${d} levels`);
  const m = cases.multi;
  out = join(tmp, "multi.png");
  r = ssd1b([...base(m),
    "--controlnet", a, "--control-image", png(ref.float32("multi.control_image_0"), 32, 32, join(tmp, "m0.png")), "--control-scale", String(m.controlnet_conditioning_scale[0]),
    "--controlnet", b, "--control-image", png(ref.float32("multi.control_image_1"), 32, 32, join(tmp, "m1.png")), "--control-scale", String(m.controlnet_conditioning_scale[1]),
    "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  d = levelDiff(readFileSync(out), ref.float32("multi.images"));
  t.diagnostic(`multi: ${d.toFixed(3)} levels`);
  assert.ok(d <= 1, `${d} levels`);
});

test("cli --canny makes the control image from a photo as the library's canny() does; bad ControlNet flags are usage errors", { skip: NO_FIXTURES }, async () => {
  const { model, a } = models();
  const photo: RgbImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) photo.data[(y * 32 + x) * 3 + c] = (x > 8 && x < 24 && y > 6 && y < 20) ? 220 : 30 + c * 10;
  const photoFile = join(tmp, "photo.png");
  writeFileSync(photoFile, encodePng(photo));
  const out = join(tmp, "canny.png");
  const r = ssd1b(["generate", "--model", model, "--prompt", "a box", "--steps", "2", "--seed", "4", "--controlnet", a, "--control-image", photoFile, "--canny", "100,200", "--control-scale", "0.8", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(model);
  try {
    const net = await pipe.loadControlNet(a);
    const lib = await pipe.generate({ prompt: "a box", numInferenceSteps: 2, guidanceScale: 5, seed: 4, controlnets: [{ controlnet: net, image: canny(photo, 100, 200), scale: 0.8 }] });
    await net.release();
    assert.deepEqual(Array.from(decodePng(readFileSync(out)).data), Array.from(toRgb8(lib.images, 0).data));
  } finally {
    await pipe.release();
  }
  const bad = (args: string[], re: RegExp) => {
    const b = ssd1b(["generate", "--model", model, "--prompt", "x", ...args]);
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, re);
  };
  bad(["--control-image", photoFile], /--control-image must follow the --controlnet it applies to/);
  bad(["--controlnet", a], /needs a --control-image after it/);
  bad(["--controlnet", a, "--control-image", photoFile, "--control-start", "0.9", "--control-end", "0.1"], /0 <= start < end <= 1/);
  bad(["--controlnet", a, "--control-image", photoFile, "--canny", "100"], /--canny takes LOW,HIGH/);
  bad(["--guess-mode"], /--guess-mode needs a --controlnet/);
  writeFileSync(join(tmp, "not-image.png"), "nope");
  const n = ssd1b(["generate", "--model", model, "--prompt", "x", "--steps", "1", "--controlnet", a, "--control-image", join(tmp, "not-image.png")]);
  assert.notEqual(n.code, 0);
  assert.match(n.stderr, /not-image\.png/);
});
