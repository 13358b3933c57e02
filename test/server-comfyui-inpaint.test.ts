/**
 * ComfyUI inpainting graphs (VAEEncodeForInpaint, SetLatentNoiseMask over LoadImage's MASK,
 * LoadImageMask, InvertMask): the mask arithmetic against torch's definitions written out here, the
 * compiled job's masks, refusals naming node and input, and whole runs over HTTP equal to the
 * library's inpaint given the same image and mask.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { decodeImageRgba } from "../src/image/rgba.js";
import { toRgb8, type FloatTensor } from "../src/image/image.js";
import type { RunningServer } from "../src/server/app.js";
import { startLocalServer } from "./helpers/local-server.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { encodeRgbaPng } from "./helpers/png-rgba.js";
import { comfyUpload, runComfyPrompt } from "./helpers/comfy-client.js";
import { compileWorkflow, type WorkflowContext } from "../src/server/comfyui/workflow.js";
import { growMask, morphMask, roundMask } from "../src/server/comfyui/masks.js";
import { interpolate } from "../src/image/latent-resize.js";
import { roundHalfEven } from "../src/schedulers/common.js";
import { DEFAULT_LIMITS } from "../src/server/validation.js";
import type { RgbaImage } from "../src/image/rgba.js";
import type { Mask } from "../src/image/mask.js";

const tmp = mkdtempSync(join(tmpdir(), "server-comfyui-inpaint-"));
let pipe: StableDiffusionXLPipeline;
let server: RunningServer;

before(async () => {
  if (NO_FIXTURES) return;
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  server = await startLocalServer(pipe);
});

after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

/** torch: clamp(conv2d(round(m), ones(g, g), padding ceil((g - 1) / 2)), 0, 1)[:H, :W], on a zero-padded copy. */
function torchGrow(m: Mask, g: number): Float32Array {
  const r = m.data.map((v) => Math.round(v) - (Math.abs(v % 1) === 0.5 && Math.round(v) % 2 !== 0 ? 1 : 0));
  if (g === 0) return r;
  const p = Math.ceil((g - 1) / 2), W = m.width + 2 * p, H = m.height + 2 * p;
  const padded = new Float32Array(W * H);
  for (let y = 0; y < m.height; y++) for (let x = 0; x < m.width; x++) padded[(y + p) * W + x + p] = r[y * m.width + x];
  const out = new Float32Array(m.width * m.height);
  for (let y = 0; y < m.height; y++) {
    for (let x = 0; x < m.width; x++) {
      let s = 0;
      for (let i = 0; i < g; i++) for (let j = 0; j < g; j++) if (y + i < H && x + j < W) s += padded[(y + i) * W + x + j];
      out[y * m.width + x] = Math.min(1, s);
    }
  }
  return out;
}

test("ComfyUI masks: VAEEncodeForInpaint's grow is torch's conv2d with its padding (an even box grows more right and down); round sends 0.5 to 0", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const m: Mask = { width: 13, height: 11, data: Float32Array.from({ length: 143 }, () => (rand() < 0.08 ? 0.4 + rand() * 0.6 : 0)) };
  for (const g of [0, 1, 2, 3, 5, 6, 7, 16]) assert.deepEqual(growMask(m, g).data, torchGrow(m, g), `grow_mask_by ${g}`);
  assert.deepEqual([...roundMask({ width: 5, height: 1, data: Float32Array.from([0.5, 0.5001, 0.4999, 1, 0]) }).data], [0, 1, 0, 1, 0]);
  // one pixel at (5, 5) grown by 6: rows and columns 3..8
  const dot: Mask = { width: 12, height: 12, data: new Float32Array(144) };
  dot.data[5 * 12 + 5] = 1;
  const grown = growMask(dot, 6).data;
  const on = [...grown.keys()].filter((i) => grown[i] === 1);
  assert.equal(on.length, 36);
  assert.deepEqual([Math.min(...on.map((i) => i % 12)), Math.max(...on.map((i) => i % 12)), Math.min(...on.map((i) => Math.floor(i / 12))), Math.max(...on.map((i) => Math.floor(i / 12)))], [3, 8, 3, 8]);
});

/** scipy.ndimage.grey_dilation / grey_erosion with a 3x3 footprint and mode "reflect" (edge pixels mirror themselves), repeated. */
function scipyMorph(m: Mask, expand: number, tapered: boolean): Float32Array {
  let cur = Float32Array.from(m.data);
  const { width: w, height: h } = m;
  const clamp = (v: number, n: number) => (v < 0 ? -v - 1 : v >= n ? 2 * n - v - 1 : v);
  for (let step = 0; step < Math.abs(expand); step++) {
    const next = new Float32Array(cur.length);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      let best = expand > 0 ? -Infinity : Infinity;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        if (tapered && dx !== 0 && dy !== 0) continue;
        const v = cur[clamp(y + dy, h) * w + clamp(x + dx, w)];
        best = expand > 0 ? Math.max(best, v) : Math.min(best, v);
      }
      next[y * w + x] = best;
    }
    cur = next;
  }
  return cur;
}

test("ComfyUI GrowMask: scipy's 3x3 grey dilation / erosion repeated, for crosses and squares, either way", () => {
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const m: Mask = { width: 19, height: 13, data: Float32Array.from({ length: 19 * 13 }, () => (rand() < 0.1 ? rand() : rand() < 0.05 ? 1 : 0)) };
  for (const tapered of [true, false]) {
    for (const k of [1, 2, 3, 7, 40, -1, -2, -5]) {
      const src = k < 0 ? { ...m, data: m.data.map((v) => 1 - v) } : m;
      assert.deepEqual(morphMask(src, k, tapered).data, scipyMorph(src, k, tapered), `expand ${k}, tapered ${tapered}`);
    }
  }
});

const W = 37, H = 35;

/** A 37x35 RGBA upload: a gradient, transparent (alpha 0) in a box, half transparent (alpha 100) in a strip, red holding another pattern. */
function rgbaUpload(): RgbaImage {
  const data = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const alpha = x >= 10 && x < 20 && y >= 8 && y < 18 ? 0 : y === 25 && x > 3 ? 100 : 255;
      data.set([x * 6, y * 7, (x * y) % 256, alpha], (y * W + x) * 4);
    }
  }
  return { width: W, height: H, data };
}

/** The 32x32 centre of a W x H plane (ComfyUI's crop to multiples of 8: offsets 2 and 1). */
function centre(plane: Float32Array): Float32Array {
  const out = new Float32Array(32 * 32);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) out[y * 32 + x] = plane[(y + 1) * W + x + 2];
  return out;
}

const alphaMask = (img: RgbaImage) => Float32Array.from({ length: W * H }, (_, p) => (255 - img.data[4 * p + 3]) / 255);
const pngMask = (b64: string) => { const img = decodePng(Buffer.from(b64, "base64")); return Float32Array.from({ length: img.width * img.height }, (_, p) => img.data[3 * p] / 255); };

function inpaintGraph(latent: Record<string, any>, denoise: number, steps: number): Record<string, any> {
  return {
    3: { class_type: "KSampler", inputs: { seed: 5, steps, cfg: 6, sampler_name: "euler", scheduler: "ddim_uniform", denoise, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["11", 0] } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    6: { class_type: "CLIPTextEncode", inputs: { text: "a red apple on a table", clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
    10: { class_type: "LoadImage", inputs: { image: "photo.png" } },
    ...latent,
  };
}

const FOR_INPAINT = { 11: { class_type: "VAEEncodeForInpaint", inputs: { pixels: ["10", 0], vae: ["4", 2], mask: ["10", 1], grow_mask_by: 6 } } };
const NOISE_MASK = {
  11: { class_type: "SetLatentNoiseMask", inputs: { samples: ["12", 0], mask: ["13", 0] } },
  12: { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } },
  13: { class_type: "InvertMask", inputs: { mask: ["14", 0] } },
  14: { class_type: "LoadImageMask", inputs: { image: "photo.png [input]", channel: "green" } },
};

function context(uploads: Record<string, RgbaImage>): WorkflowContext {
  return {
    limits: DEFAULT_LIMITS, model: { name: "tiny-ssd", source: "/models/tiny-ssd", textEncoderLayers: [12, 32] },
    inputImage: (name) => (uploads[name] ? { png: "x", width: uploads[name].width - (uploads[name].width % 8), height: uploads[name].height - (uploads[name].height % 8) } : undefined),
    upload: (name) => uploads[name], uploadBytes: () => undefined,
  };
}

test("ComfyUI workflow: VAEEncodeForInpaint and SetLatentNoiseMask compile to the job's noise mask, cut with the image to multiples of 8", () => {
  const img = rgbaUpload();
  const ctx = context({ "photo.png": img });
  const a = compileWorkflow(inpaintGraph(FOR_INPAINT, 1, 4), ctx).spec;
  const cut: Mask = { width: 32, height: 32, data: centre(alphaMask(img)) };
  assert.deepEqual(pngMask(a.noiseMask!.mask), torchGrow(cut, 6), "the noise mask: rounded, grown by 6");
  // alpha 100 is 0.608 transparent: rounded to 1; the box and the strip are greyed
  assert.deepEqual(pngMask(a.noiseMask!.greyOut!), torchGrow(cut, 0), "the grey-out mask: rounded");
  assert.equal(pngMask(a.noiseMask!.greyOut!).filter((v) => v === 1).length, 10 * 10 + 32 - 2);
  assert.deepEqual([a.steps, a.strength, a.width, a.height, a.initImage], [4, 1, undefined, undefined, "x"]);
  // LoadImageMask's alpha is LoadImage's MASK; two InvertMasks cancel
  const viaMask = inpaintGraph({ 11: { ...FOR_INPAINT[11], inputs: { ...FOR_INPAINT[11].inputs, mask: ["13", 0] } }, 13: { class_type: "InvertMask", inputs: { mask: ["14", 0] } }, 14: { class_type: "InvertMask", inputs: { mask: ["15", 0] } }, 15: { class_type: "LoadImageMask", inputs: { image: "photo.png", channel: "alpha" } } }, 1, 4);
  assert.deepEqual(compileWorkflow(viaMask, ctx).spec.noiseMask, a.noiseMask);

  // GrowMask, ThresholdMask and ImageToMask: the mask computed as those nodes do
  const chain = inpaintGraph({
    11: { ...FOR_INPAINT[11], inputs: { ...FOR_INPAINT[11].inputs, mask: ["13", 0], grow_mask_by: 0 } },
    13: { class_type: "GrowMask", inputs: { mask: ["14", 0], expand: 2, tapered_corners: true } },
    14: { class_type: "ThresholdMask", inputs: { mask: ["15", 0], value: 0.3 } },
    15: { class_type: "ImageToMask", inputs: { image: ["10", 0], channel: "green" } },
  }, 1, 4);
  const green01 = { width: W, height: H, data: Float32Array.from({ length: W * H }, (_, p) => (img.data[4 * p + 1] / 255 > 0.3 ? 1 : 0)) };
  const grownGreen = morphMask(green01, 2, true);
  assert.deepEqual(pngMask(compileWorkflow(chain, ctx).spec.noiseMask!.mask), torchGrow({ width: 32, height: 32, data: centre(grownGreen.data) }, 0));

  // SetLatentNoiseMask keeps the mask as it is (1 - green / 255 here), with no grey-out; denoise 0.5 of 3 steps: 6 steps at strength 0.5
  const b = compileWorkflow(inpaintGraph(NOISE_MASK, 0.5, 3), ctx).spec;
  const green = Float32Array.from({ length: W * H }, (_, p) => 1 - img.data[4 * p + 1] / 255);
  const want = centre(green);
  const got = pngMask(b.noiseMask!.mask);
  assert.ok(got.every((v, i) => Math.abs(v - want[i]) <= 0.5 / 255 + 1e-7), "the inverted green channel, to the level");
  assert.equal(b.noiseMask!.greyOut, undefined);
  assert.deepEqual([b.steps, b.strength], [6, 0.5]);

  // InpaintModelConditioning: SetLatentNoiseMask's latent, the prompts passed on
  const imcGraph = (noiseMask: boolean) => {
    const g = inpaintGraph({ 11: { class_type: "InpaintModelConditioning", inputs: { positive: ["6", 0], negative: ["7", 0], vae: ["4", 2], pixels: ["10", 0], mask: ["13", 0], noise_mask: noiseMask } }, 13: NOISE_MASK[13], 14: NOISE_MASK[14] }, 0.5, 3);
    Object.assign(g[3].inputs, { positive: ["11", 0], negative: ["11", 1], latent_image: ["11", 2] });
    return g;
  };
  const c = compileWorkflow(imcGraph(true), ctx).spec;
  assert.deepEqual([c.noiseMask, c.prompt, c.negativePrompt, c.steps, c.strength], [b.noiseMask, "a red apple on a table", "blurry", 6, 0.5]);
  // noise_mask false: the same mask, for an inpainting UNet's input only
  assert.deepEqual(compileWorkflow(imcGraph(false), ctx).spec.noiseMask, { ...b.noiseMask, concatOnly: true });

  const bad = (g: Record<string, any>, uploads: Record<string, RgbaImage>, node: string, input: string, message: RegExp) => {
    assert.throws(() => compileWorkflow(g, context(uploads)), (e: any) => e.node?.id === node && e.input === input && message.test(e.message), `${node}.${input}: ${message}`);
  };
  const opaque = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? 255 : v)) };
  bad(inpaintGraph(FOR_INPAINT, 1, 4), { "photo.png": opaque }, "10", "image", /no transparency, so LoadImage's MASK is empty/);
  // a mask of another size is scaled to the image (torch's bilinear), then cut with it
  const small = { width: 16, height: 16, data: Uint8Array.from({ length: 16 * 16 * 4 }, (_, i) => (i % 4 === 0 ? ((i >> 2) % 16) * 16 : 255)) };
  const scaledGraph = inpaintGraph({ ...NOISE_MASK, 14: { ...NOISE_MASK[14], inputs: { image: "other.png", channel: "red" } } }, 1, 4);
  const red = Float32Array.from({ length: 256 }, (_, p) => 1 - small.data[4 * p] / 255);
  const scaled = interpolate({ data: red, shape: [1, 1, 16, 16] }, H, W, "bilinear").data;
  const scaledGot = pngMask(compileWorkflow(scaledGraph, context({ "photo.png": img, "other.png": small })).spec.noiseMask!.mask);
  assert.ok(scaledGot.every((v, i) => Math.abs(v - centre(scaled)[i]) <= 0.5 / 255 + 1e-6), "the 16x16 mask scaled to 37x35, its 32x32 centre");
  // only the cropped-away border column transparent: nothing to repaint
  const edge = { ...img, data: img.data.map((v, i) => (i % 4 === 3 ? ((i >> 2) % W === 0 ? 0 : 255) : v)) };
  bad(inpaintGraph(FOR_INPAINT, 1, 4), { "photo.png": edge }, "11", "mask", /nothing to repaint in the 32x32 image/);
  bad(inpaintGraph({ ...NOISE_MASK, 14: { ...NOISE_MASK[14], inputs: { image: "photo.png", channel: "luma" } } }, 1, 4), { "photo.png": img }, "14", "channel", /channel must be one of alpha, red, green, blue/);
  bad(inpaintGraph({ 11: { ...FOR_INPAINT[11], inputs: { ...FOR_INPAINT[11].inputs, grow_mask_by: 65 } } }, 1, 4), { "photo.png": img }, "11", "grow_mask_by", /grow_mask_by/);
  bad(inpaintGraph({ ...NOISE_MASK, 12: { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } } }, 1, 4), { "photo.png": img }, "11", "samples", /VAEEncode/);
  bad(inpaintGraph({ ...NOISE_MASK, 14: { class_type: "InvertMask", inputs: { mask: ["13", 0] } } }, 1, 4), { "photo.png": img }, "13", "mask", /loop/);
  // a long chain of mask nodes is refused before any pass over the mask
  const long: Record<string, any> = { 11: { ...FOR_INPAINT[11], inputs: { ...FOR_INPAINT[11].inputs, mask: ["20", 0] } } };
  for (let i = 20; i < 30; i++) long[i] = { class_type: "InvertMask", inputs: { mask: [String(i + 1), 0] } };
  long[30] = { class_type: "LoadImageMask", inputs: { image: "photo.png", channel: "alpha" } };
  bad(inpaintGraph(long, 1, 4), { "photo.png": img }, "28", "mask", /at most 8 nodes/);
  const elsewhere = imcGraph(true);
  elsewhere[3].inputs.latent_image = ["12", 0];
  elsewhere[12] = NOISE_MASK[12];
  bad(elsewhere, { "photo.png": img }, "11", "positive", /its latent_image must be that node's latent/);
  const swapped = imcGraph(true);
  swapped[3].inputs.negative = ["11", 0];
  bad(swapped, { "photo.png": img }, "3", "negative", /takes output 0 of InpaintModelConditioning 11, which is its positive; link output 1/);
});

const upload = (png: Buffer, name: string) => comfyUpload(server.url, png, name);
const run = (prompt: unknown) => runComfyPrompt(server.url, prompt);

test("ComfyUI: inpainting graphs run the library's inpaint with ComfyUI's image and mask, to the level", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const img = rgbaUpload();
  assert.equal(await upload(encodeRgbaPng(img), "photo.png"), "photo.png");
  const rgb = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) rgb[(y * 32 + x) * 3 + c] = img.data[((y + 1) * W + x + 2) * 4 + c];
  const common = { prompt: "a red apple on a table", negativePrompt: "blurry", guidanceScale: 6, seed: 5, scheduler: "Euler" as const };

  // VAEEncodeForInpaint at denoise 1: the rounded mask's pixels at 0.5 grey, the mask grown by 6 repainted from pure noise
  const cut: Mask = { width: 32, height: 32, data: centre(alphaMask(img)) };
  const grey = torchGrow(cut, 0), noise = torchGrow(cut, 6);
  const greyed: FloatTensor = { data: new Float32Array(3 * 1024), shape: [1, 3, 32, 32] };
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) greyed.data[c * 1024 + p] = grey[p] ? 0.5 : rgb[p * 3 + c] / 255;
  const png = decodePng(await run(inpaintGraph(FOR_INPAINT, 1, 3)));
  const lib = await pipe.inpaint({ ...common, numInferenceSteps: 3, strength: 1, image: greyed, maskImage: { data: noise, shape: [32, 32] } });
  assert.deepEqual(png.data, toRgb8(lib.images, 0).data, "VAEEncodeForInpaint: the library's inpaint of the greyed image");
  // the grey matters: without it the image differs
  const plain = await pipe.inpaint({ ...common, numInferenceSteps: 3, strength: 1, image: { width: 32, height: 32, data: rgb }, maskImage: { data: noise, shape: [32, 32] } });
  assert.notDeepEqual(png.data, toRgb8(plain.images, 0).data);

  // ImageCompositeMasked: the inpainted 32x32 laid at (2, 1) onto the 37x35 upload, weighted by LoadImage's MASK scaled to 32x32
  const composited = decodePng(await run({
    ...inpaintGraph(FOR_INPAINT, 1, 3),
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["12", 0] } },
    12: { class_type: "ImageCompositeMasked", inputs: { destination: ["10", 0], source: ["8", 0], x: 2, y: 1, resize_source: false, mask: ["10", 1] } },
  }));
  assert.deepEqual([composited.width, composited.height], [W, H]);
  const scaledMask = interpolate({ data: alphaMask(img), shape: [1, 1, H, W] }, 32, 32, "bilinear").data;
  const want = new Float32Array(W * H * 3);
  for (let p = 0; p < W * H; p++) for (let c = 0; c < 3; c++) want[p * 3 + c] = img.data[p * 4 + c] / 255;
  for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) {
    const m = scaledMask[y * 32 + x], d = ((y + 1) * W + x + 2) * 3 + c;
    want[d] = m * lib.images.data[(y * 32 + x) * 3 + c] + (1 - m) * want[d];
  }
  assert.deepEqual(composited.data, toRgb8({ data: want, shape: [1, H, W, 3] }).data);

  // SetLatentNoiseMask at denoise 0.5 of 2 steps: strength 0.5 of 4, the inverted green channel binarized by the pipeline
  const soft = centre(Float32Array.from({ length: W * H }, (_, p) => 1 - img.data[4 * p + 1] / 255));
  const png2 = decodePng(await run(inpaintGraph(NOISE_MASK, 0.5, 2)));
  const lib2 = await pipe.inpaint({ ...common, numInferenceSteps: 4, strength: 0.5, image: { width: 32, height: 32, data: rgb }, maskImage: { data: soft, shape: [32, 32] } });
  assert.deepEqual(png2.data, toRgb8(lib2.images, 0).data, "SetLatentNoiseMask: the library's inpaint of the image");

  // InpaintModelConditioning noise_mask false on this 4-channel UNet: nothing uses the mask, so img2img of the image
  const imc = inpaintGraph({ 11: { class_type: "InpaintModelConditioning", inputs: { positive: ["6", 0], negative: ["7", 0], vae: ["4", 2], pixels: ["10", 0], mask: ["13", 0], noise_mask: false } }, 13: NOISE_MASK[13], 14: NOISE_MASK[14] }, 0.5, 2);
  Object.assign(imc[3].inputs, { positive: ["11", 0], negative: ["11", 1], latent_image: ["11", 2] });
  const png3 = decodePng(await run(imc));
  const lib3 = await pipe.img2img({ ...common, numInferenceSteps: 4, strength: 0.5, image: { width: 32, height: 32, data: rgb } });
  assert.deepEqual(png3.data, toRgb8(lib3.images, 0).data, "noise_mask false: the library's img2img");

  // the upload resized before the encode (ImageScaleBy 1.5: 56x52, cut to 56x48 from y = 2), the mask at the upload's size scaled with it
  const resizedGraph = inpaintGraph({ ...NOISE_MASK, 12: { class_type: "VAEEncode", inputs: { pixels: ["15", 0], vae: ["4", 2] } }, 15: { class_type: "ImageScaleBy", inputs: { image: ["10", 0], upscale_method: "bilinear", scale_by: 1.5 } } }, 0.5, 2);
  const png4 = decodePng(await run(resizedGraph));
  assert.deepEqual([png4.width, png4.height], [56, 48]);
  const opaqueRgb: FloatTensor = { data: new Float32Array(3 * W * H), shape: [1, 3, H, W] };
  for (let c = 0; c < 3; c++) for (let p = 0; p < W * H; p++) opaqueRgb.data[c * W * H + p] = img.data[4 * p + c] / 255;
  const big = interpolate(opaqueRgb, 52, 56, "bilinear").data;
  const big8 = new Uint8Array(56 * 48 * 3);
  for (let y = 0; y < 48; y++) for (let x = 0; x < 56; x++) for (let c = 0; c < 3; c++) big8[(y * 56 + x) * 3 + c] = Math.min(255, Math.max(0, roundHalfEven(Math.fround(big[(c * 52 + y + 2) * 56 + x] * 255))));
  const green = Float32Array.from({ length: W * H }, (_, p) => 1 - img.data[4 * p + 1] / 255);
  const bigMask = interpolate({ data: green, shape: [1, 1, H, W] }, 52, 56, "bilinear").data;
  // the job carries the mask as 8-bit grey
  const mask4 = Float32Array.from({ length: 56 * 48 }, (_, p) => Math.round(bigMask[(Math.floor(p / 56) + 2) * 56 + (p % 56)] * 255) / 255);
  const lib4 = await pipe.inpaint({ ...common, numInferenceSteps: 4, strength: 0.5, image: { width: 56, height: 48, data: big8 }, maskImage: { data: mask4, shape: [48, 56] } });
  assert.deepEqual(png4.data, toRgb8(lib4.images, 0).data, "the resized image, the mask scaled to it");
  assert.notDeepEqual(png3.data, png2.data);
});

test("ComfyUI /upload/mask: the mask's alpha laid into the original upload, as the mask editor saves it; LoadImage's MASK reads it", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const img = rgbaUpload();
  const rgb = { width: W, height: H, data: Uint8Array.from({ length: W * H * 3 }, (_, i) => img.data[(i / 3 | 0) * 4 + (i % 3)]) };
  assert.equal(await upload(encodePng(rgb), "plain.png"), "plain.png");
  const maskOnly = { width: W, height: H, data: img.data.map((v, i) => (i % 4 === 3 ? v : 7)) };
  const send = async (mask: Buffer, ref: unknown) => {
    const form = new FormData();
    form.append("image", new Blob([new Uint8Array(mask)], { type: "image/png" }), "clipspace-mask.png");
    form.append("original_ref", JSON.stringify(ref));
    form.append("overwrite", "true");
    const r = await fetch(`${server.url}/upload/mask`, { method: "POST", body: form });
    return { status: r.status, body: await r.json() as any };
  };
  const ok = await send(encodeRgbaPng(maskOnly), { filename: "plain.png", type: "input", subfolder: "" });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(ok.body, { name: "clipspace-mask.png", subfolder: "", type: "input" });
  const saved = decodeImageRgba(Buffer.from(await (await fetch(`${server.url}/view?filename=clipspace-mask.png&type=input`)).arrayBuffer()), "saved");
  // LoadImage lists the uploads, as ComfyUI lists its input folder
  const listed = (await (await fetch(`${server.url}/object_info/LoadImage`)).json() as any).LoadImage.input.required.image[0] as string[];
  assert.ok(listed.includes("plain.png") && listed.includes("clipspace-mask.png"), String(listed));
  assert.deepEqual(saved.data, img.data, "the original's RGB with the mask's alpha");
  // the saved image inpaints as the RGBA upload it equals
  const spec = compileWorkflow(inpaintGraph({ ...FOR_INPAINT }, 1, 4), context({ "photo.png": saved })).spec;
  assert.deepEqual(spec.noiseMask, compileWorkflow(inpaintGraph(FOR_INPAINT, 1, 4), context({ "photo.png": img })).spec.noiseMask);
  const small = await send(encodeRgbaPng({ width: 8, height: 8, data: new Uint8Array(256) }), { filename: "plain.png", type: "input" });
  assert.equal(small.status, 400);
  assert.match(small.body.error.message, /the mask is 8x8 but the original image is 37x35/);
  const missing = await send(encodeRgbaPng(maskOnly), { filename: "nope.png", type: "input" });
  assert.equal(missing.status, 404);
  assert.match(missing.body.error.message, /no input file "nope.png"/);
  const sub = await send(encodeRgbaPng(maskOnly), { filename: "plain.png", type: "input", subfolder: "clipspace" });
  assert.equal(sub.status, 400);
});
