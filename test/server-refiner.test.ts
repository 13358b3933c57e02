/**
 * The server's refiner: A1111's refiner_checkpoint / refiner_switch_at run the base to the switch and
 * a served refiner from there, as recipes/refiner.ts does in the library (pixel for pixel), for
 * txt2img, img2img and inpainting; the infotext names it; what it is not combined with is a 400 naming the field.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { NO_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { postJson, txt2imgFirst } from "./helpers/a1111-client.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { tinyRefinerIn } from "./helpers/tiny-refiner.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { buildCatalog } from "../src/server/model-catalog.js";
import { generateRefined, img2imgRefined, inpaintRefined } from "../src/recipes/refiner.js";
import { a1111Inpaint } from "../src/recipes/a1111-inpaint.js";
import { generateHires } from "../src/recipes/hires-fix.js";
import { encodePng } from "../src/image/png.js";
import { comfyRefused, comfyUpload, runComfyPrompt } from "./helpers/comfy-client.js";
import { keepLast } from "../src/server/comfyui/sampler-node.js";
import { comfySampler } from "../src/server/comfyui/samplers.js";

const loads: string[] = [];
const served = serveTinyModel("server-refiner-", {
  skip: NO_FIXTURES,
  setup: (tmp) => {
    const catalog = buildCatalog([tinyModelIn(tmp, "tiny-ssd"), tinyRefinerIn(tmp)]);
    return { queue: { switching: { models: catalog, load: async (m) => { loads.push(m.name); return { pipe: await StableDiffusionXLPipeline.fromPretrained(m.source) }; } } } };
  },
});
let base: StableDiffusionXLPipeline | undefined, refiner: StableDiffusionXLPipeline | undefined;
after(async () => { await base?.release(); await refiner?.release(); });
const library = async () => {
  base ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(served.tmp, "tiny-ssd"));
  refiner ??= await StableDiffusionXLPipeline.fromPretrained(tinyRefinerIn(served.tmp));
  return { base, refiner };
};

const request = { prompt: "a lighthouse", negative_prompt: "fog", steps: 6, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5, seed: 4 };
const call = { prompt: "a lighthouse", negativePrompt: "fog", numInferenceSteps: 6, guidanceScale: 5, width: 32, height: 32, seeds: [4], scheduler: "Euler" };

test("A1111 txt2img with refiner_checkpoint: the library's base + refiner image, the refiner opened for the job, named in the infotext", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { base: b, refiner: r } = await library();
  const want = await generateRefined(b, r, call, { switchAt: 0.3 });
  const got = await txt2imgFirst(served.server.url, { ...request, refiner_checkpoint: "tiny-refiner", refiner_switch_at: 0.3 });
  assert.ok(levelDiff(got.image, want.images.data) <= 1, `differs from the library by ${levelDiff(got.image, want.images.data)} levels`);
  assert.deepEqual(loads, ["tiny-refiner"]);
  assert.match(got.info.infotexts[0], /Refiner: tiny-refiner, Refiner switch at: 0.3/);
  assert.equal(got.info.extra_generation_params["Refiner switch at"], 0.3);
  assert.equal(got.info.sd_model_name, "tiny-ssd", "the base stays the loaded model");
  // the refiner changes the image: without it, the base's own
  const plain = await txt2imgFirst(served.server.url, { ...request, refiner_checkpoint: "None" });
  const alone = await b.generate(call);
  assert.ok(levelDiff(plain.image, alone.images.data) <= 1);
  assert.ok(levelDiff(plain.image, want.images.data) > 1, "the refined image is another image");
  assert.doesNotMatch(plain.info.infotexts[0], /Refiner/);
  // the default switch is the web UI's 0.8; the loaded model as its own refiner changes nothing (as A1111)
  const byDefault = await txt2imgFirst(served.server.url, { ...request, refiner_checkpoint: "tiny-refiner [0123]" });
  assert.ok(levelDiff(byDefault.image, (await generateRefined(b, r, call, { switchAt: 0.8 })).images.data) <= 1);
  const self = await txt2imgFirst(served.server.url, { ...request, refiner_checkpoint: "tiny-ssd" });
  assert.ok(levelDiff(self.image, alone.images.data) <= 1);
  assert.deepEqual(loads, ["tiny-refiner", "tiny-refiner"], "opened per job, not for the base itself");
});

test("A1111 img2img with refiner_checkpoint: the library's img2imgRefined", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { base: b, refiner: r } = await library();
  const rgb = { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256) };
  const { width: _w, height: _h, ...i2i } = call;
  const want = await img2imgRefined(b, r, { ...i2i, image: rgb, strength: 0.75 }, { switchAt: 0.5 });
  const res = await postJson(served.server.url, "/sdapi/v1/img2img", { ...request, init_images: [encodePng(rgb).toString("base64")], denoising_strength: 0.75, refiner_checkpoint: "tiny-refiner", refiner_switch_at: 0.5 });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json() as { images: string[] };
  assert.ok(levelDiff(Buffer.from(body.images[0], "base64"), want.images.data) <= 1);
});

test("A1111 inpainting with refiner_checkpoint: a1111Inpaint running the library's inpaintRefined (blur, only masked, overlay kept)", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { base: b, refiner: r } = await library();
  const rgb = { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256) };
  const mask = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
  for (let y = 8; y < 20; y++) mask.data.fill(255, (y * 32 + 6) * 3, (y * 32 + 22) * 3);
  const { width: _w, height: _h, ...i2i } = call;
  const settings = { maskBlurX: 2, maskBlurY: 2, inpaintFullRes: true, inpaintFullResPadding: 4 };
  const want = await a1111Inpaint(b, { ...i2i, image: rgb, maskImage: mask, strength: 0.9, settings }, (o) => inpaintRefined(b, r, o, { switchAt: 0.5 }));
  const body = {
    ...request, init_images: [encodePng(rgb).toString("base64")], mask: encodePng(mask).toString("base64"), denoising_strength: 0.9,
    mask_blur: 2, inpaint_full_res: true, inpaint_full_res_padding: 4, inpainting_fill: 1, refiner_checkpoint: "tiny-refiner", refiner_switch_at: 0.5,
  };
  const res = await postJson(served.server.url, "/sdapi/v1/img2img", body);
  assert.equal(res.status, 200, await res.clone().text());
  const got = await res.json() as { images: string[]; info: string };
  assert.ok(levelDiff(Buffer.from(got.images[0], "base64"), want.images.data) <= 1, `differs from the library by ${levelDiff(Buffer.from(got.images[0], "base64"), want.images.data)} levels`);
  assert.match(JSON.parse(got.info).infotexts[0], /Mask blur: 2.*Refiner: tiny-refiner, Refiner switch at: 0.5/);
  // the refiner ran: the base's inpainting alone is another image
  const alone = await a1111Inpaint(b, { ...i2i, image: rgb, maskImage: mask, strength: 0.9, settings });
  assert.ok(levelDiff(Buffer.from(got.images[0], "base64"), alone.images.data) > 1);
});

test("A1111 txt2img with the hires fix and a refiner: the first pass is the base's, the refiner takes over in the second pass (A1111's hires_fix_refiner_pass)", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { base: b, refiner: r } = await library();
  const hires = { scale: 1.5, strength: 0.6, upscaler: "Latent" };
  const want = await generateHires(b, call, { ...hires, secondPass: (o) => img2imgRefined(b, r, o, { switchAt: 0.7 }) });
  const got = await txt2imgFirst(served.server.url, { ...request, enable_hr: true, hr_scale: 1.5, denoising_strength: 0.6, hr_upscaler: "Latent", refiner_checkpoint: "tiny-refiner", refiner_switch_at: 0.7 });
  assert.ok(levelDiff(got.image, want.images.data) <= 1, `differs from the library by ${levelDiff(got.image, want.images.data)} levels`);
  assert.match(got.info.infotexts[0], /Hires upscale: 1.5.*Refiner: tiny-refiner, Refiner switch at: 0.7/);
  // the refiner ran: the hires fix alone is another image
  const alone = await generateHires(b, call, hires);
  assert.ok(levelDiff(got.image, alone.images.data) > 1);
});

test("A1111 refiner: an unknown checkpoint, a switch outside (0, 1) and the combinations not served are 400s naming the field", { skip: NO_FIXTURES }, async () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ refiner_checkpoint: "sd_xl_refiner_1.0" }, "refiner_checkpoint", /is not served here; this server serves "tiny-ssd", "tiny-refiner"/],
    [{ refiner_checkpoint: "tiny-refiner", refiner_switch_at: 1 }, "refiner_switch_at", /fraction in \(0, 1\)/],
    [{ refiner_checkpoint: "tiny-refiner", refiner_switch_at: 1.5 }, "refiner_switch_at", /refiner_switch_at/],
    [{ refiner_checkpoint: "tiny-refiner", enable_hr: true, hr_scale: 2, override_settings: { hires_fix_refiner_pass: "both passes" } }, "override_settings.hires_fix_refiner_pass", /must be "second pass"/],
  ];
  for (const [extra, field, message] of cases) {
    const r = await postJson(served.server.url, "/sdapi/v1/txt2img", { ...request, ...extra });
    const text = await r.text();
    assert.equal(r.status, 400, text);
    const { error } = JSON.parse(text) as { error: { message: string; param: string } };
    assert.match(error.message, message);
    assert.equal(error.param, field);
  }
});

/** ComfyUI's SDXL example graph: base KSamplerAdvanced to end_at_step, the refiner's from there, the refiner's VAE. */
function refinerGraph(o: { switchStep: number; ascore?: number; refinerSteps?: number; refinerText?: string; leftover?: string }): Record<string, any> {
  const sampler = { cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", steps: 6 };
  return {
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    12: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-refiner" } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: "a lighthouse", clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["4", 1] } },
    15: o.ascore === undefined
      ? { class_type: "CLIPTextEncode", inputs: { text: o.refinerText ?? "a lighthouse", clip: ["12", 1] } }
      : { class_type: "CLIPTextEncodeSDXLRefiner", inputs: { ascore: o.ascore, width: 32, height: 32, text: o.refinerText ?? "a lighthouse", clip: ["12", 1] } },
    16: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["12", 1] } },
    10: { class_type: "KSamplerAdvanced", inputs: { ...sampler, add_noise: "enable", noise_seed: 4, start_at_step: 0, end_at_step: o.switchStep, return_with_leftover_noise: o.leftover ?? "enable", model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
    11: { class_type: "KSamplerAdvanced", inputs: { ...sampler, steps: o.refinerSteps ?? 6, add_noise: "disable", noise_seed: 0, start_at_step: o.switchStep, end_at_step: 10000, return_with_leftover_noise: "disable", model: ["12", 0], positive: ["15", 0], negative: ["16", 0], latent_image: ["10", 0] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["11", 0], vae: ["12", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
  };
}

const comfyImage = (prompt: unknown) => runComfyPrompt(served.server.url, prompt);

test("ComfyUI's base + refiner graph (KSamplerAdvanced to end_at_step, the refiner's from start_at_step): the library's recipe with that switch step", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { base: b, refiner: r } = await library();
  const scheduler = comfySampler("euler", "ddim_uniform").scheduler;
  const libraryCall = { ...call, seeds: undefined, seed: 4, scheduler };
  const want = await generateRefined(b, r, libraryCall, { switchStep: 2, aestheticScore: 7 });
  const got = await comfyImage(refinerGraph({ switchStep: 2, ascore: 7 }));
  assert.ok(levelDiff(got, want.images.data) <= 1, `differs from the library by ${levelDiff(got, want.images.data)} levels`);
  // the refiner from step 1 of 6 (most of the schedule: its effect is visible even with synth weights)
  const plainText = await comfyImage(refinerGraph({ switchStep: 1 }));
  assert.ok(levelDiff(plainText, (await generateRefined(b, r, libraryCall, { switchStep: 1 })).images.data) <= 1, "CLIPTextEncode: the default scores");
  assert.ok(levelDiff(plainText, (await b.generate(libraryCall)).images.data) > 1, "the refiner changes the image");
});

test("ComfyUI refiner graphs from an image: VAEEncode (img2img from start_at_step) and SetLatentNoiseMask (inpainting) are the library's img2imgRefined and inpaintRefined", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { base: b, refiner: r } = await library();
  const rgb = { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256) };
  const maskRgb = { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (Math.floor(i / 3) % 32 < 16 ? 255 : 0)) };
  const photo = await comfyUpload(served.server.url, encodePng(rgb), "refiner-photo.png");
  const maskName = await comfyUpload(served.server.url, encodePng(maskRgb), "refiner-mask.png");
  const { width: _w, height: _h, ...i2i } = { ...call, seeds: undefined, seed: 4, scheduler: comfySampler("euler", "ddim_uniform").scheduler };
  const fromImage = (latent: Record<string, any>, startAt: number, switchStep: number) => {
    const g = refinerGraph({ switchStep });
    Object.assign(g, latent, { 20: { class_type: "LoadImage", inputs: { image: photo } }, 21: { class_type: "VAEEncode", inputs: { pixels: ["20", 0], vae: ["4", 2] } } });
    g[10].inputs.start_at_step = startAt;
    return g;
  };
  // img2img: the base from step 2 of 6 to step 4, the refiner to the end
  const img2img = await comfyImage(fromImage({ 5: { class_type: "VAEEncode", inputs: { pixels: ["20", 0], vae: ["4", 2] } } }, 2, 4));
  const wantI2i = await img2imgRefined(b, r, { ...i2i, image: rgb, strength: keepLast(4, 6) }, { switchStep: 4 });
  assert.ok(levelDiff(img2img, wantI2i.images.data) <= 1, `differs from the library by ${levelDiff(img2img, wantI2i.images.data)} levels`);
  assert.ok(levelDiff(img2img, (await b.img2img({ ...i2i, image: rgb, strength: keepLast(4, 6) })).images.data) > 1, "the refiner ran");
  // inpainting: the noise mask goes on to the refiner's sampler (as ComfyUI's latent dict carries it)
  const noiseMask = { 5: { class_type: "SetLatentNoiseMask", inputs: { samples: ["21", 0], mask: ["22", 0] } }, 22: { class_type: "LoadImageMask", inputs: { image: maskName, channel: "red" } } };
  const inpainted = await comfyImage(fromImage(noiseMask, 0, 3));
  const wantInpaint = await inpaintRefined(b, r, { ...i2i, image: rgb, maskImage: maskRgb, strength: 1 }, { switchStep: 3 });
  assert.ok(levelDiff(inpainted, wantInpaint.images.data) <= 1, `differs from the library by ${levelDiff(inpainted, wantInpaint.images.data)} levels`);
  assert.ok(levelDiff(inpainted, (await b.inpaint({ ...i2i, image: rgb, maskImage: maskRgb, strength: 1 })).images.data) > 1, "the refiner ran");
  // a base that starts where it should hand over is refused
  await comfyRefused(served.server.url, fromImage({ 5: { class_type: "VAEEncode", inputs: { pixels: ["20", 0], vae: ["4", 2] } } }, 4, 4), "10", "start_at_step", /must come before end_at_step 4/);
});

test("ComfyUI refiner graphs that are not one schedule split in two are refused, naming node and input", { skip: NO_FIXTURES }, async () => {
  const cases: [Record<string, any>, string, string, RegExp][] = [
    [refinerGraph({ switchStep: 2, refinerSteps: 8 }), "11", "steps", /must be the base's \(6\)/],
    [refinerGraph({ switchStep: 2, refinerText: "a castle" }), "15", "text", /the base's positive prompt/],
    [refinerGraph({ switchStep: 2, leftover: "disable" }), "10", "return_with_leftover_noise", /leftover/],
    [refinerGraph({ switchStep: 6 }), "10", "end_at_step", /between step 1 and 5/],
    [{ ...refinerGraph({ switchStep: 2 }), 12: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "sd_xl_refiner_1.0.safetensors" } } }, "12", "ckpt_name", /not in/],
  ];
  const mismatched = refinerGraph({ switchStep: 2 });
  mismatched[11].inputs.start_at_step = 3;
  cases.push([mismatched, "11", "start_at_step", /end_at_step 2/]);
  const lateFromNoise = refinerGraph({ switchStep: 3 });
  lateFromNoise[10].inputs.start_at_step = 1;
  cases.push([lateFromNoise, "10", "start_at_step", /needs an image to start from/]);
  for (const [prompt, node, input, message] of cases) {
    const r = await postJson(served.server.url, "/prompt", { prompt });
    const body = await r.json() as any;
    assert.equal(r.status, 400, JSON.stringify(body));
    const errors = body.node_errors[node]?.errors;
    assert.ok(errors, `node ${node} named: ${JSON.stringify(body)}`);
    assert.equal(errors[0].extra_info.input_name, input);
    assert.match(errors[0].details ?? errors[0].message, message);
  }
});
