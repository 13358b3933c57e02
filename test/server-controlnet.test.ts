/**
 * ControlNet in the server (`ssd1b serve --controlnet-dir DIR`): A1111's alwayson_scripts.controlnet
 * reproduces the diffusers fixture case `single` within 1 level; /controlnet/detect's canny equals
 * canny(); model_list, module_list, version; unknown models or modules, images that are not images,
 * a missing image, a net that does not fit the UNet and bad fields are 400s naming the problem, and
 * the server stays up after each; the other APIs' `controlnets` field gives the same image.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { serveTinyModel } from "./helpers/served-model.js";
import { boxPhoto, synthComponentFolder } from "./helpers/controlnet-folder.js";
import { stopChildren } from "./helpers/child-processes.js";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NO_FIXTURES, fixture, openFixture, levelDiff } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";
import { canny } from "../src/image/canny.js";
import { FileStore } from "../src/server/file-store.js";
import { ControlNetLibrary } from "../src/server/controlnet-library.js";
import { cannyModule, pixelPerfectResolution } from "../src/server/controlnet-units.js";
import { spawnSync } from "node:child_process";
import { PROJECT_ROOT } from "./helpers/fixtures.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";
import { RedisQueue } from "../src/server/redis-queue.js";
import { startRedisWorker } from "../src/server/redis-worker.js";
import type { JobSpec } from "../src/server/job.js";

/** In `tmp`: a diffusers folder (net A), a lone file with its config beside it (net B), a net for another text encoder. */
function controlNetDir(tmp: string, netDir: string): ControlNetLibrary {
  synthComponentFolder(join(netDir, "canny-a"), CN("controlnet", "config.json"));
  const b = synthComponentFolder(join(tmp, "b"), CN("controlnet-b", "config.json"));
  copyFileSync(join(b, "diffusion_pytorch_model.safetensors"), join(netDir, "lone-b.safetensors"));
  copyFileSync(CN("controlnet-b", "config.json"), join(netDir, "lone-b.json"));
  const bad = JSON.parse(readFileSync(CN("controlnet", "config.json"), "utf8"));
  bad.cross_attention_dim = 32;
  mkdirSync(join(netDir, "other-encoder"));
  writeFileSync(join(netDir, "other-encoder", "config.json"), JSON.stringify(bad));
  synthModel(join(netDir, "other-encoder"), "fp32");
  return new ControlNetLibrary(netDir);
}

const served = serveTinyModel("server-controlnet-", {
  skip: NO_FIXTURES, queueSize: 4,
  setup: (tmp) => { const controlnets = controlNetDir(tmp, netDir); return { queue: { controlnets }, server: { controlnets } }; },
});
const tmp = served.tmp;
const netDir = join(tmp, "controlnets");

const CN = (...p: string[]) => fixture("controlnet", "tiny-ssd", ...p);
const SINGLE = { prompt: "An astronaut riding a green horse", negative_prompt: "ugly, blurry, poor quality", sampler_name: "Euler", seed: 0, steps: 4, cfg_scale: 5, width: 32, height: 32 };

/** A stored [1, 3, H, W] uint8/255 tensor as an 8-bit image. */
function tensorImage(data: Float32Array, h: number, w: number): RgbImage {
  const img: RgbImage = { width: w, height: h, data: new Uint8Array(w * h * 3) };
  for (let i = 0; i < w * h; i++) for (let c = 0; c < 3; c++) img.data[3 * i + c] = Math.round(data[c * w * h + i] * 255);
  return img;
}

const post = (path: string, body: unknown) => fetch(served.server.url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const controlPng = () => encodePng(tensorImage(openFixture("controlnet", "tiny-ssd", "cases.safetensors").float32("single.control_image"), 32, 32)).toString("base64");

async function expect400(path: string, body: unknown, re: RegExp): Promise<void> {
  const r = await post(path, body);
  const out = await r.json() as { error?: { message: string } };
  assert.equal(r.status, 400, JSON.stringify(out));
  assert.match(out.error!.message, re);
  assert.equal((await fetch(served.server.url + "/health")).status, 200, "the server stays up");
}

test("server controlnet: alwayson_scripts reproduces the fixture case single within 1 level", { skip: NO_FIXTURES }, async (t) => {
  const r = await post("/sdapi/v1/txt2img", {
    ...SINGLE,
    alwayson_scripts: { controlnet: { args: [
      { enabled: true, image: `data:image/png;base64,${controlPng()}`, module: "none", model: "canny-a [0123abcd]", weight: 1, guidance_start: 0, guidance_end: 1, control_mode: "Balanced", resize_mode: "Crop and Resize", pixel_perfect: false, processor_res: -1, threshold_a: -1, threshold_b: -1, low_vram: false },
      { enabled: false, image: "not looked at", model: "nonexistent" },
    ] } },
  });
  const out = await r.json() as { images: string[]; info: string; error?: { message: string } };
  assert.equal(r.status, 200, out.error?.message);
  assert.match(JSON.parse(out.info).infotexts[0], /ControlNet 0: "Module: none, Model: canny-a, Weight: 1, Resize Mode: Crop and Resize, Guidance Start: 0, Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced"/);
  const d = levelDiff(Buffer.from(out.images[0], "base64"), openFixture("controlnet", "tiny-ssd", "cases.safetensors").float32("single.images"));
  t.diagnostic(`single through alwayson_scripts: ${d.toFixed(3)} levels`);
  assert.ok(d <= 1, `${d} levels`);
  // the same unit through the OpenAI route's controlnets field
  const o = await post("/v1/images/generations", {
    prompt: SINGLE.prompt, negative_prompt: SINGLE.negative_prompt, scheduler: "Euler", seed: 0, steps: 4, guidance_scale: 5, size: "32x32",
    controlnets: [{ name: "canny-a", image: controlPng(), module: "none", scale: 1, start: 0, end: 1 }],
  });
  const oj = await o.json() as { data: { b64_json: string }[]; error?: { message: string } };
  assert.equal(o.status, 200, oj.error?.message);
  assert.ok(levelDiff(Buffer.from(oj.data[0].b64_json, "base64"), openFixture("controlnet", "tiny-ssd", "cases.safetensors").float32("single.images")) <= 1);
});

test("server controlnet: model_list, module_list, version; detect's canny equals canny()", { skip: NO_FIXTURES }, async () => {
  assert.deepEqual(await (await fetch(served.server.url + "/controlnet/model_list")).json(), { model_list: ["canny-a", "lone-b", "other-encoder"] });
  const modules = await (await fetch(served.server.url + "/controlnet/module_list")).json() as { module_list: string[] };
  assert.deepEqual(modules.module_list, ["none", "canny"]);
  assert.deepEqual(await (await fetch(served.server.url + "/controlnet/version")).json(), { version: 2 });
  const img = boxPhoto();
  const r = await post("/controlnet/detect", { controlnet_module: "canny", controlnet_input_images: [encodePng(img).toString("base64")], controlnet_processor_res: 24, controlnet_threshold_a: 100, controlnet_threshold_b: 200 });
  const out = await r.json() as { images: string[]; info: string };
  assert.equal(r.status, 200, JSON.stringify(out));
  const same = (a: RgbImage, b: RgbImage) => { assert.deepEqual([a.width, a.height], [b.width, b.height]); assert.ok(Buffer.from(a.data).equals(Buffer.from(b.data))); };
  same(decodePng(Buffer.from(out.images[0], "base64")), canny(img, 100, 200));
  // the default processor_res (512) resizes the short side to 512 first
  const big = await (await post("/controlnet/detect", { controlnet_module: "canny", controlnet_input_images: [encodePng(img).toString("base64")] })).json() as { images: string[] };
  const bigImg = decodePng(Buffer.from(big.images[0], "base64"));
  assert.deepEqual([bigImg.width, bigImg.height], [683, 512]);
  same(bigImg, cannyModule(img, 100, 200, 512));
  assert.equal(pixelPerfectResolution({ width: 32, height: 24 }, { width: 64, height: 64 }, "Crop and Resize"), 64);
  assert.equal(pixelPerfectResolution({ width: 32, height: 24 }, { width: 64, height: 64 }, "Resize and Fill"), 48);
});

test("server controlnet: canny module and the lone-file net run; bad requests are 400s naming the problem", { skip: NO_FIXTURES }, async () => {
  const img = encodePng(boxPhoto()).toString("base64");
  const r = await post("/sdapi/v1/txt2img", { ...SINGLE, steps: 2, alwayson_scripts: { ControlNet: { args: [
    { input_image: img, module: "canny", model: "canny-a", threshold_a: 100, threshold_b: 200, weight: 0.8, control_mode: 2 },
    { image: controlPng(), model: "lone-b", weight: 0.4, control_mode: "ControlNet is more important" },
  ] } } });
  assert.equal(r.status, 200, JSON.stringify(await r.clone().json()));
  // no size: the model's (32x32), the 32x24 image cropped to it; img2img: a unit without an image takes the init image
  const noSize = { prompt: "a box", steps: 1, seed: 3 };
  const c = await post("/sdapi/v1/txt2img", { ...noSize, alwayson_scripts: { controlnet: { args: [{ image: img, model: "canny-a", module: "canny", pixel_perfect: true }] } } });
  const cj = await c.json() as { images: string[] };
  assert.equal(c.status, 200, JSON.stringify(cj));
  assert.deepEqual([decodePng(Buffer.from(cj.images[0], "base64")).width, decodePng(Buffer.from(cj.images[0], "base64")).height], [32, 32]);
  const i2i = await post("/sdapi/v1/img2img", { ...noSize, init_images: [controlPng()], denoising_strength: 1, alwayson_scripts: { controlnet: { args: [{ model: "canny-a" }] } } });
  assert.equal(i2i.status, 200, JSON.stringify(await i2i.clone().json()));
  await expect400("/sdapi/v1/txt2img", { ...noSize, alwayson_scripts: { controlnet: { args: [{ image: img, model: "canny-a", resize_mode: "Resize and Fill" }] } } }, /"Resize and Fill" is not supported when the control image's aspect ratio \(32x24\) differs/);
  await expect400("/sdapi/v1/txt2img", { ...noSize, alwayson_scripts: { controlnet: { args: [{ model: "canny-a" }] } } }, /needs a control image/);
  const unit = { image: controlPng(), module: "none", model: "canny-a" };
  const a1111 = (u: Record<string, unknown>) => ({ ...SINGLE, steps: 1, alwayson_scripts: { controlnet: { args: [{ ...unit, ...u }] } } });
  await expect400("/sdapi/v1/txt2img", a1111({ model: "no-such-net" }), /unknown ControlNet model "no-such-net".*available: canny-a, lone-b, other-encoder/);
  await expect400("/sdapi/v1/txt2img", a1111({ module: "depth_midas" }), /unknown ControlNet module "depth_midas"/);
  await expect400("/sdapi/v1/txt2img", a1111({ image: Buffer.from("not an image").toString("base64") }), /alwayson_scripts\.controlnet\.args\[0\]\.image/);
  await expect400("/sdapi/v1/txt2img", a1111({ control_mode: "My prompt is more important" }), /cannot be reproduced here/);
  await expect400("/sdapi/v1/txt2img", a1111({ guidance_start: 0.8, guidance_end: 0.2 }), /guidance_start 0.8 must be below/);
  await expect400("/sdapi/v1/txt2img", a1111({ weight: "strong" }), /weight must be a number/);
  await expect400("/sdapi/v1/txt2img", a1111({ resize_mode: "Stretch" }), /resize_mode must be one of/);
  await expect400("/sdapi/v1/txt2img", a1111({ union_control_type: "Canny" }), /union_control_type: unknown ControlNet field/);
  await expect400("/sdapi/v1/txt2img", { ...SINGLE, alwayson_scripts: { controlnet: { args: [unit] }, adetailer: { args: [] } } }, /"adetailer"/);
  await expect400("/sdapi/v1/txt2img", a1111({ model: "other-encoder" }), /ControlNet "other-encoder".*cross_attention_dim is 32, the UNet's is 64/);
  await expect400("/v1/jobs", { prompt: "x", controlnets: [{ name: "canny-a", module: "none" }] }, /controlnets\[0\]\.image: the ControlNet needs a control image/);
  await expect400("/v1/ssd-1b", { prompt: "x", controlnets: [{ name: "canny-a", image: "@@@" }] }, /controlnets\[0\]\.image must be a base64/);
  await expect400("/controlnet/detect", { controlnet_module: "openpose", controlnet_input_images: [img] }, /unknown module "openpose"/);
  await expect400("/controlnet/detect", { controlnet_module: "canny", controlnet_input_images: ["bm9wZQ=="] }, /controlnet_input_images\[0\]/);
});

test("cli serve/worker --controlnet-dir: a missing folder is a usage error; the help names the flag", { skip: NO_FIXTURES }, () => {
  const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
  for (const cmd of ["serve", "worker"]) {
    const r = spawnSync(process.execPath, [CLI, cmd, "--queue", "redis://127.0.0.1:1", "--controlnet-dir", join(tmp, "nowhere")], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--controlnet-dir .*nowhere: no such folder/);
    const help = spawnSync(process.execPath, [CLI, cmd, "--help"], { encoding: "utf8", timeout: 30000 });
    assert.match(help.stdout, /--controlnet-dir DIR +ControlNets/, `${cmd} --help: ${help.stderr}`);
  }
});

test("server controlnet: through Redis the job spec carries the units and the worker opens the net from its own --controlnet-dir", { skip: NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found"), timeout: 120_000 }, async () => {
  const { url: queueUrl, process: redis } = await startRedisServer();
  try {
    const rq = await RedisQueue.connect(queueUrl, { maxQueue: 4, files: new FileStore(), model: "tiny-ssd" });
    const worker = await startRedisWorker({ url: queueUrl, pipe: served.pipe, controlnets: new ControlNetLibrary(netDir) });
    try {
      const unit = { name: "canny-a", image: controlPng(), module: "none" as const, thresholdA: 100, thresholdB: 200, weight: 1, guidanceStart: 0, guidanceEnd: 1, controlMode: 0 as const, resizeMode: "Crop and Resize" as const, pixelPerfect: false, processorRes: -1 };
      const spec: JobSpec = { prompt: SINGLE.prompt, negativePrompt: SINGLE.negative_prompt, steps: 4, guidanceScale: 5, seed: 0, scheduler: "Euler", width: 32, height: 32, batchSize: 1, iterations: 1, controlnets: [unit] };
      const out = await (await rq.submit(spec)).done;
      assert.ok(levelDiff(out.images[0], openFixture("controlnet", "tiny-ssd", "cases.safetensors").float32("single.images")) <= 1, "worker image vs single");
      const missing = await rq.submit({ ...spec, controlnets: [{ ...unit, name: "gone" }] });
      await assert.rejects(missing.done, (e: { status: number; message: string }) => e.status === 400 && /unknown ControlNet model "gone"/.test(e.message));
    } finally {
      await worker.close();
      await rq.close();
    }
  } finally {
    await stopChildren([redis]);
  }
});
