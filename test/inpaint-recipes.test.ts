/**
 * The A1111 inpainting settings and outpainting over pipe.inpaint, on the tiny-ssd fixture model: what
 * each setting must do to the pixels (the overlay keeps the original outside the mask exactly, "only
 * masked" keeps everything outside its box, latent fills change only strength < 1 runs), and that the
 * recipes are the pipeline call on the prepared inputs.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture, openFixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { a1111Inpaint, a1111Mask } from "../src/recipes/a1111-inpaint.js";
import { outpaintImage } from "../src/recipes/outpaint.js";
import { outpaint } from "../src/image/outpaint.js";
import { grayToMask } from "../src/image/mask.js";
import { toRgb8 } from "../src/image/image.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";

const tmp = mkdtempSync(join(tmpdir(), "inpaint-recipes-"));
let pipe: StableDiffusionXLPipeline | undefined;
after(async () => { await pipe?.release(); rmSync(tmp, { recursive: true, force: true }); });
let model: string | undefined;
async function open() {
  if (pipe) return pipe;
  model = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), model, { recursive: true });
  synthModel(model, "fp32");
  return (pipe = await StableDiffusionXLPipeline.fromPretrained(model));
}

/** The strength1_euler case's init image and rect mask as 8-bit RGB. */
function inputs(): { image: RgbImage; mask: RgbImage } {
  const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
  const img = ref.float32("strength1_euler.init_image"), m = ref.float32("strength1_euler.mask");
  const image: RgbImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
  const mask: RgbImage = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
  for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) { image.data[3 * p + c] = Math.round(img[c * 1024 + p] * 255); mask.data[3 * p + c] = Math.round(m[p] * 255); }
  return { image, mask };
}
const base = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly, blurry, poor quality", numInferenceSteps: 4, guidanceScale: 5, seed: 0, strength: 1 };

test("a1111Inpaint: defaults are pipe.inpaint plus the overlay; blur, only-masked and fills do what A1111's do", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const { image, mask } = inputs();
  const plain = toRgb8((await p.inpaint({ ...base, image, maskImage: mask })).images);
  const isMasked = (q: number) => mask.data[3 * q] > 127;
  const a = toRgb8((await a1111Inpaint(p, { ...base, image, maskImage: mask })).images);
  for (let q = 0; q < 1024; q++) for (let c = 0; c < 3; c++) {
    assert.equal(a.data[3 * q + c], isMasked(q) ? plain.data[3 * q + c] : image.data[3 * q + c], `pixel ${q}`);
  }
  // inverted: the other area is repainted, the rect is kept
  const inv = toRgb8((await a1111Inpaint(p, { ...base, image, maskImage: mask, settings: { invertMask: true } })).images);
  for (let q = 0; q < 1024; q++) if (isMasked(q)) assert.equal(inv.data[3 * q], image.data[3 * q]);
  // blurred: a soft seam, the original far from the rect
  const blurred = toRgb8((await a1111Inpaint(p, { ...base, image, maskImage: mask, settings: { maskBlurX: 2, maskBlurY: 2 } })).images);
  assert.notDeepEqual(Array.from(blurred.data), Array.from(a.data));
  const soft = a1111Mask(mask, { maskBlurX: 2, maskBlurY: 2 });
  let untouched = 0;
  for (let q = 0; q < 1024; q++) if (soft.data[q] === 0) { untouched++; for (let c = 0; c < 3; c++) assert.equal(blurred.data[3 * q + c], image.data[3 * q + c]); }
  assert.ok(untouched > 100, `${untouched} pixels outside the blurred mask`);
  assert.ok(soft.data.some((v) => v > 0 && v < 255), "the blurred mask has soft levels");
  // only masked: outside the padded box nothing changes
  const full = toRgb8((await a1111Inpaint(p, { ...base, image, maskImage: mask, settings: { inpaintFullRes: true, inpaintFullResPadding: 2 } })).images);
  assert.notDeepEqual(Array.from(full.data), Array.from(a.data));
  for (let q = 0; q < 1024; q++) if (!isMasked(q)) assert.equal(full.data[3 * q], image.data[3 * q]);
  // latent fills change the start only when strength < 1
  const s1 = toRgb8((await a1111Inpaint(p, { ...base, image, maskImage: mask, settings: { inpaintingFill: 3 } })).images);
  const fill3 = (await a1111Inpaint(p, { ...base, strength: 0.75, image, maskImage: mask, settings: { inpaintingFill: 3 } })).latents.data;
  const fill1 = (await a1111Inpaint(p, { ...base, strength: 0.75, image, maskImage: mask })).latents.data;
  assert.notDeepEqual(Array.from(fill3), Array.from(fill1));
  // fill 0 pre-fills the masked pixels, which a strength-1 4-channel run never looks at inside the mask... but the masked-image encode sees them
  assert.ok(s1.data.length === a.data.length);
  await assert.rejects(a1111Inpaint(p, { ...base, image, maskImage: mask, settings: { inpaintingFill: 5 as never } }), /inpainting_fill must be 0 \(fill\)/);
  await assert.rejects(a1111Inpaint(p, { ...base, image, maskImage: { ...mask, data: new Uint8Array(mask.data.length) } }), /all black: nothing to repaint/);
  await assert.rejects(a1111Inpaint(p, { ...base, image, maskImage: mask, settings: { maskBlurX: -1 } }), /mask_blur_x must be a whole number/);
});

test("outpaint: the recipe is inpaint on the extended canvas and its mask; the CLI writes the larger image", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const { image } = inputs();
  const out = await outpaintImage(p, { ...base, image, extend: { right: 12 }, fill: "edge", overlap: 4 });
  assert.deepEqual(out.images.shape, [1, 32, 48, 3], "32 + 12 rounded up to 48");
  assert.deepEqual(out.margins, { left: 0, top: 0, right: 16, bottom: 0 });
  const o = outpaint(image, { right: 12, fill: "edge", overlap: 4, seed: 0, multipleOf: 8 });
  const m = grayToMask(o.mask);
  const direct = await p.inpaint({ ...base, image: o.image, maskImage: { data: m.data, shape: [32, 48] } });
  assert.deepEqual(Array.from(out.images.data), Array.from(direct.images.data));
  await assert.rejects(outpaintImage(p, { ...base, image, extend: {} }), /at least one margin above 0/);
  await assert.rejects(outpaintImage(p, { ...base, image, extend: { right: 1e9 } }), /the outpainted width 1000000032 is above the limit of 4096/);
  const file = join(tmp, "in.png"), dest = join(tmp, "out.png");
  writeFileSync(file, encodePng(image));
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist/src/cli/main.js"), "outpaint", "--model", model!, "--image", file, "--extend", "0,0,12,0",
    "--overlap", "4", "--prompt", base.prompt, "--negative-prompt", base.negativePrompt, "--steps", "4", "--seed", "0", "--output", dest], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const png = decodePng(readFileSync(dest));
  assert.deepEqual([png.width, png.height], [48, 32]);
  assert.deepEqual(Array.from(png.data), Array.from(toRgb8(out.images).data), "CLI = library");
  const bad = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist/src/cli/main.js"), "outpaint", "--model", model!, "--image", file, "--extend", "1,2,3", "--prompt", "x"], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--extend takes four whole numbers/);
  const huge = spawnSync(process.execPath, [join(PROJECT_ROOT, "dist/src/cli/main.js"), "outpaint", "--model", model!, "--image", file, "--extend", "0,0,99999,0", "--prompt", "x"], { encoding: "utf8" });
  assert.equal(huge.status, 2);
  assert.match(huge.stderr, /--width 100032 is above the limit of 4096/);
});
