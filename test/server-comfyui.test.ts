/**
 * The ComfyUI API as its clients use it, against `ssd1b serve` with the tiny model:
 * - SillyTavern (src/endpoints/stable-diffusion.js and default/content/Default_Comfy_Workflow.json, read
 *   at f06443fe / 0980cdfe): GET /system_stats, the lists it reads from
 *   /object_info, its Default_Comfy_Workflow POSTed to /prompt as a bare string (text/plain), /history
 *   polled, the image from /view;
 * - Open WebUI (backend/open_webui/utils/images/comfyui.py, read at 02530d50): a WebSocket on /ws?clientId=, POST /prompt
 *   with client_id, waiting for `executing` with node null, then /history/{id} and /view;
 * and the images are diffusers' fixtures (basic, no_negative, lora_basic), img2img the library's.
 * Then the refusals a ComfyUI client gets (node_errors naming the node and input) and the queue controls.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { NO_FIXTURES, fixture, levelDiff, openFixture, diff } from "./helpers/fixtures.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import { generateHires } from "../src/recipes/hires-fix.js";
import type { RunningServer } from "../src/server/app.js";
import { startLocalServer } from "./helpers/local-server.js";
import { comfyUpload } from "./helpers/comfy-client.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { LoraLibrary } from "../src/server/lora-library.js";
import { compileWorkflow } from "../src/server/comfyui/workflow.js";
import { DEFAULT_LIMITS } from "../src/server/validation.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";
import { RedisQueue } from "../src/server/redis-queue.js";
import { startRedisWorker } from "../src/server/redis-worker.js";
import { FileStore } from "../src/server/file-store.js";
import { startServer } from "../src/server/app.js";
import { ControlNetLibrary } from "../src/server/controlnet-library.js";
import { synthComponentFolder } from "./helpers/controlnet-folder.js";
import { readFloat32, saveTensors, TensorStore } from "../src/safetensors/index.js";

const tmp = mkdtempSync(join(tmpdir(), "server-comfyui-"));
let pipe: StableDiffusionXLPipeline;
let server: RunningServer;
let url = "";

before(async () => {
  if (NO_FIXTURES) return;
  const loraDir = join(tmp, "loras");
  mkdirSync(loraDir);
  copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(loraDir, "astro-style.safetensors"));
  // the same UNet LoRA with text-encoder weights too
  const store = TensorStore.open(fixture("lora", "peft", "lora.safetensors"));
  saveTensors(join(loraDir, "te-style.safetensors"), {
    ...Object.fromEntries([...store.tensors].map(([k, e]) => [k, { dtype: "F32" as const, shape: e.shape, data: readFloat32(e) }])),
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { dtype: "F32", shape: [32, 2], data: new Float32Array(64).fill(0.3) },
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { dtype: "F32", shape: [2, 32], data: new Float32Array(64).fill(0.2) },
  });
  synthComponentFolder(join(tmp, "controlnets", "canny-a"), fixture("controlnet", "tiny-ssd", "controlnet", "config.json"));
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const loras = new LoraLibrary(loraDir), controlnets = new ControlNetLibrary(join(tmp, "controlnets"));
  server = await startLocalServer(pipe, { queueSize: 8, queue: { loras, controlnets }, server: { loras, controlnets } });
  url = server.url;
});

after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const cases = () => openFixture("pipeline", "tiny-ssd", "cases.safetensors");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson(path: string): Promise<any> {
  const r = await fetch(url + path);
  assert.equal(r.status, 200, `GET ${path}: ${await r.clone().text()}`);
  return r.json();
}

const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });

/** SillyTavern's Default_Comfy_Workflow.json with its placeholders filled in as SillyTavern does (JSON.stringify of each value). */
function sillyTavernWorkflow(v: { model: string; sampler: string; scheduler: string; steps: number; scale: number; seed: number; width: number; height: number; prompt: string; negative: string }): string {
  const template = JSON.stringify({
    3: { class_type: "KSampler", inputs: { cfg: "%scale%", denoise: 1, latent_image: ["5", 0], model: ["4", 0], negative: ["7", 0], positive: ["6", 0], sampler_name: "%sampler%", scheduler: "%scheduler%", seed: "%seed%", steps: "%steps%" } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "%model%" } },
    5: { class_type: "EmptyLatentImage", inputs: { batch_size: 1, height: "%height%", width: "%width%" } },
    6: { class_type: "CLIPTextEncode", inputs: { clip: ["4", 1], text: "%prompt%" } },
    7: { class_type: "CLIPTextEncode", inputs: { clip: ["4", 1], text: "%negative_prompt%" } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "Dechat", images: ["8", 0] } },
  });
  const fill: Record<string, unknown> = { prompt: v.prompt, negative_prompt: v.negative, seed: v.seed, model: v.model, sampler: v.sampler, scheduler: v.scheduler, steps: v.steps, scale: v.scale, width: v.width, height: v.height };
  let w = template;
  for (const [k, value] of Object.entries(fill)) w = w.replaceAll(`"%${k}%"`, JSON.stringify(value));
  return `{"prompt":${w}}`;
}

/** ComfyUI's default graph (what Open WebUI ships as its default workflow), as an object. */
function defaultGraph(o: { ckpt: string; text: string; negative: string; seed: number; steps: number; cfg: number; sampler?: string; scheduler?: string; width?: number; height?: number; batch?: number }): Record<string, any> {
  return {
    3: { class_type: "KSampler", inputs: { seed: o.seed, steps: o.steps, cfg: o.cfg, sampler_name: o.sampler ?? "euler", scheduler: o.scheduler ?? "ddim_uniform", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] }, _meta: { title: "KSampler" } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: o.ckpt } },
    5: { class_type: "EmptyLatentImage", inputs: { width: o.width ?? 32, height: o.height ?? 32, batch_size: o.batch ?? 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: o.text, clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: o.negative, clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
  };
}

/** Relative L2 of a PNG's pixels (0..1) against image `index` of a fixture's [N, H, W, 3] floats. */
function pixelRelL2(png: Buffer, ref: Float32Array, index = 0): number {
  const img = decodePng(png);
  const n = img.width * img.height * 3;
  return diff(Float32Array.from(img.data, (v) => v / 255), ref.subarray(index * n, (index + 1) * n)).relL2;
}

/**
 * A PNG against a diffusers fixture image at the README's tolerance for pipeline images (max |Δ| ≤ 2e-3
 * on [0, 1]). The PNG's own rounding takes up to 0.5 of a level (1.96e-3), so the check is made on the
 * rounded fixture too: the PNG must equal round(ref * 255) wherever ref * 255 is more than
 * 2e-3 * 255 - 0.5 = 0.01 of a level away from a rounding boundary, and be within 1 level elsewhere.
 */
function assertFixtureImage(png: Buffer, ref: Float32Array, what: string, index = 0): void {
  const img = decodePng(png);
  const n = img.width * img.height * 3;
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = ref[index * n + i] * 255, got = img.data[i];
    const margin = Math.abs((r % 1) - 0.5);
    if (got !== Math.round(r) && margin > 0.01) off++;
    assert.ok(Math.abs(got - r) <= 1, `${what}: pixel ${i} is ${got}, diffusers ${r.toFixed(3)}`);
  }
  assert.equal(off, 0, `${what}: ${off} of ${n} values rounded away from diffusers' (beyond max |Δ| 2e-3)`);
  assert.ok(pixelRelL2(png, ref, index) < 4e-3, what);
}

/** SillyTavern's loop: GET /history until the prompt is in it, every 100 ms. */
async function pollHistory(id: string): Promise<any> {
  for (let i = 0; i < 600; i++) {
    const history = await getJson("/history");
    if (history[id]) return history[id];
    await sleep(100);
  }
  throw new Error(`prompt ${id} never reached /history`);
}

async function view(image: { filename: string; subfolder: string; type: string }): Promise<Buffer> {
  const r = await fetch(`${url}/view?filename=${image.filename}&subfolder=${image.subfolder}&type=${image.type}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "image/png");
  return Buffer.from(await r.arrayBuffer());
}

/** Open WebUI's client: a socket, the prompt, the messages until `executing` with node null for it. */
async function runOverSocket(prompt: unknown, clientId = "c0ffee" + Math.random().toString(16).slice(2, 10)): Promise<{ id: string; messages: any[]; previews: Buffer[] }> {
  const ws = new WebSocket(`${url.replace("http://", "ws://")}/ws?clientId=${clientId}`);
  const messages: any[] = [];
  const previews: Buffer[] = [];
  const opened = new Promise<void>((resolve, reject) => { ws.once("open", () => resolve()); ws.once("error", reject); });
  ws.on("message", (data, binary) => { if (binary) previews.push(data as Buffer); else messages.push(JSON.parse(String(data))); });
  await opened;
  const r = await postJson("/prompt", { prompt, client_id: clientId });
  const answer = await r.json() as any;
  assert.equal(r.status, 200, JSON.stringify(answer));
  assert.deepEqual(answer.node_errors, {});
  const id = answer.prompt_id as string;
  for (let i = 0; i < 3000 && !messages.some((m) => m.type === "executing" && m.data.node === null && m.data.prompt_id === id); i++) await sleep(20);
  ws.close();
  assert.ok(messages.some((m) => m.type === "executing" && m.data.node === null), "executing with node null came");
  return { id, messages, previews };
}

/** The first image a prompt's SaveImage node (9) made, after checking the prompt succeeded. */
async function savedImage(id: string): Promise<Buffer> {
  const item = (await getJson(`/history/${id}`))[id];
  assert.equal(item.status.status_str, "success", JSON.stringify(item.status));
  return view(item.outputs["9"].images[0]);
}

const BASIC = { text: "An astronaut riding a green horse", negative: "ugly, blurry, poor quality", seed: 0, steps: 4, cfg: 5 };

test("ComfyUI: SillyTavern's calls and default workflow (text/plain body) give diffusers' basic image", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const stats = await getJson("/system_stats");
  assert.equal(typeof stats.system.ram_total, "number");
  const info = await getJson("/object_info");
  const samplers: string[] = info.KSampler.input.required.sampler_name[0];
  const schedulers: string[] = info.KSampler.input.required.scheduler[0];
  const models: string[] = info.CheckpointLoaderSimple.input.required.ckpt_name[0];
  assert.deepEqual(info.UNETLoader.input.required.unet_name[0], []);
  assert.deepEqual(info.VAELoader.input.required.vae_name[0], []);
  assert.ok(samplers.includes("euler") && samplers.includes("dpmpp_2m") && !samplers.includes("dpmpp_sde"));
  assert.ok(schedulers.includes("karras") && schedulers.includes("ddim_uniform"));
  assert.deepEqual(models, ["tiny-ssd"]);
  assert.deepEqual(info.LoraLoader.input.required.lora_name[0], ["astro-style.safetensors", "te-style.safetensors"]);

  // SillyTavern posts the filled-in workflow string with fetch's default text/plain type and no Origin
  const body = sillyTavernWorkflow({ model: models[0], sampler: "euler", scheduler: "ddim_uniform", steps: 4, scale: 5, seed: 0, width: 32, height: 32, prompt: BASIC.text, negative: BASIC.negative });
  const r = await fetch(`${url}/prompt`, { method: "POST", body });
  assert.equal(r.headers.get("content-type")?.startsWith("application/json"), true);
  const queued = await r.json() as any;
  assert.equal(r.status, 200, JSON.stringify(queued));
  assert.equal(typeof queued.prompt_id, "string");
  assert.equal(typeof queued.number, "number");
  const item = await pollHistory(queued.prompt_id);
  assert.equal(item.status.status_str, "success");
  assert.equal(item.status.completed, true);
  const images = Object.values(item.outputs).flatMap((o: any) => o.images);
  assert.equal(images.length, 1);
  assert.deepEqual(Object.keys(item.outputs), ["9"]);
  assert.equal(images[0].type, "output");
  assert.match(images[0].filename, /\.png$/);
  const png = await view(images[0]);
  const ref = cases().float32("basic.images");
  assertFixtureImage(png, ref, "vs diffusers basic");
  // the fixture tells schedules apart: "normal" (linspace timesteps) is another image
  const normal = await (await fetch(`${url}/prompt`, { method: "POST", body: body.replace('"ddim_uniform"', '"normal"') })).json() as any;
  const other = await view((await pollHistory(normal.prompt_id)).outputs["9"].images[0]);
  assert.ok(levelDiff(other, ref) > 3, `scheduler normal vs basic: ${levelDiff(other, ref)} levels`);
  // the job is the shared queue's: the native job API sees the prompt id
  const job = await getJson(`/v1/jobs/${queued.prompt_id}`);
  assert.equal(job.status, "done");
});

test("ComfyUI: Open WebUI's WebSocket flow, with progress per step, and a batch of two from one seed", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  // no_negative: an empty negative prompt is SDXL's zero embedding, as diffusers' force_zeros_for_empty_prompt
  const { id, messages, previews } = await runOverSocket(defaultGraph({ ckpt: "tiny-ssd", text: BASIC.text, negative: "", seed: 1, steps: 4, cfg: 9, batch: 2 }));
  // a binary preview after each progress message: event 1 (PREVIEW_IMAGE), format 2 (PNG), a PNG
  assert.equal(previews.length, 4);
  for (const p of previews) {
    assert.deepEqual([p.readUInt32BE(0), p.readUInt32BE(4)], [1, 2]);
    assert.ok(decodePng(p.subarray(8)).width > 0);
  }
  const types = messages.map((m) => m.type);
  assert.equal(types[0], "status");
  assert.equal(typeof messages[0].data.sid, "string");
  const mine = messages.filter((m) => m.data.prompt_id === id);
  assert.deepEqual(mine.filter((m) => m.type === "progress").map((m) => [m.data.value, m.data.max, m.data.node]), [[1, 4, "3"], [2, 4, "3"], [3, 4, "3"], [4, 4, "3"]]);
  const order = mine.map((m) => (m.type === "executing" ? `executing:${m.data.node}` : m.type)).filter((t) => t !== "progress");
  assert.deepEqual(order, ["execution_start", "execution_cached", "executing:3", "executing:8", "executed", "execution_success", "executing:null"]);
  const executed = mine.find((m) => m.type === "executed");
  assert.equal(executed.data.node, "9");
  assert.equal(executed.data.output.images.length, 2);

  const history = (await getJson(`/history/${id}`))[id];
  assert.deepEqual(history.outputs["9"].images, executed.data.output.images);
  const [a, b] = await Promise.all(history.outputs["9"].images.map(view));
  // ComfyUI draws the batch's noise from one generator, as diffusers does: image 0 is the seed's single image
  const ref = cases().float32("no_negative.images");
  assertFixtureImage(a, ref, "batch image 0 vs diffusers no_negative");
  assert.ok(levelDiff(b, ref) > 5, "image 1 has noise of its own");
  assert.equal(decodePng(b).width, 32);
});

test("ComfyUI: prompts take ComfyUI's weights ((word:1.3)): the library's comfyui prompt syntax, to the level", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const text = "An (astronaut:1.4) riding a ((green)) horse", negative = "ugly, (blurry:0.7)";
  const png = await savedImage((await runOverSocket(defaultGraph({ ckpt: "tiny-ssd", ...BASIC, text, negative }))).id);
  const lib = await pipe.generate({ prompt: text, negativePrompt: negative, promptSyntax: "comfyui", numInferenceSteps: BASIC.steps, guidanceScale: BASIC.cfg, seed: BASIC.seed, width: 32, height: 32, scheduler: "Euler" });
  assert.ok(levelDiff(png, lib.images.data) <= 1, `${levelDiff(png, lib.images.data)} levels from the library`);
  const plain = await pipe.generate({ prompt: text, negativePrompt: negative, numInferenceSteps: BASIC.steps, guidanceScale: BASIC.cfg, seed: BASIC.seed, width: 32, height: 32, scheduler: "Euler" });
  assert.ok(levelDiff(png, plain.images.data) > 1, "the weights change the image (diffusers' syntax reads them as text)");
});

test("ComfyUI: LoraLoader gives diffusers' lora_basic image; its <lora> tag is written into the PNG text", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const g = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  g[10] = { class_type: "LoraLoader", inputs: { model: ["4", 0], clip: ["4", 1], lora_name: "astro-style.safetensors", strength_model: 1, strength_clip: 1 } };
  g[3].inputs.model = ["10", 0];
  g[6].inputs.clip = ["10", 1];
  g[7].inputs.clip = ["10", 1];
  const png = await savedImage((await runOverSocket(g)).id);
  const ref = openFixture("lora", "peft", "cases.safetensors").float32("lora_basic.images");
  assertFixtureImage(png, ref, "vs lora_basic");
  assert.ok(levelDiff(png, cases().float32("basic.images")) > 3, "the LoRA changes the image");
  assert.match(decodePng(png).text.parameters, /<lora:astro-style:1>/);
  // LoraLoaderModelOnly: the UNet's part alone, so a LoRA with text-encoder weights too gives the same image
  const m = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  m[10] = { class_type: "LoraLoaderModelOnly", inputs: { model: ["4", 0], lora_name: "astro-style.safetensors", strength_model: 1 } };
  m[3].inputs.model = ["10", 0];
  const modelOnly = await savedImage((await runOverSocket(m)).id);
  assert.deepEqual(decodePng(modelOnly).data, decodePng(png).data);
  m[10].inputs.lora_name = "te-style.safetensors";
  assert.deepEqual(decodePng(await savedImage((await runOverSocket(m)).id)).data, decodePng(png).data);
  assert.match(decodePng(await savedImage((await runOverSocket(m)).id)).text.parameters, /<lora:te-style:0:1>/);
  // LoraLoader with strength_clip of its own: the text encoders' part weighs in (the library's textEncoderWeight)
  const clip = structuredClone(g);
  Object.assign(clip[10].inputs, { lora_name: "te-style.safetensors", strength_clip: 0.5 });
  const half = await savedImage((await runOverSocket(clip)).id);
  const variant = await pipe.withLoras([{ file: join(tmp, "loras", "te-style.safetensors"), weight: 1, textEncoderWeight: 0.5 }]);
  try {
    const lib = await variant.generate({ prompt: BASIC.text, negativePrompt: BASIC.negative, promptSyntax: "comfyui", numInferenceSteps: BASIC.steps, guidanceScale: BASIC.cfg, seed: BASIC.seed, width: 32, height: 32, scheduler: "Euler" });
    assert.ok(levelDiff(half, lib.images.data) <= 1, `${levelDiff(half, lib.images.data)} levels from the library`);
  } finally {
    await variant.release();
  }
  assert.notDeepEqual(decodePng(half).data, decodePng(png).data, "the text encoders' part changes the image");
});

test("ComfyUI: CLIPTextEncodeSDXL's sizes are SDXL's micro-conditioning: diffusers' micro_cond image", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  // micro_cond: original_size (64, 96), crops_coords_top_left (4, 8), target_size (32, 32); diffusers gives the negative branch the same
  const sdxlText = (text: string) => ({ class_type: "CLIPTextEncodeSDXL", inputs: { clip: ["4", 1], width: 96, height: 64, crop_w: 8, crop_h: 4, target_width: 32, target_height: 32, text_g: text, text_l: text } });
  const g = defaultGraph({ ckpt: "tiny-ssd", text: "", negative: "", seed: 5, steps: 3, cfg: 5 });
  g[6] = sdxlText("a castle");
  g[7] = sdxlText("ugly, blurry, poor quality");
  const { id } = await runOverSocket(g);
  const png = await savedImage(id);
  const ref = cases().float32("micro_cond.images");
  assertFixtureImage(png, ref, "vs diffusers micro_cond");
  const unconditioned = await pipe.generate({ prompt: "a castle", negativePrompt: "ugly, blurry, poor quality", numInferenceSteps: 3, guidanceScale: 5, seed: 5, width: 32, height: 32 });
  assert.ok(levelDiff(png, unconditioned.images.data) > 1, "the sizes change the image");
});

test("ComfyUI: KSampler -> LatentUpscaleBy -> KSampler is the hires fix: the A1111 txt2img enable_hr image; the second sampler's seed counts", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const g = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  g[12] = { class_type: "LatentUpscaleBy", inputs: { samples: ["3", 0], upscale_method: "bilinear", scale_by: 1.5 } };
  g[13] = { class_type: "KSampler", inputs: { ...g[3].inputs, steps: 3, denoise: 0.5, latent_image: ["12", 0] } };
  g[8].inputs.samples = ["13", 0];
  const { id, messages } = await runOverSocket(g);
  assert.equal(messages.filter((m) => m.type === "progress" && m.data.prompt_id === id).length, 4 + 3, "4 first-pass steps, then 3 of a 6-step schedule");
  const png = await savedImage(id);
  assert.equal(decodePng(png).width, 48);
  // A1111's hires fix with the same settings (Euler with the DDIM schedule is SDXL's default, ComfyUI's ddim_uniform)
  const a1111 = await postJson("/sdapi/v1/txt2img", {
    prompt: BASIC.text, negative_prompt: BASIC.negative, sampler_name: "Euler", scheduler: "DDIM", seed: 0, steps: 4, cfg_scale: 5, width: 32, height: 32,
    enable_hr: true, hr_scale: 1.5, hr_upscaler: "Latent", hr_second_pass_steps: 6, denoising_strength: 0.5,
  });
  const ref = decodePng(Buffer.from((await a1111.json() as { images: string[] }).images[0], "base64"));
  assert.deepEqual(decodePng(png).data, ref.data);
  g[13].inputs.seed = 7;
  const other = await runOverSocket(g);
  const reseeded = await savedImage(other.id);
  assert.ok(levelDiff(reseeded, Float32Array.from(ref.data, (v) => v / 255)) > 1, "the second pass draws from its own seed");
});

test("ComfyUI: LoadImage -> VAEEncode -> KSampler -> LatentUpscaleBy -> KSampler is the library's hires fix from the image (img2img first)", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const rgb = { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 29) % 256) };
  const name = await upload(encodePng(rgb), "hires-from.png");
  const g = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  g[10] = { class_type: "LoadImage", inputs: { image: name } };
  g[11] = { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } };
  Object.assign(g[3].inputs, { latent_image: ["11", 0], denoise: 0.75, steps: 3 });
  g[12] = { class_type: "LatentUpscaleBy", inputs: { samples: ["3", 0], upscale_method: "bilinear", scale_by: 1.5 } };
  g[13] = { class_type: "KSampler", inputs: { ...g[3].inputs, steps: 3, denoise: 0.5, latent_image: ["12", 0] } };
  g[8].inputs.samples = ["13", 0];
  const png = decodePng(await savedImage((await runOverSocket(g)).id));
  assert.equal(png.width, 48);
  // ComfyUI's counts: 3 steps at denoise 0.75 are the last 3 of 4, then 3 at 0.5 the last 3 of 6
  const call = { prompt: BASIC.text, negativePrompt: BASIC.negative, guidanceScale: BASIC.cfg, seed: BASIC.seed, scheduler: "Euler", promptSyntax: "comfyui" as const, width: 32, height: 32, numInferenceSteps: 4 };
  const lib = await generateHires(pipe, call, { scale: 1.5, upscaler: "Latent", steps: 6, strength: 0.5, seed: BASIC.seed, firstPass: ({ width: _w, height: _h, ...o }) => pipe.img2img({ ...o, image: rgb, strength: 0.75 }) });
  assert.ok(levelDiff(encodePng(png), lib.images.data) <= 1, `${levelDiff(encodePng(png), lib.images.data)} levels from the library`);
  const txt2img = await generateHires(pipe, call, { scale: 1.5, upscaler: "Latent", steps: 6, strength: 0.5, seed: BASIC.seed });
  assert.ok(levelDiff(encodePng(png), txt2img.images.data) > 1, "the first pass starts from the image");
});

/** Uploads a PNG as ComfyUI's clients do (multipart `image`); returns its name. */
const upload = (png: Buffer, filename: string): Promise<string> => comfyUpload(url, png, filename);

test("ComfyUI: ControlNetLoader + ControlNetApplyAdvanced give diffusers' ControlNet image (fixture single)", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const fx = openFixture("controlnet", "tiny-ssd", "cases.safetensors");
  const map = fx.float32("single.control_image");
  const control = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) };
  for (let i = 0; i < 32 * 32; i++) for (let c = 0; c < 3; c++) control.data[3 * i + c] = Math.round(map[c * 32 * 32 + i] * 255);
  const name = await upload(encodePng(control), "edges.png");
  const info = await getJson("/object_info/ControlNetLoader");
  assert.deepEqual(info.ControlNetLoader.input.required.control_net_name[0], ["canny-a"]);
  const g = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  g[20] = { class_type: "ControlNetLoader", inputs: { control_net_name: "canny-a" } };
  g[21] = { class_type: "LoadImage", inputs: { image: name } };
  g[22] = { class_type: "ControlNetApplyAdvanced", inputs: { positive: ["6", 0], negative: ["7", 0], control_net: ["20", 0], image: ["21", 0], strength: 1, start_percent: 0, end_percent: 1 } };
  g[3].inputs.positive = ["22", 0];
  g[3].inputs.negative = ["22", 1];
  const png = await savedImage((await runOverSocket(g)).id);
  const ref = fx.float32("single.images");
  assertFixtureImage(png, ref, "vs diffusers single");
  assert.ok(levelDiff(png, cases().float32("basic.images")) > 1, "the ControlNet changes the image");
  // one branch only, or the negative taking the positive output, is refused
  g[3].inputs.negative = ["7", 0];
  const one = await postJson("/prompt", { prompt: g });
  assert.equal(one.status, 400);
  assert.match((await one.json() as any).node_errors["22"].errors[0].message, /one branch only/);
  g[3].inputs.negative = ["22", 0];
  const swapped = await (await postJson("/prompt", { prompt: g })).json() as any;
  assert.equal(swapped.node_errors["3"].errors[0].extra_info.input_name, "negative");
  g[3].inputs.negative = ["22", 1];
  g[20].inputs.control_net_name = "depth-xl.safetensors";
  const unknown = await postJson("/prompt", { prompt: g });
  assert.equal(unknown.status, 400);
  assert.match((await unknown.json() as any).error.message, /unknown ControlNet model "depth-xl"/);
});

test("ComfyUI: LoadImage + VAEEncode runs img2img as ComfyUI counts steps (steps / denoise), equal to the library", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  // a 37x35 upload: VAEEncode crops it to 32x32 about its centre, as ComfyUI does
  const w = 37, h = 35;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([x * 6, y * 7, (x * y) % 256], (y * w + x) * 3);
  const upload = encodePng({ width: w, height: h, data });
  const form = new FormData();
  form.append("image", new Blob([new Uint8Array(upload)], { type: "image/png" }), "my photo.png");
  form.append("overwrite", "true");
  const up = await fetch(`${url}/upload/image`, { method: "POST", body: form });
  const uploaded = await up.json() as any;
  assert.equal(up.status, 200, JSON.stringify(uploaded));
  assert.deepEqual(uploaded, { name: "my_photo.png", subfolder: "", type: "input" });
  assert.ok((await view({ filename: uploaded.name, subfolder: "", type: "input" }).catch(() => undefined)) !== undefined);

  const g = defaultGraph({ ckpt: "tiny-ssd", text: "a watercolor landscape", negative: "ugly, blurry, poor quality", seed: 11, steps: 3, cfg: 6 });
  g[10] = { class_type: "LoadImage", inputs: { image: uploaded.name } };
  g[11] = { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } };
  g[3].inputs.latent_image = ["11", 0];
  g[3].inputs.denoise = 0.6;
  const { id, messages } = await runOverSocket(g);
  // 3 steps at denoise 0.6: the last 3 of a 5-step schedule
  assert.equal(messages.filter((m) => m.type === "progress" && m.data.prompt_id === id).length, 3);
  const png = await savedImage(id);
  // KSamplerAdvanced from step 2 of 5 is the same img2img (strength 0.6, 5 steps)
  g[3] = { class_type: "KSamplerAdvanced", inputs: { ...g[3].inputs, add_noise: "enable", noise_seed: 11, steps: 5, start_at_step: 2, end_at_step: 10000, return_with_leftover_noise: "disable" } };
  delete g[3].inputs.seed;
  delete g[3].inputs.denoise;
  const advanced = await runOverSocket(g);
  assert.equal(advanced.messages.filter((m) => m.type === "progress" && m.data.prompt_id === advanced.id).length, 3);
  const advancedPng = await savedImage(advanced.id);
  assert.deepEqual(decodePng(advancedPng).data, decodePng(png).data);
  const cropped = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 32; y++) cropped.set(data.subarray(((y + 1) * w + 2) * 3, ((y + 1) * w + 34) * 3), y * 32 * 3);
  const lib = await pipe.img2img({ prompt: "a watercolor landscape", negativePrompt: "ugly, blurry, poor quality", numInferenceSteps: 5, strength: 0.6, guidanceScale: 6, seed: 11, image: { width: 32, height: 32, data: cropped }, scheduler: "Euler" });
  assert.deepEqual(decodePng(png).data, toRgb8(lib.images, 0).data, "the library's img2img, to the level");
  const again = toRgb8(lib.images, 0);
  assert.equal(decodePng(png).width, again.width);
});

test("ComfyUI: refused prompts answer ComfyUI's error shape, naming the node and input", { skip: NO_FIXTURES }, async () => {
  const bad = async (prompt: unknown, type: string, node?: string, input?: string, message?: RegExp) => {
    const r = await postJson("/prompt", { prompt });
    const out = await r.json() as any;
    assert.equal(r.status, 400, JSON.stringify(out));
    assert.equal(out.error.type, type, JSON.stringify(out));
    assert.equal(typeof out.error.message, "string");
    if (node) {
      assert.deepEqual(Object.keys(out.node_errors), [node], JSON.stringify(out));
      const e = out.node_errors[node].errors[0];
      if (input) assert.equal(e.extra_info.input_name, input, JSON.stringify(e));
      if (message) assert.match(e.message, message);
    }
    return out;
  };
  const g = () => defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  await bad({ ...g(), 12: { class_type: "CLIPVisionLoader", inputs: {} } }, "invalid_prompt");
  await bad("not a graph", "invalid_prompt");
  const noOut = g();
  delete noOut[9];
  await bad(noOut, "prompt_no_outputs");
  const sampler = g();
  sampler[3].inputs.sampler_name = "dpmpp_sde";
  await bad(sampler, "prompt_outputs_failed_validation", "3", "sampler_name", /Brownian/);
  const size = g();
  size[5].inputs.width = 30;
  await bad(size, "prompt_outputs_failed_validation", "5", "width", /multiple of 8/);
  const ckpt = g();
  ckpt[4].inputs.ckpt_name = "sd_xl_base_1.0.safetensors";
  await bad(ckpt, "prompt_outputs_failed_validation", "4", "ckpt_name", /not in \["tiny-ssd"\]/);
  const link = g();
  link[3].inputs.positive = ["5", 0];
  await bad(link, "prompt_outputs_failed_validation", "3", "positive", /CONDITIONING/);
  const missing = g();
  delete missing[3].inputs.steps;
  await bad(missing, "prompt_outputs_failed_validation", "3", "steps", /Required input is missing/);
  const vae = g();
  vae[10] = { class_type: "VAELoader", inputs: { vae_name: "sdxl_vae.safetensors" } };
  vae[8].inputs.vae = ["10", 0];
  await bad(vae, "prompt_outputs_failed_validation", "10", "vae_name", /"sdxl_vae.safetensors" \(this server has no --vae-dir/);
  const adv = g();
  adv[3] = { class_type: "KSamplerAdvanced", inputs: { ...adv[3].inputs, add_noise: "enable", noise_seed: 1, start_at_step: 0, end_at_step: 2, return_with_leftover_noise: "enable" } };
  await bad(adv, "prompt_outputs_failed_validation", "3", "end_at_step", /stops before the last/);
  const upscaled = (inputs: Record<string, unknown>) => {
    const h = g();
    h[12] = { class_type: "LatentUpscaleBy", inputs: { samples: ["3", 0], upscale_method: "bilinear", scale_by: 1.5, ...inputs } };
    h[13] = { class_type: "KSampler", inputs: { ...h[3].inputs, denoise: 0.5, latent_image: ["12", 0] } };
    h[8].inputs.samples = ["13", 0];
    return h;
  };
  await bad(upscaled({ scale_by: 1.2 }), "prompt_outputs_failed_validation", "12", "scale_by", /40x40 in ComfyUI but 32x32/);
  await bad(upscaled({ upscale_method: "bislerp" }), "prompt_outputs_failed_validation", "12", "upscale_method");
  const cfg2 = upscaled({});
  cfg2[13].inputs.cfg = 7;
  await bad(cfg2, "prompt_outputs_failed_validation", "13", "cfg");
  const denoise = g();
  denoise[3].inputs.denoise = 0.5;
  await bad(denoise, "prompt_outputs_failed_validation", "3", "denoise", /needs an image/);
  const img = g();
  img[10] = { class_type: "LoadImage", inputs: { image: "never-uploaded.png" } };
  img[11] = { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } };
  img[3].inputs.latent_image = ["11", 0];
  await bad(img, "prompt_outputs_failed_validation", "10", "image", /not uploaded/);
  // hostile shapes: too many nodes, a loop of LoRA loaders, an oversized body
  const many = g();
  for (let i = 0; i < 500; i++) many[`n${i}`] = { class_type: "EmptyLatentImage", inputs: { width: 8, height: 8 } };
  await bad(many, "invalid_prompt");
  const loop = g();
  loop[10] = { class_type: "LoraLoader", inputs: { model: ["11", 0], clip: ["4", 1], lora_name: "astro-style.safetensors", strength_model: 1, strength_clip: 1 } };
  loop[11] = { class_type: "LoraLoader", inputs: { model: ["10", 0], clip: ["4", 1], lora_name: "astro-style.safetensors", strength_model: 1, strength_clip: 1 } };
  loop[3].inputs.model = ["10", 0];
  await bad(loop, "prompt_outputs_failed_validation", "10", "model", /loop/);
  const huge = await postJson("/prompt", { prompt: g(), extra_data: { pad: "x".repeat(5 << 20) } });
  assert.equal(huge.status, 413);
  // a browser page of another site can neither post a plain-text prompt nor open the socket
  const cross = await fetch(`${url}/prompt`, { method: "POST", body: JSON.stringify({ prompt: g() }), headers: { Origin: "https://evil.example" } });
  assert.equal(cross.status, 403);
  const plainFromPage = await fetch(`${url}/prompt`, { method: "POST", body: JSON.stringify({ prompt: g() }), headers: { Origin: url, "Content-Type": "text/plain" } });
  assert.equal(plainFromPage.status, 415);
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`${url.replace("http://", "ws://")}/ws?clientId=x`, { headers: { Origin: "https://evil.example" } });
    ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    ws.on("open", () => { ws.close(); resolve(101); });
    ws.on("error", () => resolve(-1));
  });
  assert.equal(refused, 403);
  // nothing was queued by any of these
  assert.deepEqual(await getJson("/queue"), { queue_running: [], queue_pending: [] });
});

test("ComfyUI: /queue lists prompts, POST /queue delete drops a pending one, /interrupt ends the running one without images", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const long = defaultGraph({ ckpt: "tiny-ssd", text: "a long one", negative: "", seed: 3, steps: 400, cfg: 5 });
  const first = await (await postJson("/prompt", { prompt: long })).json() as any;
  const second = await (await postJson("/prompt", { prompt: long })).json() as any;
  for (let i = 0; i < 500 && (await getJson("/queue")).queue_running.length === 0; i++) await sleep(20);
  const q = await getJson("/queue");
  assert.deepEqual(q.queue_running.map((e: any[]) => e[1]), [first.prompt_id]);
  assert.deepEqual(q.queue_pending.map((e: any[]) => e[1]), [second.prompt_id]);
  assert.deepEqual(q.queue_running[0][4], ["9"]);
  assert.equal((await getJson("/prompt")).exec_info.queue_remaining, 2);
  assert.equal((await postJson("/queue", { delete: [second.prompt_id] })).status, 200);
  assert.equal((await postJson("/interrupt", {})).status, 200);
  const a = await pollHistory(first.prompt_id), b = await pollHistory(second.prompt_id);
  for (const item of [a, b]) {
    assert.equal(item.status.status_str, "error");
    assert.deepEqual(item.outputs, {});
  }
  assert.ok(a.status.messages.some((m: any[]) => m[0] === "execution_interrupted"), JSON.stringify(a.status.messages));
  assert.deepEqual(await getJson("/queue"), { queue_running: [], queue_pending: [] });
  // history: max_items, delete, clear
  assert.equal(Object.keys(await getJson("/history?max_items=1")).length, 1);
  await postJson("/history", { delete: [first.prompt_id] });
  assert.deepEqual(await getJson(`/history/${first.prompt_id}`), {});
  await postJson("/history", { clear: true });
  assert.deepEqual(await getJson("/history"), {});
});

test("ComfyUI through a Redis queue: a worker runs the prompt, the front end's socket and /history tell it, the image is diffusers' basic", { skip: NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found"), timeout: 120_000 }, async () => {
  const { url: queueUrl, process: redis } = await startRedisServer();
  const files = new FileStore();
  const rq = await RedisQueue.connect(queueUrl, { maxQueue: 4, files, model: "tiny-ssd" });
  const front = await startServer({ queue: rq, files, host: "127.0.0.1", port: 0 });
  const worker = await startRedisWorker({ url: queueUrl, pipe });
  const local = url;
  try {
    url = front.url;
    const { id, messages } = await runOverSocket(defaultGraph({ ckpt: "tiny-ssd", ...BASIC }));
    assert.equal(messages.filter((m) => m.type === "progress" && m.data.prompt_id === id).length, 4);
    const item = (await getJson(`/history/${id}`))[id];
    assert.equal(item.status.status_str, "success");
    const png = await view(item.outputs["9"].images[0]);
    assertFixtureImage(png, cases().float32("basic.images"), "worker image vs basic");
  } finally {
    url = local;
    await worker.close();
    await front.close();
    const exited = new Promise((r) => redis.once("exit", r));
    redis.kill("SIGTERM");
    await exited;
  }
});

test("ComfyUI workflow: primitive nodes give their values, VAEDecodeTiled is VAEDecode, SamplerCustomAdvanced is the KSampler it amounts to", () => {
  const model = { name: "tiny-ssd", source: "/models/tiny-ssd", textEncoderLayers: [12, 32] as [number, number] };
  const ctx = { limits: DEFAULT_LIMITS, model, inputImage: () => undefined, upload: () => undefined, uploadBytes: () => undefined };
  const g = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  g[20] = { class_type: "PrimitiveInt", inputs: { value: 77 } };
  g[21] = { class_type: "PrimitiveStringMultiline", inputs: { value: "a lighthouse\nat dusk" } };
  g[22] = { class_type: "PrimitiveInt", inputs: { value: ["23", 0] } };
  g[23] = { class_type: "PrimitiveInt", inputs: { value: 48 } };
  g[24] = { class_type: "PrimitiveFloat", inputs: { value: 6.5 } };
  g[3].inputs.seed = ["20", 0];
  g[3].inputs.cfg = ["24", 0];
  g[6].inputs.text = ["21", 0];
  g[5].inputs.width = ["22", 0];
  const spec = compileWorkflow(g, ctx).spec;
  assert.deepEqual([spec.seed, spec.prompt, spec.width, spec.guidanceScale], [77, "a lighthouse\nat dusk", 48, 6.5]);
  // VAEDecodeTiled is VAEDecode here (the whole image decoded)
  const tiled = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  tiled[8] = { class_type: "VAEDecodeTiled", inputs: { ...tiled[8].inputs, tile_size: 512, overlap: 64 } };
  assert.deepEqual(compileWorkflow(tiled, ctx).spec, compileWorkflow(defaultGraph({ ckpt: "tiny-ssd", ...BASIC }), ctx).spec);
  // SamplerCustomAdvanced with RandomNoise, CFGGuider, KSamplerSelect and BasicScheduler is that KSampler
  const base = defaultGraph({ ckpt: "tiny-ssd", ...BASIC, sampler: "dpmpp_2m", scheduler: "karras" });
  const custom = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  custom[3] = { class_type: "SamplerCustomAdvanced", inputs: { noise: ["30", 0], guider: ["31", 0], sampler: ["32", 0], sigmas: ["33", 0], latent_image: ["5", 0] } };
  custom[30] = { class_type: "RandomNoise", inputs: { noise_seed: BASIC.seed } };
  custom[31] = { class_type: "CFGGuider", inputs: { model: ["4", 0], positive: ["6", 0], negative: ["7", 0], cfg: BASIC.cfg } };
  custom[32] = { class_type: "KSamplerSelect", inputs: { sampler_name: "dpmpp_2m" } };
  custom[33] = { class_type: "BasicScheduler", inputs: { model: ["4", 0], scheduler: "karras", steps: BASIC.steps, denoise: 1 } };
  custom[8].inputs.samples = ["3", 1];
  assert.deepEqual(compileWorkflow(custom, ctx).spec, compileWorkflow(base, ctx).spec);
  custom[31] = { class_type: "BasicGuider", inputs: { model: ["4", 0], conditioning: ["6", 0] } };
  assert.equal(compileWorkflow(custom, ctx).spec.guidanceScale, 1);
  custom[33].inputs.model = ["99", 0];
  assert.throws(() => compileWorkflow(custom, ctx), (e: any) => e.node?.id === "33" && e.input === "model");
  // ConditioningZeroOut as the negative: the zero embedding, as no negative prompt
  const zeroed = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  zeroed[7] = { class_type: "ConditioningZeroOut", inputs: { conditioning: ["6", 0] } };
  assert.deepEqual(compileWorkflow(zeroed, ctx).spec, compileWorkflow(defaultGraph({ ckpt: "tiny-ssd", ...BASIC, negative: "" }), ctx).spec);
  zeroed[3].inputs.positive = ["7", 0];
  assert.throws(() => compileWorkflow(zeroed, ctx), (e: any) => e.node?.id === "3" && e.input === "positive" && /ConditioningZeroOut positive/.test(e.message));
  // nodes not run here say what to use instead
  const old = defaultGraph({ ckpt: "tiny-ssd", ...BASIC });
  old[40] = { class_type: "ControlNetApply", inputs: {} };
  assert.throws(() => compileWorkflow(old, ctx), /ControlNetApply is not run here: it conditions the positive prompt only; use ControlNetApplyAdvanced/);
  // a primitive's value is checked where it is used
  g[20].inputs.value = "seven";
  assert.throws(() => compileWorkflow(g, ctx), (e: any) => e.node?.id === "3" && e.input === "seed");
});

test("ComfyUI workflow: sampler and scheduler names map to the A1111 / diffusers schedulers; CLIPSetLastLayer to clip skip", () => {
  const model = { name: "tiny-ssd", source: "/models/tiny-ssd", textEncoderLayers: [12, 32] as [number, number] };
  const ctx = { limits: DEFAULT_LIMITS, model, inputImage: () => undefined, upload: () => undefined, uploadBytes: () => undefined };
  const graph = (sampler: string, scheduler: string) => defaultGraph({ ckpt: "tiny-ssd", ...BASIC, sampler, scheduler });
  const scheduler = (s: string, sch: string) => compileWorkflow(graph(s, sch), ctx).spec.scheduler;
  assert.equal(scheduler("euler", "normal"), "Euler Normal");
  assert.equal(scheduler("dpmpp_2m", "karras"), "DPM++ 2M Karras");
  assert.equal(scheduler("euler_ancestral", "sgm_uniform"), "Euler a SGM Uniform");
  assert.equal(scheduler("euler", "ddim_uniform"), "Euler DDIM");
  // KSamplerAdvanced's strength keeps exactly steps - start_at_step steps, though (n - k) / n * n can fall an ulp short
  for (const [n, k] of [[10, 3], [7, 2], [1000, 1], [49, 48]]) {
    const g = graph("euler", "normal");
    g[3] = { class_type: "KSamplerAdvanced", inputs: { ...g[3].inputs, add_noise: "enable", noise_seed: 0, steps: n, start_at_step: k, end_at_step: 10000, return_with_leftover_noise: "disable" } };
    g[10] = { class_type: "LoadImage", inputs: { image: "in.png" } };
    g[11] = { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } };
    g[3].inputs.latent_image = ["11", 0];
    const spec = compileWorkflow(g, { ...ctx, inputImage: () => ({ png: "", width: 32, height: 32 }) }).spec;
    assert.equal(spec.steps, n);
    assert.equal(Math.trunc(spec.steps * spec.strength!), n - k, `${n} steps from ${k}`);
  }
  assert.deepEqual(compileWorkflow(graph("uni_pc", "normal"), ctx).spec.schedulerOverrides, { solver_type: "bh1" });
  const spec = compileWorkflow(graph("euler", "karras"), ctx).spec;
  assert.deepEqual({ seed: spec.seed, steps: spec.steps, cfg: spec.guidanceScale, w: spec.width, h: spec.height, batch: spec.batchSize, model: spec.model, neg: spec.negativePrompt }, { seed: 0, steps: 4, cfg: 5, w: 32, h: 32, batch: 1, model: "tiny-ssd", neg: BASIC.negative });
  // CLIPTextEncodeSDXL: text_l / text_g are prompt / prompt_2; a plain negative gets the image size with no crop, as in ComfyUI
  const sdxl = graph("euler", "normal");
  sdxl[6] = { class_type: "CLIPTextEncodeSDXL", inputs: { clip: ["4", 1], width: 4096, height: 2048, crop_w: 0, crop_h: 16, target_width: 1024, target_height: 512, text_g: "a big castle", text_l: "a castle" } };
  const s2 = compileWorkflow(sdxl, ctx).spec;
  assert.deepEqual([s2.prompt, s2.prompt2, s2.negativePrompt, s2.negativePrompt2], ["a castle", "a big castle", BASIC.negative, undefined]);
  assert.deepEqual(s2.microConditioning, { originalSize: [2048, 4096], cropsCoordsTopLeft: [16, 0], targetSize: [512, 1024], negativeOriginalSize: [32, 32], negativeCropsCoordsTopLeft: [0, 0], negativeTargetSize: [32, 32] });
  const skip = (n: number) => {
    const g = graph("euler", "normal");
    g[10] = { class_type: "CLIPSetLastLayer", inputs: { clip: ["4", 1], stop_at_clip_layer: n } };
    g[6].inputs.clip = ["10", 0];
    g[7].inputs.clip = ["10", 0];
    return compileWorkflow(g, ctx).spec.clipSkip;
  };
  assert.equal(skip(-2), undefined, "-2 is SDXL's default (the penultimate layer)");
  assert.deepEqual(skip(-1), { textEncoder: -1, textEncoder2: -1 });
  assert.deepEqual(skip(-3), { textEncoder: 1, textEncoder2: 1 });
  assert.throws(() => skip(-14), /goes below the first layer/);
});
