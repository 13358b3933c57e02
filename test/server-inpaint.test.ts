/**
 * Inpainting through the server with the tiny synth model: A1111 img2img with a mask (mask_blur 0,
 * "original" fill, whole picture) gives the diffusers fixture's image (strength1_euler) inside the mask
 * and the original outside (A1111's final overlay), and what a1111Inpaint gives for the same PNGs, and so does the openai SDK's images.edit with an RGBA mask;
 * variations and the model list; bad masks and strengths are 400s naming the field, nothing is
 * queued or written, and the server goes on serving.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, HAVE_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { inpaintFixtureCase, type InpaintFixtureCase } from "./helpers/inpaint-case.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import OpenAI, { toFile } from "openai";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { inpaintInfoFields } from "../src/server/inpaint-info.js";
import { encodeRgbaPng } from "./helpers/png-rgba.js";
import { a1111Resize } from "../src/image/resize-modes.js";
import { a1111Inpaint } from "../src/recipes/a1111-inpaint.js";

/** A1111 settings that add nothing to diffusers' algorithm but the final overlay. */
const PLAIN = { maskBlurX: 0, maskBlurY: 0, inpaintingFill: 1, inpaintFullRes: false } as const;

const tmp = mkdtempSync(join(tmpdir(), "server-inpaint-"));
let pipe: StableDiffusionXLPipeline;
let server: RunningServer;
let files: FileStore;
let fx: InpaintFixtureCase;

before(async () => {
  if (!HAVE_FIXTURES) return;
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  files = new FileStore();
  server = await startServer({ queue: new LocalQueue(pipe, 4, files), files, host: "127.0.0.1", port: 0 });
  fx = inpaintFixtureCase("strength1_euler");
});

after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const post = (path: string, body: unknown) => fetch(server.url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

/** The fixture case as an A1111 inpainting request (settings that add nothing to diffusers' algorithm). */
const a1111Body = (extra: Record<string, unknown> = {}) => ({
  prompt: fx.prompt, negative_prompt: fx.negativePrompt, seed: fx.seed, steps: fx.steps, cfg_scale: fx.guidanceScale, sampler_name: "Euler",
  init_images: [fx.initPng.toString("base64")], mask: fx.maskPng.toString("base64"), denoising_strength: fx.strength,
  mask_blur: 0, inpainting_fill: 1, inpaint_full_res: false, inpaint_full_res_padding: 32, inpainting_mask_invert: 0, resize_mode: 0,
  width: fx.width, height: fx.height, ...extra,
});

test("A1111 img2img with a mask equals the diffusers fixture (strength1_euler) inside the mask, the original outside, and a1111Inpaint on the same PNGs", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const r = await post("/sdapi/v1/img2img", a1111Body());
  assert.equal(r.status, 200, await r.clone().text());
  const out = await r.json() as { images: string[]; info: string; parameters: Record<string, unknown> };
  const png = Buffer.from(out.images[0], "base64");
  // inside the mask diffusers' image; outside the original, pasted back by A1111's overlay
  assert.ok(levelDiff(png, fx.a1111Images) <= 1, `server vs the diffusers fixture: ${levelDiff(png, fx.a1111Images)} levels`);
  const lib = await a1111Inpaint(pipe, {
    prompt: fx.prompt, negativePrompt: fx.negativePrompt, seed: fx.seed, numInferenceSteps: fx.steps, guidanceScale: fx.guidanceScale,
    scheduler: "Euler", strength: fx.strength, image: decodePng(fx.initPng), maskImage: decodePng(fx.maskPng), settings: PLAIN,
  });
  assert.ok(levelDiff(png, lib.images.data) <= 1, "server vs a1111Inpaint");
  const info = JSON.parse(out.info);
  assert.equal(info.is_using_inpainting_conditioning, false, "a 4-channel UNet: no inpainting conditioning (as A1111 reports for such models)");
  assert.equal(info.denoising_strength, 1);
  assert.deepEqual(info.extra_generation_params, { "Masked content": "original" });
  assert.equal(out.parameters.mask, null, "the mask is not echoed back (as A1111)");
  assert.equal(out.parameters.init_images, null);
  assert.match(decodePng(png).text.parameters, /Denoising strength: 1, Masked content: original$/);
});

test("A1111 inpainting defaults and info fields: denoising_strength 0.75, Mask blur, only masked", { skip: NO_FIXTURES }, () => {
  assert.deepEqual(inpaintInfoFields({ mask: "", invertMask: false, maskBlurX: 4, maskBlurY: 4, inpaintingFill: 1, inpaintFullRes: false, inpaintFullResPadding: 32 }),
    { "Mask blur": 4, "Masked content": "original" });
  assert.deepEqual(inpaintInfoFields({ mask: "", invertMask: true, maskBlurX: 2, maskBlurY: 6, inpaintingFill: 0, inpaintFullRes: true, inpaintFullResPadding: 32 }),
    { "Mask blur X": 2, "Mask blur Y": 6, "Mask mode": "Inpaint not masked", "Masked content": "fill", "Inpaint area": "Only masked", "Masked area padding": 32 });
});

test("A1111 img2img fits the init image and the mask to width x height by resize_mode (a1111Resize), as A1111", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  // a 48x40 init image cropped and resized to 32x32; a 16x16 mask just resized to it
  const big = a1111Resize(fx.init, 48, 40, 0) as RgbImage;
  const crop = await post("/sdapi/v1/img2img", a1111Body({ init_images: [encodePng(big).toString("base64")], mask: undefined, resize_mode: 1, denoising_strength: 0.5, steps: 4 }));
  assert.equal(crop.status, 200, await crop.clone().text());
  const cropped = await crop.json() as { images: string[]; parameters: Record<string, unknown> };
  const lib = await pipe.img2img({ prompt: fx.prompt, negativePrompt: fx.negativePrompt, seed: fx.seed, numInferenceSteps: 4, scheduler: "Euler", strength: 0.5, image: a1111Resize(big, 32, 32, 1) as RgbImage });
  assert.ok(levelDiff(Buffer.from(cropped.images[0], "base64"), lib.images.data) <= 1, "crop and resize");
  assert.deepEqual([cropped.parameters.width, cropped.parameters.height], [32, 32]);

  const small = a1111Resize(fx.mask, 16, 16, 0) as RgbImage;
  const r = await post("/sdapi/v1/img2img", a1111Body({ mask: encodePng(small).toString("base64"), steps: 2 }));
  assert.equal(r.status, 200, await r.clone().text());
  const masked = await r.json() as { images: string[] };
  const ref = await a1111Inpaint(pipe, {
    prompt: fx.prompt, negativePrompt: fx.negativePrompt, seed: fx.seed, numInferenceSteps: 2, scheduler: "Euler", strength: 1,
    image: fx.init, maskImage: a1111Resize(small, 32, 32, 0) as RgbImage, settings: PLAIN,
  });
  assert.ok(levelDiff(Buffer.from(masked.images[0], "base64"), ref.images.data) <= 1, "a 16x16 mask fitted to the 32x32 image");

  // an RGBA mask with transparency is read from its alpha (A1111's create_binary_mask): opaque = repaint
  const alpha = new Uint8Array(32 * 32 * 4);
  for (let i = 0; i < 32 * 32; i++) alpha[4 * i + 3] = fx.mask.data[3 * i];
  const byAlpha = await post("/sdapi/v1/img2img", a1111Body({ mask: encodeRgbaPng({ width: 32, height: 32, data: alpha }).toString("base64") }));
  assert.equal(byAlpha.status, 200);
  assert.ok(levelDiff(Buffer.from((await byAlpha.json() as { images: string[] }).images[0], "base64"), fx.a1111Images) <= 1, "the alpha mask gives the fixture's image");
});

test("A1111 inpainting with A1111's API defaults (mask blur 4, fill, only masked, padding 0) runs and says so in its info", { skip: NO_FIXTURES, timeout: 60_000 }, async () => {
  const r = await post("/sdapi/v1/img2img", { prompt: fx.prompt, seed: 1, steps: 2, init_images: [fx.initPng.toString("base64")], mask: fx.maskPng.toString("base64") });
  assert.equal(r.status, 200, await r.clone().text());
  const out = await r.json() as { images: string[]; info: string };
  assert.deepEqual(JSON.parse(out.info).extra_generation_params, { "Mask blur": 4, "Masked content": "fill", "Inpaint area": "Only masked", "Masked area padding": 0 });
  assert.match(decodePng(Buffer.from(out.images[0], "base64")).text.parameters, /Denoising strength: 0.75, Mask blur: 4, Masked content: fill, Inpaint area: Only masked, Masked area padding: 0$/);
});

test("A1111 img2img without denoising_strength uses A1111's 0.75", { skip: NO_FIXTURES, timeout: 60_000 }, async () => {
  const { denoising_strength: _, ...body } = a1111Body({ steps: 4 });
  const r = await post("/sdapi/v1/img2img", body);
  assert.equal(r.status, 200, await r.clone().text());
  const out = await r.json() as { info: string; parameters: Record<string, unknown> };
  assert.equal(JSON.parse(out.info).denoising_strength, 0.75);
  assert.equal(out.parameters.denoising_strength, 0.75);
});

test("A1111 inpainting: bad masks, strengths and settings are 400s naming the field; nothing queued or written; the server goes on", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const black = encodePng({ width: fx.width, height: fx.height, data: new Uint8Array(fx.width * fx.height * 3) }).toString("base64");
  const white = encodePng({ width: fx.width, height: fx.height, data: new Uint8Array(fx.width * fx.height * 3).fill(255) }).toString("base64");
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ mask: black }, "mask", /all black: nothing to repaint/],
    [{ mask: white, inpainting_mask_invert: 1 }, "mask", /nothing to repaint/],
    [{ mask: "not an image at all!" }, "mask", /mask must be a base64-encoded PNG or JPEG/],
    [{ mask: Buffer.from("GIF89a not really").toString("base64") }, "mask", /mask/],
    [{ mask: 42 }, "mask", /mask must be a base64/],
    [{ denoising_strength: 0 }, "denoising_strength", /must be in \(0, 1\]/],
    [{ denoising_strength: 1.5 }, "denoising_strength", /must be in \[0, 1\]/],
    [{ inpainting_fill: 4 }, "inpainting_fill", /inpainting_fill must be in \[0, 3\]/],
    [{ mask_blur: -1 }, "mask_blur", /mask_blur must be in/],
    [{ mask_blur: 65 }, "mask_blur", /mask_blur must be in \[0, 64\]/],
    [{ mask_blur_x: "4" }, "mask_blur_x", /mask_blur_x must be an integer/],
    [{ inpaint_full_res: 1 }, "inpaint_full_res", /must be true or false/],
    [{ inpaint_full_res_padding: -5 }, "inpaint_full_res_padding", /must be in/],
    [{ inpainting_mask_invert: 2 }, "inpainting_mask_invert", /must be 0 or 1/],
    [{ initial_noise_multiplier: 0.5 }, "initial_noise_multiplier", /not supported: only 1/],
    [{ resize_mode: 3 }, "resize_mode", /latent upscale/],
    [{ resize_mode: 7 }, "resize_mode", /resize_mode must be in/],
    [{ mask_round: false }, "mask_round", /mask_round/],
  ];
  cases.push([{ width: 36 }, "width", /not a multiple of 8/]);
  const before = { files: files.size, jobs: server.state.queue.counts() };
  for (const [extra, param, message] of cases) {
    const r = await post("/sdapi/v1/img2img", a1111Body(extra));
    const body = await r.json() as { error: { message: string; param: string | null } };
    assert.equal(r.status, 400, `${JSON.stringify(extra).slice(0, 80)}: ${JSON.stringify(body)}`);
    assert.equal(body.error.param, param, JSON.stringify(body));
    assert.match(body.error.message, message);
  }
  assert.equal(files.size, before.files, "nothing written");
  assert.deepEqual(server.state.queue.counts(), before.jobs, "nothing queued");
  const txt = await post("/sdapi/v1/txt2img", { prompt: "x", mask: fx.maskPng.toString("base64") });
  assert.equal(txt.status, 400, "a mask on txt2img");
  const ok = await post("/sdapi/v1/img2img", a1111Body({ steps: 1 }));
  assert.equal(ok.status, 200, "a good request after the bad ones");
});

/** The fixture's init image with the mask's white area made fully transparent (OpenAI's way to mark it). */
function rgbaPng(rgb: RgbImage, transparentWhere: RgbImage | undefined): Buffer {
  const n = rgb.width * rgb.height;
  const data = new Uint8Array(4 * n);
  for (let i = 0; i < n; i++) {
    data.set(rgb.data.subarray(3 * i, 3 * i + 3), 4 * i);
    data[4 * i + 3] = transparentWhere && transparentWhere.data[3 * i] >= 128 ? 0 : 255;
  }
  return encodeRgbaPng({ width: rgb.width, height: rgb.height, data });
}

const client = () => new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "dummy", maxRetries: 0 });
const extras = () => ({ negative_prompt: fx.negativePrompt, seed: fx.seed, steps: fx.steps, guidance_scale: fx.guidanceScale, scheduler: "Euler" });

test("OpenAI images.edit (the real SDK, multipart) with an RGBA mask equals the diffusers fixture (inside the mask; the original outside); without a mask the image's own alpha is the area", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const mask = rgbaPng({ ...fx.mask, data: new Uint8Array(fx.mask.data.length) }, fx.mask);
  const res = await client().images.edit({
    image: await toFile(fx.initPng, "init.png", { type: "image/png" }), mask: await toFile(mask, "mask.png", { type: "image/png" }),
    prompt: fx.prompt, n: 1, size: `${fx.width}x${fx.height}` as "256x256", response_format: "b64_json", ...extras(),
  } as OpenAI.Images.ImageEditParamsNonStreaming);
  const png = Buffer.from(res.data![0].b64_json!, "base64");
  assert.ok(levelDiff(png, fx.a1111Images) <= 1, `edits vs the diffusers fixture: ${levelDiff(png, fx.a1111Images)} levels`);
  // the image carrying its own transparency, no mask, by url
  const own = await client().images.edit({
    image: await toFile(rgbaPng(fx.init, fx.mask), "own.png", { type: "image/png" }), prompt: fx.prompt, response_format: "url", ...extras(),
  } as OpenAI.Images.ImageEditParamsNonStreaming);
  const byUrl = Buffer.from(await (await fetch(own.data![0].url!)).arrayBuffer());
  assert.ok(levelDiff(byUrl, fx.a1111Images) <= 1, "the image's own alpha as the mask");
  // another size: the image and the mask are cropped and resized to it
  const bigger = await client().images.edit({
    image: await toFile(rgbaPng(fx.init, fx.mask), "own.png", { type: "image/png" }), prompt: fx.prompt, size: "48x32" as "256x256", ...extras(), steps: 1,
  } as OpenAI.Images.ImageEditParamsNonStreaming);
  assert.equal((bigger as { size?: string }).size, "48x32");
  assert.equal(decodePng(Buffer.from(bigger.data![0].b64_json!, "base64")).width, 48);
});

test("OpenAI edits, variations and models: bad uploads are 400s naming the field; variations are img2img at 0.75 with an empty prompt", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const c = client();
  const models = await c.models.list();
  assert.deepEqual(models.data.map((m) => [m.id, m.object, m.owned_by]), [["tiny-ssd", "model", "ssd1b"]]);
  assert.equal((await c.models.retrieve("tiny-ssd")).id, "tiny-ssd");
  await assert.rejects(c.models.retrieve("dall-e-3"), (e: { status?: number }) => e.status === 404);

  const v = await c.images.createVariation({ image: await toFile(fx.initPng, "v.png", { type: "image/png" }), n: 1, response_format: "b64_json", seed: 3, steps: 4 } as OpenAI.Images.ImageCreateVariationParams);
  const lib = await pipe.img2img({ prompt: "", seed: 3, numInferenceSteps: 4, strength: 0.75, image: fx.init });
  assert.ok(levelDiff(Buffer.from(v.data![0].b64_json!, "base64"), lib.images.data) <= 1, "variation = img2img, empty prompt, strength 0.75");

  const opaque = await toFile(fx.initPng, "opaque.png", { type: "image/png" });
  const bad: [() => Promise<unknown>, string, RegExp][] = [
    [async () => c.images.edit({ image: opaque, prompt: "x" }), "image", /no fully transparent pixels/],
    [async () => c.images.edit({ image: opaque, mask: await toFile(fx.initPng, "m.png"), prompt: "x" }), "mask", /no fully transparent pixels/],
    [async () => c.images.edit({ image: opaque, mask: await toFile(Buffer.from("not a png"), "m.png"), prompt: "x" }), "mask", /.+/],
    [async () => c.images.edit({ image: await toFile(Buffer.from("GIF89a"), "i.gif"), prompt: "x" }), "image", /.+/],
    [async () => c.images.edit({ image: opaque, mask: await toFile(rgbaPng({ width: 16, height: 16, data: new Uint8Array(768) }, { width: 16, height: 16, data: new Uint8Array(768).fill(255) }), "m.png"), prompt: "x" }), "mask", /the mask is 16x16 but the image is 32x32/],
    [async () => c.images.edit({ image: await toFile(rgbaPng(fx.init, fx.mask), "own.png"), prompt: "x", strength: 0 } as OpenAI.Images.ImageEditParamsNonStreaming), "strength", /must be in \(0, 1\]/],
    [async () => c.images.edit({ image: await toFile(rgbaPng(fx.init, fx.mask), "own.png"), prompt: "x", n: "two" } as unknown as OpenAI.Images.ImageEditParamsNonStreaming), "n", /n must be an integer/],
    [async () => c.images.edit({ image: await toFile(rgbaPng(fx.init, fx.mask), "own.png"), prompt: "x", size: "36x36" } as unknown as OpenAI.Images.ImageEditParamsNonStreaming), "size", /not a multiple of 8/],
    [async () => c.images.edit({ image: await toFile(rgbaPng(fx.init, fx.mask), "own.png"), prompt: "x", colour: "red" } as unknown as OpenAI.Images.ImageEditParamsNonStreaming), "colour", /unknown form field/],
    [async () => c.images.createVariation({ image: await toFile(Buffer.from("nope"), "v.png") }), "image", /.+/],
  ];
  const before = { files: files.size, jobs: server.state.queue.counts() };
  for (const [call, param, message] of bad) {
    await assert.rejects(call(), (e: { status?: number; error?: { param?: string; message?: string } }) => {
      assert.equal(e.status, 400, JSON.stringify(e.error));
      assert.equal(e.error?.param, param, JSON.stringify(e.error));
      assert.match(e.error?.message ?? "", message);
      return true;
    });
  }
  assert.equal(files.size, before.files, "nothing written");
  assert.deepEqual(server.state.queue.counts(), before.jobs, "nothing queued");

  // hostile multipart over plain HTTP: clear 400s and 413s; JSON where a form is due; the server goes on
  const raw = (type: string, body: string) => fetch(server.url + "/v1/images/edits", { method: "POST", headers: { "Content-Type": type }, body });
  const answers: [Response, number, RegExp][] = [
    [await raw("multipart/form-data; boundary=xx", "--xx\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhi"), 400, /not ended by a boundary/],
    [await raw("multipart/form-data", "--xx--"), 400, /no boundary/],
    [await raw("application/json", JSON.stringify({ prompt: "x" })), 400, /multipart\/form-data/],
    [await fetch(server.url + "/sdapi/v1/img2img", { method: "POST", headers: { "Content-Type": "multipart/form-data; boundary=xx" }, body: "--xx--" }), 415, /JSON/],
  ];
  for (const [r, status, message] of answers) {
    assert.equal(r.status, status);
    assert.match(((await r.json()) as { error: { message: string } }).error.message, message);
  }
  const big = await fetch(server.url + "/v1/images/variations", { method: "POST", headers: { "Content-Type": "multipart/form-data; boundary=xx" }, body: new Uint8Array(server.state.limits.maxBodyBytes + 1) });
  assert.equal(big.status, 413);
  await big.arrayBuffer();
  assert.equal((await fetch(server.url + "/health")).status, 200, "still serving");
});

test("Segmind /v1/ssd-img2img equals pipe.img2img; a URL image is a 400 (nothing fetched)", { skip: NO_FIXTURES, timeout: 60_000 }, async () => {
  const r = await post("/v1/ssd-img2img", { image: fx.initPng.toString("base64"), prompt: "a boat", seed: 5, num_inference_steps: 4, guidance_scale: 5, scheduler: "Euler", strength: 0.5, samples: 1, base64: false });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "image/png");
  const lib = await pipe.img2img({ prompt: "a boat", seed: 5, numInferenceSteps: 4, strength: 0.5, image: fx.init, scheduler: "Euler" });
  assert.ok(levelDiff(Buffer.from(await r.arrayBuffer()), lib.images.data) <= 1);
  const url = await post("/v1/ssd-img2img", { image: "https://example.com/a.png", prompt: "x" });
  assert.equal(url.status, 400);
  assert.match((await url.json() as { error: { message: string } }).error.message, /does not fetch URLs/);
});
