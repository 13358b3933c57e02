/**
 * `ssd1b serve` on 127.0.0.1 (a free port) with the tiny synth model: the OpenAI client, the
 * A1111 API against the fixture images, Segmind, jobs with server-sent events, progress and
 * interrupt, cancellation on disconnect, and every bad request answered with its status while
 * the server goes on serving.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { startServeCli } from "./helpers/serve-cli.js";
import { NO_FIXTURES, HAVE_FIXTURES, PROJECT_ROOT, fixture, openFixture, levelDiff } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { latentToRgb } from "../src/server/latent-preview.js";
import { A1111_SAMPLERS } from "../src/schedulers/index.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const MAX_QUEUE = 3;

interface Case { prompt: string; negative_prompt: string; num_inference_steps: number; guidance_scale: number; seed: number }
const cases: Record<string, Case> = HAVE_FIXTURES ? JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "cases.json"), "utf8")) : {};

const tmp = mkdtempSync(join(tmpdir(), "server-test-"));
let pipe: StableDiffusionXLPipeline;
let server: RunningServer;
let url = "";
let modelDir = "";

before(async () => {
  if (!HAVE_FIXTURES) return;
  modelDir = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), modelDir, { recursive: true });
  synthModel(modelDir, "fp32");
  pipe = await StableDiffusionXLPipeline.fromPretrained(modelDir);
  const files = new FileStore();
  server = await startServer({ queue: new LocalQueue(pipe, MAX_QUEUE, files), files, host: "127.0.0.1", port: 0 });
  url = server.url;
});

after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});


async function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body), ...init });
}

async function getJson(path: string): Promise<any> {
  const r = await fetch(url + path);
  assert.equal(r.status, 200, `GET ${path}`);
  return r.json();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a value (bounded). */
async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await check();
    if (v !== undefined) return v;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const idle = () => waitFor("an idle queue", async () => {
  const p = await getJson("/sdapi/v1/progress");
  return p.state.job_count === 0 ? p : undefined;
});

const basic = () => {
  const c = cases.basic;
  return { prompt: c.prompt, negative_prompt: c.negative_prompt, seed: c.seed, steps: c.num_inference_steps, guidance: c.guidance_scale };
};

test("serve: the openai client generates images (b64_json and url) equal to the CLI's for the same seed", { skip: NO_FIXTURES }, async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "dummy" });
  const b = basic();
  const extras = { negative_prompt: b.negative_prompt, seed: b.seed, steps: b.steps, guidance_scale: b.guidance, scheduler: "Euler" };
  const { data: res, response } = await client.images.generate({
    model: "ssd-1b", prompt: b.prompt, n: 1, size: "32x32" as "1024x1024", response_format: "b64_json", ...extras,
  } as OpenAI.Images.ImageGenerateParamsNonStreaming).withResponse();
  assert.ok(response.headers.get("x-job-id"), "job id header");
  assert.equal(response.headers.get("x-seed"), "0");
  assert.equal(typeof res.created, "number");
  assert.equal(res.data!.length, 1);
  const png = Buffer.from(res.data![0].b64_json!, "base64");
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  assert.ok(levelDiff(png, ref) <= 1, "OpenAI image vs the fixture");
  assert.equal((res.data![0] as { seed?: number }).seed, 0);

  const byUrl = await client.images.generate({ prompt: "a red cube", n: 2, size: "32x32" as "1024x1024", response_format: "url", steps: 2 } as OpenAI.Images.ImageGenerateParamsNonStreaming);
  assert.equal(byUrl.data!.length, 2);
  for (const item of byUrl.data!) {
    assert.match(item.url!, new RegExp(`^${url}/files/[A-Za-z0-9]+-\\d\\.png$`));
    const r = await fetch(item.url!);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "image/png");
    const img = decodePng(Buffer.from(await r.arrayBuffer()));
    assert.equal(img.width, 32);
    assert.match(img.text.parameters, /^a red cube\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: \d+, Size: 32x32, Model: tiny-ssd$/);
  }
});

test("serve: /sdapi/v1/txt2img with the fixture's basic case returns its image within 1 level, with A1111 info", { skip: NO_FIXTURES }, async () => {
  const b = basic();
  const body = { prompt: b.prompt, negative_prompt: b.negative_prompt, sampler_name: "Euler", seed: 0, steps: 4, cfg_scale: 5, width: 32, height: 32 };
  const r = await post("/sdapi/v1/txt2img", body);
  assert.equal(r.status, 200);
  const jobId = r.headers.get("x-job-id");
  const out = await r.json() as { images: string[]; parameters: Record<string, unknown>; info: string };
  assert.equal(out.images.length, 1);
  const png = Buffer.from(out.images[0], "base64");
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  const d = levelDiff(png, ref);
  assert.ok(d <= 1, `A1111 image vs the fixture: ${d} levels`);
  const expectedText = "An astronaut riding a green horse\nNegative prompt: ugly, blurry, poor quality\nSteps: 4, Sampler: Euler, CFG scale: 5, Seed: 0, Size: 32x32, Model: tiny-ssd";
  assert.equal(decodePng(png).text.parameters, expectedText, "the CLI's parameters text");
  assert.equal(out.parameters.prompt, b.prompt);
  assert.equal(out.parameters.seed, 0);
  assert.equal(out.parameters.steps, 4);
  const info = JSON.parse(out.info);
  assert.equal(info.seed, 0);
  assert.deepEqual(info.all_seeds, [0]);
  assert.deepEqual(info.infotexts, [expectedText]);
  assert.equal(info.sampler_name, "Euler");
  assert.equal(info.width, 32);
  assert.equal(info.sd_model_name, "tiny-ssd");
  assert.equal(info.job_id, jobId);
});

test("serve: a random seed (-1 or absent) is reported and reproduces the image", { skip: NO_FIXTURES }, async () => {
  const body = { prompt: "a lighthouse", steps: 3, width: 32, height: 24, batch_size: 2, n_iter: 2 };
  const first = await (await post("/sdapi/v1/txt2img", { ...body, seed: -1 })).json() as { images: string[]; info: string };
  const info = JSON.parse(first.info);
  assert.ok(Number.isInteger(info.seed) && info.seed >= 0, "seed reported");
  assert.deepEqual(info.all_seeds, [info.seed, info.seed + 1, info.seed + 2, info.seed + 3], "A1111: image j has seed + j");
  assert.equal(first.images.length, 4);
  const again = await (await post("/sdapi/v1/txt2img", { ...body, seed: info.seed })).json() as { images: string[] };
  assert.deepEqual(again.images, first.images, "same request + seed = same images");
  // image 1 is the library's single image with its own seed
  const lib = await pipe.generate({ prompt: "a lighthouse", numInferenceSteps: 3, seed: info.seed + 1, width: 32, height: 24 });
  assert.ok(levelDiff(Buffer.from(first.images[1], "base64"), lib.images.data, 0) <= 1);
  const seg = await post("/v1/ssd-1b", { prompt: "a lighthouse", num_inference_steps: 2, img_width: 32, img_height: 32 });
  assert.match(seg.headers.get("x-seed") ?? "", /^\d+$/);
});

test("serve: A1111 schedule types and the new samplers run, as clients send them", { skip: NO_FIXTURES }, async () => {
  // SillyTavern's default scheduler "normal", Open WebUI's "Exponential", A1111 names with the schedule in them
  const requests: [Record<string, unknown>, string, string, string][] = [
    [{ sampler_name: "Euler", scheduler: "normal" }, "Euler", "Normal", "Euler Normal"],
    [{ sampler_name: "DPM++ 2M", scheduler: "Exponential" }, "DPM++ 2M", "Exponential", "DPM++ 2M Exponential"],
    [{ sampler_name: "DPM++ 2M SDE Karras" }, "DPM++ 2M SDE", "Karras", "DPM++ 2M SDE Karras"],
    [{ sampler_name: "LMS", scheduler: "sgm_uniform" }, "LMS", "SGM Uniform", "LMS SGM Uniform"],
    [{ sampler_name: "k_dpm_2_a", scheduler: "Beta" }, "DPM2 a", "Beta", "DPM2 a Beta"],
    [{ sampler_name: "PLMS", scheduler: "Automatic" }, "PLMS", "Automatic", "PLMS"],
    // A1111's custom-sigma schedule types, with Euler (a schedule type alone is Euler's)
    [{ scheduler: "Polyexponential" }, "Euler", "Polyexponential", "Euler Polyexponential"],
    [{ sampler_name: "Euler", scheduler: "kl_optimal" }, "Euler", "KL Optimal", "Euler KL Optimal"],
    [{ sampler_name: "Euler Align Your Steps" }, "Euler", "Align Your Steps", "Euler Align Your Steps"],
  ];
  for (const [fields, sampler, schedule, scheduler] of requests) {
    const r = await post("/sdapi/v1/txt2img", { prompt: "a kite", steps: 3, width: 16, height: 16, seed: 3, ...fields });
    assert.equal(r.status, 200, JSON.stringify(fields));
    const out = await r.json() as { images: string[]; parameters: Record<string, unknown>; info: string };
    assert.equal(out.parameters.sampler_name, sampler);
    assert.equal(out.parameters.scheduler, schedule);
    assert.deepEqual(JSON.parse(out.info).extra_generation_params, schedule === "Automatic" ? {} : { "Schedule type": schedule });
    const lib = await pipe.generate({ prompt: "a kite", numInferenceSteps: 3, seed: 3, width: 16, height: 16, scheduler });
    assert.ok(levelDiff(Buffer.from(out.images[0], "base64"), lib.images.data, 0) <= 1, `${scheduler}: the library's image`);
    if (scheduler.startsWith("Euler ") && !scheduler.endsWith("Normal")) assert.match(decodePng(Buffer.from(out.images[0], "base64")).text.parameters, new RegExp(`Sampler: ${scheduler},`));
  }
  // img2img with custom sigmas: the schedule's last half, as the library's
  const gradient = { width: 16, height: 16, data: Uint8Array.from({ length: 16 * 16 * 3 }, (_, i) => (i * 7) % 256) };
  const i2i = await post("/sdapi/v1/img2img", { init_images: [encodePng(gradient).toString("base64")], prompt: "a kite", steps: 4, seed: 3, denoising_strength: 0.5, sampler_name: "Euler", scheduler: "Align Your Steps" });
  assert.equal(i2i.status, 200);
  const libI2i = await pipe.img2img({ prompt: "a kite", numInferenceSteps: 4, seed: 3, strength: 0.5, image: gradient, scheduler: "Euler Align Your Steps" });
  assert.ok(levelDiff(Buffer.from((await i2i.json() as { images: string[] }).images[0], "base64"), libI2i.images.data, 0) <= 1, "img2img with Align Your Steps");
  // Segmind's documented names
  for (const scheduler of ["DPM2 Karras", "LMS", "PNDM", "DPM2 a Karras", "LMS Karras", "DPM Multi", "DPM Single"]) {
    const r = await post("/v1/ssd-1b", { prompt: "a kite", scheduler, num_inference_steps: 2, img_width: 16, img_height: 16, seed: 1 });
    assert.equal(r.status, 200, scheduler);
  }
});

test("serve: /sdapi/v1/img2img equals the library pipeline on the same init image", { skip: NO_FIXTURES }, async () => {
  const fx = openFixture("pipeline", "tiny-ssd", "cases.safetensors");
  const init = fx.float32("img2img.init_image");
  const [, , h, w] = fx.get("img2img.init_image").shape;
  const hwc = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < h * w; p++) hwc[p * 3 + c] = init[c * h * w + p];
  const rgb = toRgb8({ data: hwc, shape: [1, h, w, 3] });
  const c = cases.img2img as Case & { strength: number };
  const r = await post("/sdapi/v1/img2img", {
    init_images: [`data:image/png;base64,${encodePng(rgb).toString("base64")}`], prompt: c.prompt, negative_prompt: c.negative_prompt,
    steps: c.num_inference_steps, cfg_scale: c.guidance_scale, seed: c.seed, denoising_strength: c.strength, sampler_name: "Euler",
  });
  assert.equal(r.status, 200);
  const out = await r.json() as { images: string[]; parameters: Record<string, unknown>; info: string };
  assert.equal(out.parameters.init_images, null, "init images are not echoed");
  const lib = await pipe.img2img({ prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed, strength: c.strength, image: rgb, scheduler: "Euler" });
  assert.ok(levelDiff(Buffer.from(out.images[0], "base64"), lib.images.data) <= 1);
  assert.equal(JSON.parse(out.info).denoising_strength, c.strength);
  assert.match(decodePng(Buffer.from(out.images[0], "base64")).text.parameters, /Denoising strength: 0.6$/);
});

test("serve: Segmind /v1/ssd-1b answers PNG bytes, or base64 JSON", { skip: NO_FIXTURES }, async () => {
  const b = basic();
  const r = await post("/v1/ssd-1b", { prompt: b.prompt, negative_prompt: b.negative_prompt, samples: 1, scheduler: "Euler", num_inference_steps: 4, guidance_scale: 5, seed: 0, img_width: 32, img_height: 32, base64: false });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "image/png");
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  assert.ok(levelDiff(Buffer.from(await r.arrayBuffer()), ref) <= 1);
  const j = await (await post("/v1/ssd-1b", { prompt: "a boat", samples: 2, num_inference_steps: 2, img_width: 16, img_height: 16, seed: 5, base64: true })).json() as { image: string; images: string[]; seed: number };
  assert.equal(j.images.length, 2);
  assert.equal(j.image, j.images[0]);
  assert.equal(j.seed, 5);
  assert.equal(decodePng(Buffer.from(j.images[1], "base64")).width, 16);
});

test("serve: A1111 models, samplers, options; health; the web page", { skip: NO_FIXTURES }, async () => {
  const models = await getJson("/sdapi/v1/sd-models");
  assert.equal(models[0].model_name, "tiny-ssd");
  const samplers = await getJson("/sdapi/v1/samplers") as { name: string; aliases: string[]; options: Record<string, string> }[];
  for (const s of ["Euler", "Euler a", "DPM++ 2M", "DPM++ 3M SDE", "LMS", "DPM2", "DPM2 a", "PLMS", "DDIM", "UniPC"]) assert.ok(samplers.some((x) => x.name === s), s);
  // exactly what runs: no sampler without a diffusers scheduler
  assert.deepEqual(samplers.map((x) => x.name), A1111_SAMPLERS.map((x) => x.name));
  for (const name of ["DPM++ SDE", "DPM++ 2S a", "DPM fast", "DPM adaptive"]) assert.ok(!samplers.some((x) => x.name === name), name);
  assert.deepEqual(samplers.find((x) => x.name === "Euler a")!.aliases, ["k_euler_a", "k_euler_ancestral"]);
  const schedulers = await getJson("/sdapi/v1/schedulers") as { name: string; label: string; aliases: string[] | null; default_rho: number; need_inner_model: boolean }[];
  assert.deepEqual(schedulers.map((x) => x.label), ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal", "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"]);
  assert.deepEqual(schedulers.find((x) => x.name === "polyexponential"), { name: "polyexponential", label: "Polyexponential", aliases: null, default_rho: 1, need_inner_model: false });
  assert.deepEqual(schedulers.find((x) => x.name === "sgm_uniform"), { name: "sgm_uniform", label: "SGM Uniform", aliases: ["SGMUniform"], default_rho: -1, need_inner_model: true });
  assert.equal(schedulers.find((x) => x.name === "karras")!.default_rho, 7);
  assert.equal((await getJson("/sdapi/v1/options")).sd_model_checkpoint, "tiny-ssd");
  const health = await getJson("/health");
  assert.equal(health.status, "ok");
  assert.equal(health.mode, "in-process");
  assert.equal(health.model.default_size, 32);
  const page = await fetch(url + "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /text\/html/);
  const html = await page.text();
  for (const id of ["prompt", "negative", "steps", "guidance", "seed", "dice", "size", "scheduler", "count", "progress", "preview", "gallery"]) assert.ok(html.includes(`id="${id}"`), id);
  assert.ok(html.includes("1344x768") || html.includes("[1344,768]"), "SDXL buckets");
});

test("serve: jobs with server-sent events report every step with previews, then the result", { skip: NO_FIXTURES }, async () => {
  const r = await post("/v1/jobs", { prompt: "a castle", steps: 6, width: 32, height: 32, seed: 42 });
  assert.equal(r.status, 202);
  const { id, seed, events_url } = await r.json() as { id: string; seed: number; events_url: string };
  assert.equal(seed, 42);
  const es = await fetch(url + events_url);
  assert.equal(es.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const text = await es.text(); // the stream ends after the final event
  const events = text.split("\n\n").filter((b) => b.includes("event: ")).map((b) => ({
    event: /event: (.*)/.exec(b)![1], data: JSON.parse(/data: (.*)/.exec(b)![1]),
  }));
  assert.equal(events[0].event, "state");
  const steps = events.filter((e) => e.event === "step");
  const done = events.at(-1)!;
  assert.equal(done.event, "done", text.slice(0, 500));
  // the job may have begun before the stream was opened: the steps seen end at 6 and increase by one
  assert.ok(steps.length >= 1);
  assert.equal(steps.at(-1)!.data.step, 6);
  assert.equal(steps.at(-1)!.data.total_steps, 6);
  steps.forEach((s, i) => i && assert.equal(s.data.step, steps[i - 1].data.step + 1));
  const preview = decodePng(Buffer.from(String(steps.at(-1)!.data.preview).replace(/^data:image\/png;base64,/, ""), "base64"));
  const f = pipe.vaeScaleFactor;
  assert.deepEqual([preview.width, preview.height], [32 / f, 32 / f], "one preview pixel per latent pixel");
  assert.equal(done.data.id, id);
  assert.equal(done.data.result.images.length, 1);
  const img = await fetch(done.data.result.images[0].url);
  assert.equal(img.status, 200);
  const status = await getJson(`/v1/jobs/${id}`);
  assert.equal(status.status, "done");
  assert.equal(status.progress, 1);
  // a finished job's stream answers at once
  const again = await (await fetch(url + events_url)).text();
  assert.match(again, /event: done/);
  assert.equal((await fetch(url + "/v1/jobs/nope/events")).status, 404);
});

test("serve: latent preview projects SDXL latents with the standard factors", () => {
  const lat = new Float32Array(4 * 2 * 1);
  lat[0] = 1; // channel 0 of pixel 0 -> (0.3920, 0.4054, 0.4549)
  const rgb = latentToRgb(lat, [1, 4, 1, 2]);
  assert.deepEqual([...rgb.data.subarray(0, 3)], [Math.round(1.392 * 127.5), Math.round(1.4054 * 127.5), Math.round(1.4549 * 127.5)]);
  assert.deepEqual([...rgb.data.subarray(3, 6)], [128, 128, 128]);
});

test("serve: progress reports a running job with a preview, and interrupt ends it with a 200 and the image so far", { skip: NO_FIXTURES }, async () => {
  await idle();
  const pending = post("/sdapi/v1/txt2img", { prompt: "a long job", steps: 1000, width: 32, height: 32, seed: 1 });
  let r: Response;
  try {
    const p = await waitFor("a running job", async () => {
      const x = await getJson("/sdapi/v1/progress");
      return x.state.sampling_step >= 3 ? x : undefined;
    });
    assert.ok(p.progress > 0 && p.progress < 1, `progress ${p.progress}`);
    assert.ok(p.eta_relative > 0, "eta");
    assert.equal(p.state.sampling_steps, 1000);
    assert.equal(p.state.job_count, 1);
    assert.match(p.state.job, /^[0-9a-f]{20}$/);
    assert.equal(decodePng(Buffer.from(p.current_image, "base64")).width, 32 / pipe.vaeScaleFactor);
    const later = await waitFor("progress to move", async () => {
      const x = await getJson("/sdapi/v1/progress?skip_current_image=true");
      return x.state.sampling_step > p.state.sampling_step ? x : undefined;
    });
    assert.ok(later.progress > p.progress);
    assert.equal(later.current_image, null);
  } finally {
    const i = await post("/sdapi/v1/interrupt", {});
    assert.equal(i.status, 200);
    r = await pending;
  }
  assert.equal(r.status, 200);
  const out = await r.json() as { images: string[]; info: string };
  assert.equal(out.images.length, 1);
  assert.equal(decodePng(Buffer.from(out.images[0], "base64")).width, 32);
  assert.deepEqual(JSON.parse(out.info).all_seeds, [1]);
  const after = await idle();
  assert.equal(after.progress, 0);
});

test("serve: a job stops when its client disconnects", { skip: NO_FIXTURES }, async () => {
  await idle();
  const ac = new AbortController();
  const pending = post("/sdapi/v1/txt2img", { prompt: "nobody waits", steps: 1000, width: 32, height: 32 }, { signal: ac.signal }).catch((e: Error) => e);
  const p = await waitFor("a running job", async () => {
    const x = await getJson("/sdapi/v1/progress");
    return x.state.sampling_step >= 2 ? x : undefined;
  });
  ac.abort();
  assert.ok((await pending) instanceof Error);
  assert.ok(p.state.job);
  await idle();
  const job = await getJson(`/v1/jobs/${p.state.job}`);
  assert.equal(job.status, "failed");
  assert.equal(job.error.code, "job_disconnected");
  assert.ok(job.step < 1000, `stopped at step ${job.step}`);
});

test("serve: concurrent requests are all served, in arrival order; a full queue answers 429 with Retry-After", { skip: NO_FIXTURES }, async () => {
  await idle();
  // one long job runs, MAX_QUEUE wait, the next is refused
  const long = await (await post("/v1/jobs", { prompt: "long", steps: 1000, width: 32, height: 32 })).json() as { id: string };
  const queued: string[] = [];
  for (let i = 0; i < MAX_QUEUE; i++) {
    const r = await post("/v1/jobs", { prompt: `queued ${i}`, steps: 2, width: 16, height: 16, seed: 100 + i });
    assert.equal(r.status, 202);
    queued.push(((await r.json()) as { id: string }).id);
  }
  await waitFor("the long job to run", async () => ((await getJson(`/v1/jobs/${long.id}`)).status === "running" ? true : undefined));
  const full = await post("/sdapi/v1/txt2img", { prompt: "one too many", steps: 2, width: 16, height: 16 });
  assert.equal(full.status, 429);
  assert.match(full.headers.get("retry-after") ?? "", /^\d+$/);
  assert.equal(((await full.json()) as { error: { code: string } }).error.code, "queue_full");
  // cancelling a queued job frees its place; the long one is cancelled too
  const del = await fetch(`${url}/v1/jobs/${queued[0]}`, { method: "DELETE" });
  assert.equal(del.status, 200);
  assert.equal((await getJson(`/v1/jobs/${queued[0]}`)).error.code, "job_cancelled");
  await fetch(`${url}/v1/jobs/${long.id}`, { method: "DELETE" });
  await idle();
  for (const id of queued.slice(1)) assert.equal((await getJson(`/v1/jobs/${id}`)).status, "done");
  const order = await Promise.all(queued.slice(1).map((id) => getJson(`/v1/jobs/${id}`)));
  assert.ok(order[0].started_at <= order[1].started_at, "first come, first served");

  // MAX_QUEUE + 1 concurrent synchronous requests: none lost, each with its own seed's image
  const seeds = Array.from({ length: MAX_QUEUE + 1 }, (_, i) => 200 + i);
  const answers = await Promise.all(seeds.map((seed) => post("/sdapi/v1/txt2img", { prompt: "a tree", steps: 2, width: 16, height: 16, seed })));
  for (const a of answers) assert.equal(a.status, 200);
  const bodies = await Promise.all(answers.map((a) => a.json() as Promise<{ images: string[]; info: string }>));
  assert.deepEqual(bodies.map((b) => JSON.parse(b.info).seed), seeds);
  const solo = await (await post("/sdapi/v1/txt2img", { prompt: "a tree", steps: 2, width: 16, height: 16, seed: seeds[2] })).json() as { images: string[] };
  assert.equal(bodies[2].images[0], solo.images[0]);
});

test("serve: every bad request gets a clear JSON error with its status, and the server keeps serving", { skip: NO_FIXTURES }, async () => {
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46]).toString("base64");
  const png12 = encodePng({ width: 12, height: 8, data: new Uint8Array(12 * 8 * 3) }).toString("base64");
  const long = "x".repeat(10001);
  const cases: [string, string, unknown, number, string][] = [
    ["POST", "/v1/images/generations", "{\"prompt\": ", 400, "invalid_json"],
    ["POST", "/sdapi/v1/txt2img", "not json", 400, "invalid_json"],
    ["POST", "/v1/ssd-1b", "", 400, "invalid_json"],
    ["POST", "/v1/jobs", "[1, 2]", 400, "invalid_json"],
    ["POST", "/v1/images/generations", { prompt: 5 }, 400, "invalid_type"],
    ["POST", "/v1/images/generations", {}, 400, "missing_field"],
    ["POST", "/v1/images/generations", { prompt: "x", n: "2" }, 400, "invalid_type"],
    ["POST", "/v1/images/generations", { prompt: "x", n: 1.5 }, 400, "invalid_type"],
    ["POST", "/v1/images/generations", { prompt: "x", response_format: "jpeg" }, 400, "invalid_value"],
    ["POST", "/v1/images/generations", { prompt: "x", size: "big" }, 400, "invalid_size"],
    ["POST", "/v1/images/generations", { prompt: "x", size: "36x32" }, 400, "invalid_size"],
    ["POST", "/v1/images/generations", { prompt: "x", size: "4096x1024" }, 400, "invalid_size"],
    ["POST", "/v1/images/generations", { prompt: "x", n: 9 }, 400, "too_many_images"],
    ["POST", "/v1/images/generations", { prompt: long }, 400, "prompt_too_long"],
    ["POST", "/v1/images/generations", { prompt: "x", scheduler: "Frobnicator" }, 400, "unknown_scheduler"],
    ["POST", "/v1/images/generations", { prompt: "x", seed: -2 }, 400, "invalid_value"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", steps: "20" }, 400, "invalid_type"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 0 }, 400, "invalid_value"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", cfg_scale: "high" }, 400, "invalid_type"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", seed: "42" }, 400, "invalid_type"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", width: 36 }, 400, "invalid_size"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", height: 2056 }, 400, "invalid_size"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", batch_size: 3, n_iter: 3 }, 400, "too_many_images"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", negative_prompt: long }, 400, "prompt_too_long"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", sampler_name: "Nope" }, 400, "unknown_scheduler"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", sampler_name: "DPM++ 2M", scheduler: "Polyexponential" }, 400, "invalid_value"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", scheduler: "Sometimes" }, 400, "invalid_value"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", sampler_name: "Euler a", scheduler: "Karras" }, 400, "invalid_value"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", sampler_name: "DPM++ SDE" }, 400, "unknown_scheduler"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", sampler_name: "DPM++ 2S a Karras" }, 400, "unknown_scheduler"],
    ["POST", "/v1/ssd-1b", { prompt: "x", scheduler: "DPM++ SDE Karras" }, 400, "unknown_scheduler"],
    ["POST", "/sdapi/v1/txt2img", { prompt: "x", enable_hr: true, hr_upscaler: "Bicubic" }, 400, "invalid_value"],
    ["POST", "/sdapi/v1/img2img", { prompt: "x" }, 400, "missing_field"],
    ["POST", "/sdapi/v1/img2img", { prompt: "x", init_images: ["%%%"] }, 400, "invalid_image"],
    ["POST", "/sdapi/v1/img2img", { prompt: "x", init_images: [jpeg] }, 400, "invalid_image"],
    ["POST", "/sdapi/v1/img2img", { prompt: "x", init_images: [png12] }, 400, "invalid_size"],
    ["POST", "/sdapi/v1/img2img", { prompt: "x", init_images: [encodePng({ width: 8, height: 8, data: new Uint8Array(192) }).toString("base64")], steps: 2, denoising_strength: 0.2 }, 400, "invalid_value"],
    ["POST", "/v1/ssd-1b", { prompt: "x", samples: 9, base64: true }, 400, "too_many_images"],
    ["POST", "/v1/ssd-1b", { prompt: "x", base64: "yes" }, 400, "invalid_type"],
    ["POST", "/v1/ssd-1b", { prompt: "x", img_width: 1001 }, 400, "invalid_size"],
    ["POST", "/v1/ssd-1b", { prompt: "x", samples: 2 }, 400, "invalid_value"],
    ["POST", "/v1/jobs", { prompt: "x", size: "0x0" }, 400, "invalid_size"],
    ["GET", "/v1/jobs/unknown", undefined, 404, "not_found"],
    ["GET", "/files/..%2F..%2Fetc%2Fpasswd", undefined, 404, "not_found"],
    ["GET", "/nowhere", undefined, 404, "not_found"],
    ["GET", "/sdapi/v1/txt2img", undefined, 405, "method_not_allowed"],
    ["POST", "/sdapi/v1/options", { sd_model_checkpoint: "other-model" }, 400, "invalid_value"],
  ];
  for (const [method, path, body, status, code] of cases) {
    const what = `${method} ${path} ${typeof body === "string" ? body.slice(0, 20) : JSON.stringify(body)?.slice(0, 80)}`;
    const r = method === "POST" ? await post(path, body) : await fetch(url + path, { method });
    assert.equal(r.status, status, what);
    assert.match(r.headers.get("content-type") ?? "", /application\/json/, what);
    const e = await r.json() as { error: { message: string; type: string; code: string } };
    assert.equal(e.error.code, code, `${what}: ${e.error.message}`);
    assert.ok(e.error.message.length > 10 && typeof e.error.type === "string", what);
    assert.equal((await fetch(url + "/health")).status, 200, `still serving after ${what}`);
  }
  // and it still generates
  const ok = await post("/v1/images/generations", { prompt: "still alive", size: "16x16", steps: 1 });
  assert.equal(ok.status, 200);
});

test("cli serve: listens on a free loopback port, answers, and stops on SIGTERM; bad flags exit 2", { skip: NO_FIXTURES }, async () => {
  const served = await startServeCli(["serve", "--model", modelDir, "--port", "0", "--max-queue", "2"], process.env, 30000);
  try {
    const listening = served.url;
    const health = await (await fetch(`${listening}/health`)).json() as { queue: { max: number }; model: { name: string } };
    assert.equal(health.queue.max, 2);
    assert.equal(health.model.name, "tiny-ssd");
    const r = await fetch(`${listening}/sdapi/v1/txt2img`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "x", steps: 1, width: 16, height: 16, seed: 3 }) });
    assert.equal(r.status, 200);
  } finally {
    assert.equal(await served.stop(), 0, served.stderr());
  }
  for (const [args, re] of [
    [["serve", "--port", "http"], /--port must be a whole number/],
    [["serve", "--variant", "fp8"], /--variant must be fp16 or fp32/],
    [["serve", "--queue", "localhost:6379"], /--queue must be a redis:\/\/ URL/],
    [["worker", "--model", "x"], /--queue redis:\/\/HOST:PORT is required/],
  ] as [string[], RegExp][]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, re);
  }
  // nothing listens on loopback port 1: a clear error at once, not a hang
  for (const args of [["serve", "--queue", "redis://127.0.0.1:1", "--port", "0"], ["worker", "--queue", "redis://127.0.0.1:1", "--model", modelDir]]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
  }
});
