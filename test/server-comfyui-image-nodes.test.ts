/**
 * ComfyUI's image nodes after VAEDecode (UpscaleModelLoader + ImageUpscaleWithModel, ImageScaleBy,
 * ImageScale) as the job's image steps: the saved PNG equals the library's image through the same
 * upscaler and torch-style resize; sizes, crops and refusals as ComfyUI's nodes define them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NO_FIXTURES, fixture } from "./helpers/fixtures.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { comfyRefused, comfyUpload, runComfyPrompt } from "./helpers/comfy-client.js";
import { saveTensors } from "../src/safetensors/index.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { UpscalerLibrary } from "../src/server/upscaler-library.js";
import { Upscaler } from "../src/pipelines/upscaler.js";
import { interpolate } from "../src/image/latent-resize.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { rgbToTensor, toRgb8, type FloatTensor } from "../src/image/image.js";
import { generateHires } from "../src/recipes/hires-fix.js";
import { resizedSize, runImageOps } from "../src/server/image-ops.js";

let modelFile = "";
const served = serveTinyModel("server-comfyui-image-nodes-", {
  skip: NO_FIXTURES,
  setup: (tmp) => {
    const dir = join(tmp, "upscalers");
    mkdirSync(dir, { recursive: true });
    // the fixtures' tiny RRDBNet of scale 2, with synth weights
    const manifest = JSON.parse(readFileSync(fixture("esrgan", "cases.json"), "utf8")).cases.b.manifest as Record<string, number[]>;
    modelFile = join(dir, "tiny-x2.safetensors");
    saveTensors(modelFile, Object.fromEntries(Object.entries(manifest).map(([k, s]) => [k, { dtype: "F32" as const, shape: s, data: synthTensor(k, s) }])));
    return { server: { upscalers: new UpscalerLibrary(dir) } };
  },
});

test("ComfyUI image steps: ImageScaleBy rounds as Python, ImageScale keeps the aspect for a 0 side and crops the centre first", async () => {
  assert.deepEqual(resizedSize({ op: "resize", method: "bilinear", scaleBy: 0.75 }, 42, 30), { width: 32, height: 22 }, "31.5 -> 32, 22.5 -> 22 (half to even)");
  assert.deepEqual(resizedSize({ op: "resize", method: "bilinear", width: 0, height: 15, crop: "disabled" }, 40, 20), { width: 30, height: 15 });
  // a 40x20 ramp to 10x10 with crop center: the middle 20x20 (x from 10), then nearest-exact
  const w = 40, h = 20;
  const img: FloatTensor = { data: new Float32Array(3 * w * h), shape: [1, 3, h, w] };
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data[(c * h + y) * w + x] = x / 64 + y / 1024 + c / 8;
  const out = await runImageOps(img, [{ op: "resize", method: "nearest-exact", width: 10, height: 10, crop: "center" }], new Map());
  assert.deepEqual(out.shape, [1, 3, 10, 10]);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) {
    // nearest-exact picks floor((i + 0.5) * 2) = 2i + 1 of the cropped 20 pixels
    assert.equal(out.data[(2 * 10 + y) * 10 + x], img.data[(2 * h + 2 * y + 1) * w + 10 + 2 * x + 1]);
  }
});

function graph(extra: Record<string, any>, images: [string, number]): Record<string, any> {
  return {
    3: { class_type: "KSampler", inputs: { seed: 4, steps: 3, cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: "a lighthouse", clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images } },
    ...extra,
  };
}

const UPSCALE = {
  10: { class_type: "UpscaleModelLoader", inputs: { model_name: "tiny-x2.safetensors" } },
  11: { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["10", 0], image: ["8", 0] } },
  12: { class_type: "ImageScaleBy", inputs: { image: ["11", 0], upscale_method: "bicubic", scale_by: 0.75 } },
};

test("ComfyUI: VAEDecode -> ImageUpscaleWithModel -> ImageScaleBy saves the library's image upscaled by the model, then resized as torch", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const url = served.server.url;
  const info = await (await fetch(`${url}/object_info/UpscaleModelLoader`)).json() as any;
  assert.deepEqual(info.UpscaleModelLoader.input.required.model_name[0], ["tiny-x2.safetensors"]);

  const png = decodePng(await runComfyPrompt(url, graph(UPSCALE, ["12", 0])));
  assert.deepEqual([png.width, png.height], [48, 48]);

  const lib = await served.pipe.generate({ prompt: "a lighthouse", negativePrompt: "fog", numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, seed: 4, scheduler: "Euler" });
  const n = 32 * 32, planes = new Float32Array(3 * n);
  for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) planes[c * n + p] = lib.images.data[p * 3 + c];
  const model = await Upscaler.fromFile(modelFile);
  const up = await model.upscalePlanes({ data: planes, shape: [1, 3, 32, 32] }, { tile: 0 });
  await model.release();
  const small = interpolate(up, 48, 48, "bicubic");
  const hwc = new Float32Array(3 * 48 * 48);
  for (let p = 0; p < 48 * 48; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = small.data[c * 48 * 48 + p];
  assert.deepEqual(png.data, toRgb8({ data: hwc, shape: [1, 48, 48, 3] }).data);

  const refused = (prompt: unknown, node: string | undefined, input: string | undefined, message: RegExp) => comfyRefused(url, prompt, node, input, message);
  await refused(graph({ ...UPSCALE, 10: { ...UPSCALE[10], inputs: { model_name: "4x-UltraSharp.pth" } } }, ["12", 0]), "10", "model_name", /unknown upscaler "4x-UltraSharp"/);
  await refused(graph({ ...UPSCALE, 12: { ...UPSCALE[12], inputs: { ...UPSCALE[12].inputs, upscale_method: "area" } } }, ["12", 0]), "12", "upscale_method", /"area" is not run here/);
  await refused(graph({ 13: { class_type: "ImageScale", inputs: { image: ["8", 0], upscale_method: "lanczos", width: 16384, height: 16384, crop: "disabled" } } }, ["13", 0]), undefined, undefined, /16384x16384 .* over the limit/);
  const two = graph(UPSCALE, ["12", 0]);
  two[14] = { class_type: "PreviewImage", inputs: { images: ["8", 0] } };
  await refused(two, undefined, undefined, /must all show the same images/);
});

test("ComfyUI: KSampler -> VAEDecode -> ImageUpscaleWithModel -> ImageScaleBy -> VAEEncode -> KSampler is the hires fix with those nodes as the pixel upscaler", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const url = served.server.url;
  const g = graph({
    ...UPSCALE, 12: { ...UPSCALE[12], inputs: { ...UPSCALE[12].inputs, upscale_method: "bilinear" } },
    13: { class_type: "VAEEncode", inputs: { pixels: ["12", 0], vae: ["4", 2] } },
    14: { class_type: "KSampler", inputs: { seed: 9, steps: 2, cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", denoise: 0.5, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["13", 0] } },
    15: { class_type: "VAEDecode", inputs: { samples: ["14", 0], vae: ["4", 2] } },
  }, ["15", 0]);
  const png = decodePng(await runComfyPrompt(url, g));
  assert.deepEqual([png.width, png.height], [48, 48]);

  // the library's hires fix: the first pass, its 8-bit image through the model and torch's bilinear to 48x48, img2img at denoise 0.5 of 2 steps (4 at strength 0.5) from seed 9
  const model = await Upscaler.fromFile(modelFile);
  const upscaler = async (image: { width: number; height: number; data: Uint8Array }) => {
    const up = await model.upscalePlanes(rgbToTensor(image), { tile: 0 });
    const small = interpolate(up, 48, 48, "bilinear");
    const hwc = new Float32Array(3 * 48 * 48);
    for (let p = 0; p < 48 * 48; p++) for (let c = 0; c < 3; c++) hwc[p * 3 + c] = small.data[c * 48 * 48 + p];
    return toRgb8({ data: hwc, shape: [1, 48, 48, 3] });
  };
  const lib = await generateHires(served.pipe, { prompt: "a lighthouse", negativePrompt: "fog", numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, seed: 4, scheduler: "Euler" },
    { upscaler, width: 48, height: 48, steps: 4, strength: 0.5, seed: 9 });
  await model.release();
  assert.deepEqual(png.data, toRgb8(lib.images, 0).data);

  // the nodes must make whole multiples of 8 for the second pass
  const odd = structuredClone(g);
  odd[12].inputs.scale_by = 0.7;
  await comfyRefused(url, odd, undefined, undefined, /make 45x45; the second pass needs whole multiples of 8/);
});

test("ComfyUI: LoadImage -> ImageScaleBy | ImageUpscaleWithModel -> VAEEncode resizes the upload in the job, then crops it to multiples of 8 as VAEEncode does", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const url = served.server.url;
  const w = 37, h = 35;
  const rgb = { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 53) % 256) };
  assert.equal(await comfyUpload(url, encodePng(rgb), "photo.png"), "photo.png");
  const g = graph({
    10: { class_type: "LoadImage", inputs: { image: "photo.png" } },
    11: { class_type: "ImageScaleBy", inputs: { image: ["10", 0], upscale_method: "bilinear", scale_by: 1.5 } },
    12: { class_type: "VAEEncode", inputs: { pixels: ["11", 0], vae: ["4", 2] } },
  }, ["8", 0]);
  Object.assign(g[3].inputs, { latent_image: ["12", 0], denoise: 0.6 });
  const png = decodePng(await runComfyPrompt(url, g));
  // 37x35 x 1.5 = 56x52 (55.5 and 52.5 round half to even), cropped to 56x48 from y = 2
  assert.deepEqual([png.width, png.height], [56, 48]);
  const big = interpolate(rgbToTensor(rgb), 52, 56, "bilinear");
  const init = new Uint8Array(56 * 48 * 3);
  for (let y = 0; y < 48; y++) for (let x = 0; x < 56; x++) for (let c = 0; c < 3; c++) {
    init[(y * 56 + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(Math.fround(big.data[(c * 52 + y + 2) * 56 + x] * 255))));
  }
  const lib = await served.pipe.img2img({ prompt: "a lighthouse", negativePrompt: "fog", numInferenceSteps: 5, strength: 0.6, guidanceScale: 5, seed: 4, scheduler: "Euler", image: { width: 56, height: 48, data: init } });
  assert.deepEqual(png.data, toRgb8(lib.images, 0).data);

  // an upscale model first (ComfyUI's upscale-then-img2img): 37x35 x 2 = 74x70, cropped to 72x64 from (1, 3)
  const withModel = structuredClone(g);
  withModel[11] = { class_type: "ImageUpscaleWithModel", inputs: { upscale_model: ["13", 0], image: ["10", 0] } };
  withModel[13] = UPSCALE[10];
  const upscaled = decodePng(await runComfyPrompt(url, withModel));
  assert.deepEqual([upscaled.width, upscaled.height], [72, 64]);
  const model = await Upscaler.fromFile(modelFile);
  const x2 = await runImageOps(rgbToTensor(rgb), [{ op: "upscale-model", name: "tiny-x2", path: modelFile }], new Map([[modelFile, model]]));
  await model.release();
  assert.deepEqual(x2.shape, [1, 3, 70, 74]);
  const cut = new Uint8Array(72 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 72; x++) for (let c = 0; c < 3; c++) {
    cut[(y * 72 + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(Math.fround(x2.data[(c * 70 + y + 3) * 74 + x + 1] * 255))));
  }
  const fromUpscaled = await served.pipe.img2img({ prompt: "a lighthouse", negativePrompt: "fog", numInferenceSteps: 5, strength: 0.6, guidanceScale: 5, seed: 4, scheduler: "Euler", image: { width: 72, height: 64, data: cut } });
  assert.deepEqual(upscaled.data, toRgb8(fromUpscaled.images, 0).data);
  // a model the server does not have is named before anything runs
  const unknown = structuredClone(withModel);
  unknown[13] = { class_type: "UpscaleModelLoader", inputs: { model_name: "4x-UltraSharp.pth" } };
  await comfyRefused(url, unknown, "13", "model_name", /Value not in list: model_name: "4x-UltraSharp" \(not an upscale model of this server's --upscaler-dir\)/);
});
