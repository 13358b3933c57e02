/**
 * The fast preset in the server (`ssd1b serve --fast`): `preset: "fast"` in every API gives the
 * library's fast-preset image for the same seed (LCM-LoRA at weight 1, LCM, 4 steps, guidance 1,
 * TAESD decode), one UNet pass per step with no CFG batch, LCM and 4 steps in the PNG text; A1111 and
 * Segmind fields are replaced by the preset, explicit native/OpenAI ones win; request LoRAs stack on
 * the LCM-LoRA; a server without --fast answers 400; the CLI flags; the web page's Fast checkbox in
 * Chromium. The tiny model stands in for SSD-1B: the PEFT LoRA fixture as --fast-lora, a 2x TAESD.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { startServeCli } from "./helpers/serve-cli.js";
import { NO_FIXTURES, PROJECT_ROOT, fixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { tinyTaesdIn } from "./helpers/tiny-taesd.js";
import { StableDiffusionXLPipeline, type PipelineOutput } from "../src/pipelines/sdxl/index.js";
import { UNetRunner } from "../src/pipelines/sessions.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { toRgb8 } from "../src/image/image.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { LoraLibrary } from "../src/server/lora-library.js";
import { LoraPipelines } from "../src/server/lora-pipelines.js";
import { RedisQueue } from "../src/server/redis-queue.js";
import { startRedisWorker } from "../src/server/redis-worker.js";
import type { JobSpec } from "../src/server/job.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const CHROMIUM = "/usr/bin/chromium";

const tmp = mkdtempSync(join(tmpdir(), "server-fast-"));
const loraDir = join(tmp, "loras");
let modelDir = "";
let taesd = "";
let lcmLora = "";
let pipe: StableDiffusionXLPipeline;
/** The library with the fast preset: what a fast request must equal. */
let lib: StableDiffusionXLPipeline;
let queue: LocalQueue;
let server: RunningServer;
let bare: RunningServer;

const PROMPT = "An astronaut riding a green horse", NEGATIVE = "ugly, blurry, poor quality";
const infotext = (steps: number, extra = "") => `${PROMPT}${extra}\nNegative prompt: ${NEGATIVE}\nSteps: ${steps}, Sampler: LCM, CFG scale: 1, Seed: 7, Size: 32x32, Model: tiny-ssd`;

before(async () => {
  if (NO_FIXTURES) return;
  modelDir = tinyModelIn(tmp);
  taesd = tinyTaesdIn(tmp);
  // a LoRA made for the tiny model stands in for its LCM-LoRA; the same matrices in kohya form go in --lora-dir
  lcmLora = join(tmp, "lcm-lora.safetensors");
  copyFileSync(fixture("lora", "peft", "lora.safetensors"), lcmLora);
  mkdirSync(loraDir, { recursive: true });
  copyFileSync(fixture("lora", "kohya", "lora.safetensors"), join(loraDir, "style.safetensors"));
  pipe = await StableDiffusionXLPipeline.fromPretrained(modelDir, { taesd });
  lib = await StableDiffusionXLPipeline.fromPretrained(modelDir, { preset: { name: "fast", lcmLora, taesd } });
  const files = new FileStore();
  const loras = new LoraLibrary(loraDir);
  queue = new LocalQueue(pipe, 4, files, { loras, fastLora: lcmLora });
  server = await startServer({ queue, files, loras, fast: true, host: "127.0.0.1", port: 0 });
  bare = await startServer({ queue: new LocalQueue(pipe, 4, new FileStore()), host: "127.0.0.1", port: 0 });
});

after(async () => {
  await server?.close();
  await bare?.close();
  await pipe?.release();
  await lib?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const post = (base: string, path: string, body: unknown) =>
  fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function ok<T>(r: Response): Promise<T> {
  const out = await r.json() as T & { error?: { message: string } };
  assert.equal(r.status, 200, out.error?.message);
  return out;
}

/** Largest difference in 8-bit levels between a PNG and image `index` of a pipeline output. */
function levels(png: Buffer, ref: PipelineOutput, index = 0): number {
  const a = decodePng(png).data, b = toRgb8(ref.images, index).data;
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The UNet calls (their batch sizes) made while `fn` runs. */
async function unetBatches<T>(fn: () => Promise<T>): Promise<{ result: T; batches: number[] }> {
  const run = UNetRunner.prototype.run;
  const batches: number[] = [];
  UNetRunner.prototype.run = function (this: UNetRunner, batch, ...rest) { batches.push(batch); return run.call(this, batch, ...rest); };
  try {
    return { result: await fn(), batches };
  } finally {
    UNetRunner.prototype.run = run;
  }
}

const libFast = () => lib.generate({ prompt: PROMPT, negativePrompt: NEGATIVE, seed: 7, width: 32, height: 32 });

test("server fast: the library's fast preset is LCM-LoRA + LCM + 4 steps + guidance 1 + TAESD (the reference below)", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const viaPreset = await libFast();
  const variant = await pipe.withLoras([{ file: lcmLora, weight: 1 }]);
  try {
    const spelled = await variant.generate({ prompt: PROMPT, negativePrompt: NEGATIVE, seed: 7, width: 32, height: 32, scheduler: "LCM", numInferenceSteps: 4, guidanceScale: 1, fastDecode: true });
    assert.deepEqual(viaPreset.images.data, spelled.images.data);
    assert.equal(viaPreset.scheduler.className, "LCMScheduler");
    assert.equal(viaPreset.timesteps.length, 4);
  } finally {
    await variant.release();
  }
});

test("server fast: A1111 txt2img with preset fast equals the library image, replaces sampler/steps/cfg, one UNet pass per step, PNG text LCM / 4 steps", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const ref = await libFast();
  const created = queue.pipelines.created;
  // what an A1111 client sends anyway: its own sampler, steps and cfg_scale, all replaced
  const body = { prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, width: 32, height: 32, sampler_name: "Euler a", steps: 25, cfg_scale: 7, preset: "fast" };
  const { result: out, batches } = await unetBatches(() => post(server.url, "/sdapi/v1/txt2img", body).then((r) => ok<{ images: string[]; info: string; parameters: Record<string, unknown> }>(r)));
  assert.deepEqual(batches, [1, 1, 1, 1], "4 UNet calls of batch 1: no CFG batch");
  const png = Buffer.from(out.images[0], "base64");
  const d = levels(png, ref);
  t.diagnostic(`A1111 fast vs library fast preset: ${d} levels`);
  assert.ok(d <= 1, `${d} levels from the library's image`);
  assert.equal(decodePng(png).text.parameters, infotext(4));
  const info = JSON.parse(out.info);
  assert.deepEqual([info.sampler_name, info.steps, info.cfg_scale], ["LCM", 4, 1]);
  assert.deepEqual([out.parameters.sampler_name, out.parameters.steps, out.parameters.cfg_scale, out.parameters.preset], ["LCM", 4, 1, "fast"]);
  assert.equal(queue.pipelines.created, created + 1, "the LCM-LoRA set compiled once");

  // without the preset the same request runs as asked (CFG batch of 2, 25 steps, no LoRA)
  const plain = await unetBatches(() => post(server.url, "/sdapi/v1/txt2img", { ...body, preset: undefined, steps: 3 }).then((r) => ok<{ images: string[] }>(r)));
  assert.deepEqual(plain.batches, [2, 2, 2]);
  assert.ok(levels(Buffer.from(plain.result.images[0], "base64"), ref) > 3);
  // and fast again: the cached variant, the same image
  const again = await ok<{ images: string[] }>(await post(server.url, "/sdapi/v1/txt2img", body));
  assert.equal(again.images[0], out.images[0]);
  assert.equal(queue.pipelines.created, created + 1, "the fast set stayed cached");
});

test("server fast: OpenAI, Segmind and the job API give the same image; explicit native steps win; img2img", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const ref = await libFast();
  const openai = await ok<{ data: { b64_json: string }[] }>(await post(server.url, "/v1/images/generations", { prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, size: "32x32", preset: "fast" }));
  assert.ok(levels(Buffer.from(openai.data[0].b64_json, "base64"), ref) <= 1, "OpenAI");
  // Segmind clients always send scheduler, steps and guidance: replaced
  const segmind = await post(server.url, "/v1/ssd-1b", { prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, img_width: 32, img_height: 32, scheduler: "UniPC", num_inference_steps: 25, guidance_scale: 7.5, preset: "fast" });
  assert.equal(segmind.status, 200);
  const segPng = Buffer.from(await segmind.arrayBuffer());
  assert.ok(levels(segPng, ref) <= 1, "Segmind");
  assert.equal(decodePng(segPng).text.parameters, infotext(4));

  // the job API: defaults from the preset, explicit steps kept (LCM, guidance 1 still)
  const job = async (body: Record<string, unknown>) => {
    const r = await post(server.url, "/v1/jobs", body);
    const { id } = await r.json() as { id: string };
    assert.equal(r.status, 202);
    for (;;) {
      const s = await (await fetch(`${server.url}/v1/jobs/${id}`)).json() as { status: string; params: Record<string, unknown>; result?: { images: { url: string }[]; infotexts: string[] }; error?: { message: string } };
      if (s.status === "failed") assert.fail(s.error?.message);
      if (s.status === "done") return { ...s, png: Buffer.from(await (await fetch(s.result!.images[0].url)).arrayBuffer()) };
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const native = await job({ prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, width: 32, height: 32, preset: "fast" });
  assert.ok(levels(native.png, ref) <= 1, "jobs API");
  assert.deepEqual([native.params.steps, native.params.guidance_scale, native.params.scheduler, native.params.preset], [4, 1, "LCM", "fast"]);
  const two = await job({ prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, width: 32, height: 32, preset: "fast", steps: 2 });
  assert.equal(decodePng(two.png).text.parameters, infotext(2));
  const lib2 = await lib.generate({ prompt: PROMPT, negativePrompt: NEGATIVE, seed: 7, width: 32, height: 32, numInferenceSteps: 2 });
  assert.ok(levels(two.png, lib2) <= 1, "2 LCM steps as the library runs them");

  // img2img: the preset's 4 steps x strength 0.5 = 2 steps, TAESD decode
  const init = encodePng(toRgb8(ref.images, 0));
  const i2i = await ok<{ images: string[]; info: string }>(await post(server.url, "/sdapi/v1/img2img", {
    prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, init_images: [init.toString("base64")], denoising_strength: 0.5, steps: 30, preset: "fast",
  }));
  const refI2i = await lib.img2img({ prompt: PROMPT, negativePrompt: NEGATIVE, seed: 7, image: toRgb8(ref.images, 0), strength: 0.5 });
  assert.equal(refI2i.timesteps.length, 2);
  assert.ok(levels(Buffer.from(i2i.images[0], "base64"), refI2i) <= 1, "img2img");
  assert.equal(JSON.parse(i2i.info).steps, 4);
});

test("server fast: the request's LoRAs stack on the LCM-LoRA", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  // style.safetensors holds the LCM stand-in's matrices: LCM-LoRA at 1 + style at 0.5
  const variant = await lib.withLoras([{ file: join(loraDir, "style.safetensors"), weight: 0.5 }]);
  try {
    const ref = await variant.generate({ prompt: PROMPT, negativePrompt: NEGATIVE, seed: 7, width: 32, height: 32 });
    const out = await ok<{ images: string[] }>(await post(server.url, "/sdapi/v1/txt2img", { prompt: `${PROMPT} <lora:style:0.5>`, negative_prompt: NEGATIVE, seed: 7, width: 32, height: 32, preset: "fast" }));
    const png = Buffer.from(out.images[0], "base64");
    assert.ok(levels(png, ref) <= 1, "LCM-LoRA + <lora:style:0.5>");
    assert.ok(levels(png, await libFast()) > 3, "the extra LoRA does change the image");
    assert.equal(decodePng(png).text.parameters, infotext(4, " <lora:style:0.5>"));
  } finally {
    await variant.release();
  }
});

test("server fast: /health lists the preset; without --fast a fast request is a 400 that says so; an unknown preset is a 400", { skip: NO_FIXTURES, timeout: 60_000 }, async () => {
  assert.deepEqual((await (await fetch(server.url + "/health")).json() as { presets: string[] }).presets, ["fast"]);
  assert.deepEqual((await (await fetch(bare.url + "/health")).json() as { presets: string[] }).presets, []);
  for (const [path, body] of [
    ["/sdapi/v1/txt2img", { prompt: "x", preset: "fast" }],
    ["/v1/images/generations", { prompt: "x", preset: "fast" }],
    ["/v1/ssd-1b", { prompt: "x", preset: "fast" }],
    ["/v1/jobs", { prompt: "x", preset: "fast" }],
  ] as const) {
    const r = await post(bare.url, path, body);
    const e = await r.json() as { error: { message: string; code: string; param: string } };
    assert.equal(r.status, 400, path);
    assert.equal(e.error.code, "no_fast_preset", path);
    assert.equal(e.error.param, "preset");
    assert.match(e.error.message, /not started with --fast.*restart `ssd1b serve` with --fast/, path);
  }
  const r = await post(server.url, "/sdapi/v1/txt2img", { prompt: "x", preset: "turbo" });
  assert.equal(r.status, 400);
  assert.match((await r.json() as { error: { message: string } }).error.message, /preset must be one of "fast", got "turbo"/);
  // a runner without the LCM-LoRA (a worker without --fast) refuses a fast job the same way
  const lp = new LoraPipelines(pipe, { runner: "worker" });
  await assert.rejects(lp.use([], async () => 0, true), /this worker was not started with --fast.*`ssd1b worker` with --fast/);
});

test("server fast through Redis: the spec carries the preset, a worker with the LCM-LoRA runs it, one without refuses it", { skip: NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found"), timeout: 120_000 }, async () => {
  const { url: queueUrl, process: redis } = await startRedisServer();
  try {
    const files = new FileStore();
    const rq = await RedisQueue.connect(queueUrl, { maxQueue: 4, files, model: "tiny-ssd" });
    const front = await startServer({ queue: rq, files, fast: true, host: "127.0.0.1", port: 0 });
    try {
      const worker = await startRedisWorker({ url: queueUrl, pipe, fastLora: lcmLora });
      try {
        const out = await ok<{ images: string[] }>(await post(front.url, "/sdapi/v1/txt2img", { prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, width: 32, height: 32, steps: 20, preset: "fast" }));
        const png = Buffer.from(out.images[0], "base64");
        assert.ok(levels(png, await libFast()) <= 1, "worker image vs the library's fast image");
        assert.equal(decodePng(png).text.parameters, infotext(4));
      } finally {
        await worker.close();
      }
      // `ssd1b worker` without --fast: the job fails with a message that says what to do
      const plain = await startRedisWorker({ url: queueUrl, pipe });
      try {
        const spec: JobSpec = { prompt: "x", steps: 4, guidanceScale: 1, seed: 1, scheduler: "LCM", width: 32, height: 32, batchSize: 1, iterations: 1, preset: "fast" };
        await assert.rejects((await rq.submit(spec)).done, (e: { status: number; message: string }) => e.status === 400 && /this worker was not started with --fast/.test(e.message));
      } finally {
        await plain.close();
      }
    } finally {
      await front.close();
    }
  } finally {
    const exited = new Promise((r) => redis.once("exit", r));
    redis.kill("SIGTERM");
    await exited;
  }
});

test("cli serve --fast: --fast-lora and --taesd from flags, a fast request over HTTP; bad flag combinations exit 2", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const env = { ...process.env, HF_HUB_OFFLINE: "1", HF_HOME: join(tmp, "hf") };
  const served = await startServeCli(["serve", "--model", modelDir, "--port", "0", "--fast", "--fast-lora", lcmLora, "--taesd", taesd], env);
  try {
    const url = served.url;
    assert.match(served.stderr(), /fast preset: LCM-LoRA .*lcm-lora\.safetensors, TAESD .*tiny-taesd/);
    assert.deepEqual((await (await fetch(url + "/health")).json() as { presets: string[] }).presets, ["fast"]);
    const out = await ok<{ images: string[] }>(await post(url, "/sdapi/v1/txt2img", { prompt: PROMPT, negative_prompt: NEGATIVE, seed: 7, width: 32, height: 32, preset: "fast" }));
    assert.ok(levels(Buffer.from(out.images[0], "base64"), await libFast()) <= 1);
  } finally {
    assert.equal(await served.stop(), 0, served.stderr());
  }
  for (const [args, re] of [
    [["serve", "--fast-lora", lcmLora], /--fast-lora needs --fast/],
    [["serve", "--fast", "--fast-lora", join(tmp, "nowhere.safetensors")], /--fast-lora .*nowhere\.safetensors: file not found/],
    [["serve", "--fast", "--fast-lora", lcmLora, "--queue", "redis://127.0.0.1:1"], /give them --fast-lora/],
    [["worker", "--queue", "redis://127.0.0.1:1", "--fast-lora", lcmLora], /--fast-lora needs --fast/],
    // the tiny model is no SSD-1B / SDXL / Vega: its LCM-LoRA must be named
    [["serve", "--model", modelDir, "--port", "0", "--fast", "--taesd", taesd], /--fast: the fast preset needs an LCM-LoRA made for this model.*--fast-lora REPO_OR_FILE/],
  ] as [string[], RegExp][]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60000, env });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

const NO_BROWSER = NO_FIXTURES || (existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`);

test("web page: the Fast checkbox (only with --fast) greys steps/guidance/scheduler, sends preset fast, and the image arrives", { skip: NO_BROWSER, timeout: 180_000 }, async () => {
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      timeout: 60000,
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.setDefaultTimeout(60000);

    // a server without --fast: no checkbox
    await page.goto(bare.url + "/");
    await page.waitForSelector('body[data-ready="1"]');
    assert.equal(await page.isVisible("#fast"), false, "hidden without --fast");

    await page.goto(server.url + "/");
    await page.waitForSelector('body[data-ready="1"]');
    assert.ok(await page.isVisible("#fast"), "shown with --fast");
    assert.match(await page.textContent("#fast-toggle") ?? "", /Fast \(LCM, 4 steps\)/);
    await page.fill("#steps", "30");
    await page.check("#fast");
    for (const id of ["#steps", "#guidance", "#scheduler"]) assert.ok(await page.isDisabled(id), `${id} disabled`);
    assert.equal(await page.inputValue("#steps"), "4", "shows the preset's steps");
    assert.equal(await page.inputValue("#scheduler"), "LCM");
    // unchecking gives the user's values back, checking again greys them once more
    await page.uncheck("#fast");
    assert.equal(await page.inputValue("#steps"), "30");
    assert.ok(!(await page.isDisabled("#steps")));
    await page.check("#fast");

    await page.fill("#prompt", PROMPT);
    await page.fill("#negative", NEGATIVE);
    await page.fill("#seed", "7");
    const sent: Record<string, unknown>[] = [];
    await page.route("**/v1/jobs", async (route) => {
      sent.push(JSON.parse(route.request().postData() ?? "{}"));
      await route.continue();
    });
    await page.click("#generate");
    await page.waitForSelector("#gallery .card img");
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>("#gallery .card img")).every((i) => i.complete && i.naturalWidth === 32));
    assert.equal(sent.length, 1);
    assert.equal(sent[0].preset, "fast");
    assert.deepEqual([sent[0].steps, sent[0].guidance_scale, sent[0].scheduler], [undefined, undefined, undefined], "the preset's own settings apply");
    assert.equal(await page.textContent("#gallery .card pre"), infotext(4));
    const href = await page.getAttribute("#gallery .card a.download", "href");
    const png = Buffer.from(await (await fetch(new URL(href!, server.url))).arrayBuffer());
    assert.ok(levels(png, await libFast()) <= 1, "the page's image is the library's fast image");

    // "reuse these settings" of a fast job checks the box again
    await page.uncheck("#fast");
    await page.click("#gallery .card .reuse");
    assert.ok(await page.isChecked("#fast"));
    assert.ok(await page.isDisabled("#steps"));
    mkdirSync(join(PROJECT_ROOT, "test-output"), { recursive: true });
    await page.screenshot({ path: join(PROJECT_ROOT, "test-output", "server-web-fast.png"), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser?.close();
  }
});
