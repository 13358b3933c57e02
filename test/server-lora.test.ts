/**
 * Per-request LoRAs in the server (`ssd1b serve --lora-dir DIR`): `<lora:NAME:W>` prompt tags and
 * the `loras` JSON field in every API give diffusers' lora_basic image for the fixture LoRA, without
 * them the plain basic image; /sdapi/v1/loras lists the folder; bad names, traversal, bad weights and
 * a server without --lora-dir are 400s; a LoRA set is compiled once and reused; the Redis worker
 * resolves a job's LoRAs against its own --lora-dir.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture, openFixture, levelDiff } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng } from "../src/image/png.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { LoraLibrary } from "../src/server/lora-library.js";
import { LoraPipelines } from "../src/server/lora-pipelines.js";
import { RedisQueue } from "../src/server/redis-queue.js";
import { startRedisWorker } from "../src/server/redis-worker.js";
import type { JobSpec } from "../src/server/job.js";
import { saveTensors } from "../src/safetensors/index.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

const tmp = mkdtempSync(join(tmpdir(), "server-lora-"));
const loraDir = join(tmp, "loras");
let pipe: StableDiffusionXLPipeline;
let queue: LocalQueue;
let server: RunningServer;
let bare: RunningServer;
let url = "";

/** The lora_basic case (the pipeline basic arguments) as A1111 fields. */
const BASIC = { prompt: "An astronaut riding a green horse", negative_prompt: "ugly, blurry, poor quality", sampler_name: "Euler", seed: 0, steps: 4, cfg_scale: 5, width: 32, height: 32 };

before(async () => {
  if (NO_FIXTURES) return;
  // astro-style (PEFT form) at the top, kohya-style in a sub-folder, a link out of the folder
  mkdirSync(join(loraDir, "sub"), { recursive: true });
  copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(loraDir, "astro-style.safetensors"));
  copyFileSync(fixture("lora", "kohya", "lora.safetensors"), join(loraDir, "sub", "kohya-style.safetensors"));
  copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(tmp, "outside.safetensors"));
  symlinkSync(join(tmp, "outside.safetensors"), join(loraDir, "escape.safetensors"));
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const files = new FileStore();
  const loras = new LoraLibrary(loraDir);
  queue = new LocalQueue(pipe, 4, files, { loras });
  server = await startServer({ queue, files, loras, host: "127.0.0.1", port: 0 });
  url = server.url;
  // the same model without --lora-dir (only asked for requests that fail before queuing)
  bare = await startServer({ queue: new LocalQueue(pipe, 4, new FileStore()), host: "127.0.0.1", port: 0 });
});

after(async () => {
  await server?.close();
  await bare?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const post = (base: string, path: string, body: unknown) =>
  fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });


const loraRef = () => openFixture("lora", "peft", "cases.safetensors").float32("lora_basic.images");
const basicRef = () => openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");

async function txt2img(body: Record<string, unknown>): Promise<{ png: Buffer; info: Record<string, any> }> {
  const r = await post(url, "/sdapi/v1/txt2img", body);
  const out = await r.json() as { images: string[]; info: string; error?: { message: string } };
  assert.equal(r.status, 200, out.error?.message);
  return { png: Buffer.from(out.images[0], "base64"), info: JSON.parse(out.info) };
}

test("server lora: <lora:NAME:1> in an A1111 prompt gives diffusers' lora_basic image, without it basic; the PNG text keeps the tag", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const created = queue.pipelines.created;
  const tagged = `${BASIC.prompt} <lora:astro-style:1>`;
  const on = await txt2img({ ...BASIC, prompt: tagged });
  const d = levelDiff(on.png, loraRef());
  t.diagnostic(`<lora:astro-style:1> vs lora_basic: ${d.toFixed(3)} levels`);
  assert.ok(d <= 1, `lora image vs lora_basic: ${d} levels`);
  const text = `${tagged}\nNegative prompt: ${BASIC.negative_prompt}\nSteps: 4, Sampler: Euler, CFG scale: 5, Seed: 0, Size: 32x32, Model: tiny-ssd`;
  assert.equal(decodePng(on.png).text.parameters, text, "A1111 keeps the tag in the prompt line");
  assert.equal(on.info.prompt, tagged);
  assert.equal(queue.pipelines.created, created + 1, "one variant compiled");
  // only the pipeline running a job keeps a UNet session (each holds its own weights)
  const variant = [...(queue.pipelines as unknown as { cache: Map<string, StableDiffusionXLPipeline> }).cache.values()][0];
  assert.equal(queue.pipelines.base.unet.compiled, false, "the base UNet was released for the LoRA job");
  assert.equal(variant.unet.compiled, true);

  const off = await txt2img(BASIC);
  assert.equal(variant.unet.compiled, false, "the variant's UNet was released for the plain job");
  assert.equal(queue.pipelines.base.unet.compiled, true);
  const d0 = levelDiff(off.png, basicRef());
  assert.ok(d0 <= 1, `no tag vs basic: ${d0} levels`);
  assert.ok(levelDiff(off.png, loraRef()) > 3, "the LoRA does change the image");

  // the tag in the negative prompt, the kohya file from the sub-folder, and tags that cancel out
  const neg = await txt2img({ ...BASIC, negative_prompt: `<lora:kohya-style>${BASIC.negative_prompt}` });
  assert.ok(levelDiff(neg.png, loraRef()) <= 1, "a tag in the negative prompt applies too (kohya file)");
  const cancelled = await txt2img({ ...BASIC, prompt: `${BASIC.prompt} <lora:astro-style:0.5> <lora:astro-style:-0.5>` });
  assert.ok(levelDiff(cancelled.png, basicRef()) <= 1, "weights of one LoRA add up (to 0: the base pipeline)");
  // half and half of the two files (the same matrices) equal one at 1
  const halves = await txt2img({ ...BASIC, prompt: `<lora:astro-style:0.5> ${BASIC.prompt} <lora:kohya-style:0.5>` });
  assert.ok(levelDiff(halves.png, loraRef()) <= 1, "two LoRAs at 0.5 stack");
});

test("server lora: the loras field in the OpenAI, Segmind and job APIs gives the same image; one LoRA set is compiled once", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const loras = [{ name: "astro-style", weight: 1 }];
  // warm the cache with this set, then count; A1111's parameters echo carries the field as prompt tags
  const r = await post(url, "/sdapi/v1/txt2img", { ...BASIC, loras });
  const echoed = ((await r.json()) as { parameters: Record<string, unknown> }).parameters;
  assert.equal(echoed.prompt, `${BASIC.prompt} <lora:astro-style:1>`);
  assert.equal(echoed.loras, undefined, "sent back as it is, the echo applies the LoRA once");
  const created = queue.pipelines.created;
  const openai = await post(url, "/v1/images/generations", {
    prompt: BASIC.prompt, negative_prompt: BASIC.negative_prompt, seed: 0, steps: 4, guidance_scale: 5, scheduler: "Euler", size: "32x32", loras,
  });
  assert.equal(openai.status, 200);
  const png = Buffer.from(((await openai.json()) as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
  assert.ok(levelDiff(png, loraRef()) <= 1, "OpenAI + loras vs lora_basic");
  assert.match(decodePng(png).text.parameters, /^An astronaut riding a green horse <lora:astro-style:1>\n/, "field LoRAs are named in the PNG text");

  const segmind = await post(url, "/v1/ssd-1b", {
    prompt: BASIC.prompt, negative_prompt: BASIC.negative_prompt, seed: 0, num_inference_steps: 4, guidance_scale: 5, scheduler: "Euler", img_width: 32, img_height: 32, loras: [{ name: "astro-style" }],
  });
  assert.equal(segmind.status, 200);
  assert.ok(levelDiff(Buffer.from(await segmind.arrayBuffer()), loraRef()) <= 1, "Segmind + loras vs lora_basic");

  const job = await post(url, "/v1/jobs", { prompt: `${BASIC.prompt} <lora:astro-style>`, negative_prompt: BASIC.negative_prompt, seed: 0, steps: 4, guidance_scale: 5, scheduler: "Euler", width: 32, height: 32 });
  assert.equal(job.status, 202);
  const { id } = await job.json() as { id: string };
  const output = await queue.get(id)!.done;
  assert.ok(levelDiff(output.images[0], loraRef()) <= 1, "job + tag vs lora_basic");
  assert.deepEqual(queue.get(id)!.spec.loras, [{ name: "astro-style", weight: 1 }]);
  assert.equal(queue.pipelines.created, created, "the same LoRA set reuses its compiled pipeline");
});

test("server lora: /sdapi/v1/loras lists the folder (sub-folders, metadata; no link out of it); refresh-loras finds new files", { skip: NO_FIXTURES }, async () => {
  const list = await (await fetch(`${url}/sdapi/v1/loras`)).json() as { name: string; alias: string; path: string; metadata: object }[];
  assert.deepEqual(list.map((l) => l.name), ["astro-style", "kohya-style"]);
  assert.equal(list[0].alias, "astro-style");
  assert.match(list[1].path, /sub[/\\]kohya-style\.safetensors$/);
  assert.equal(typeof list[0].metadata, "object");
  copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(loraDir, "later.safetensors"));
  const before = await (await fetch(`${url}/sdapi/v1/loras`)).json() as unknown[];
  assert.equal(before.length, 2, "listed after a refresh only");
  assert.equal((await post(url, "/sdapi/v1/refresh-loras", {})).status, 200);
  const after = await (await fetch(`${url}/sdapi/v1/loras`)).json() as { name: string }[];
  assert.deepEqual(after.map((l) => l.name), ["astro-style", "kohya-style", "later"]);
  assert.deepEqual(await (await fetch(`${bare.url}/sdapi/v1/loras`)).json(), [], "no --lora-dir: none");
});

test("server lora: unknown names, traversal, bad weights, too many LoRAs and a server without --lora-dir are 400s that say why", { skip: NO_FIXTURES }, async () => {
  const nine = Array.from({ length: 9 }, (_, i) => `<lora:n${i}:1>`).join(" ");
  const cases: [string, string, Record<string, unknown>, string, RegExp][] = [
    [url, "/sdapi/v1/txt2img", { prompt: "x <lora:nope:1>" }, "unknown_lora", /prompt: unknown LoRA "nope" \(available: astro-style, kohya-style/],
    [url, "/sdapi/v1/txt2img", { prompt: "x <lora:../outside:1>" }, "unknown_lora", /bad LoRA name "\.\.\/outside": a LoRA is named by its file name without folders or "\.\."/],
    [url, "/sdapi/v1/txt2img", { prompt: "x <lora:sub/kohya-style>" }, "unknown_lora", /bad LoRA name "sub\/kohya-style"/],
    [url, "/sdapi/v1/txt2img", { prompt: "x <lora:escape:1>" }, "unknown_lora", /unknown LoRA "escape"/],
    [url, "/sdapi/v1/txt2img", { prompt: "x", negative_prompt: "<lora:astro-style:lots>" }, "invalid_lora", /negative_prompt: <lora:astro-style:lots>: the LoRA weight must be a number like 0\.8, got "lots"/],
    [url, "/sdapi/v1/txt2img", { prompt: "x <lora:astro-style:0.5:11>" }, "invalid_lora", /the weight of <lora:astro-style:0\.5:11> is outside \[-10, 10\]/],
    [url, "/v1/images/generations", { prompt: "x", loras: [{ name: "astro-style", text_encoder_weight: "half" }] }, "invalid_type", /loras\[0\]\.text_encoder_weight must be a finite number/],
    [url, "/v1/images/generations", { prompt: "x", loras: [{ name: "..\\outside" }] }, "unknown_lora", /loras: bad LoRA name/],
    [url, "/v1/images/generations", { prompt: "x", loras: [{ name: "astro-style", weight: "strong" }] }, "invalid_type", /loras\[0\]\.weight must be a finite number, got "strong"/],
    [url, "/v1/images/generations", { prompt: "x", loras: [{ name: "astro-style", weight: null }, { weight: 1 }] }, "invalid_type", /loras\[1\]\.name must be the name of a LoRA/],
    [url, "/v1/images/generations", { prompt: "x", loras: { name: "astro-style" } }, "invalid_type", /loras must be an array/],
    [url, "/v1/ssd-1b", { prompt: "x", loras: ["astro-style"] }, "invalid_type", /loras\[0\] must be an object/],
    [url, "/v1/jobs", { prompt: "x", loras: [{ name: "ghost", weight: 1 }] }, "unknown_lora", /loras: unknown LoRA "ghost"/],
    [url, "/v1/jobs", { prompt: nine }, "unknown_lora", /unknown LoRA "n0"/],
    [bare.url, "/sdapi/v1/txt2img", { prompt: "x <lora:astro-style:1>" }, "no_lora_dir", /this server has no --lora-dir, so it cannot apply <lora:astro-style:1>/],
    [bare.url, "/v1/images/generations", { prompt: "x", loras: [{ name: "astro-style", weight: 0.8 }] }, "no_lora_dir", /no --lora-dir/],
  ];
  for (const [base, path, body, code, message] of cases) {
    const what = `${path} ${JSON.stringify(body)}`;
    const r = await post(base, path, body);
    const e = await r.json() as { error: { message: string; code: string } };
    assert.equal(r.status, 400, `${what}: ${e.error?.message}`);
    assert.equal(e.error.code, code, `${what}: ${e.error.message}`);
    assert.match(e.error.message, message, what);
  }
  // too many: nine real names
  for (let i = 0; i < 9; i++) copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(loraDir, `n${i}.safetensors`));
  const r = await post(url, "/sdapi/v1/txt2img", { prompt: nine });
  const e = await r.json() as { error: { message: string; code: string } };
  assert.equal(r.status, 400);
  assert.equal(e.error.code, "too_many_loras");
  assert.match(e.error.message, /too many LoRAs: 9 \(at most 8 per request\)/);
  assert.equal((await fetch(`${url}/health`)).status, 200);
});

test("cli serve/worker --lora-dir: a missing folder is a usage error; the help names the flag", { skip: NO_FIXTURES }, () => {
  for (const cmd of ["serve", "worker"]) {
    const r = spawnSync(process.execPath, [CLI, cmd, "--queue", "redis://127.0.0.1:1", "--lora-dir", join(tmp, "nowhere")], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--lora-dir .*nowhere: no such folder/);
    const help = spawnSync(process.execPath, [CLI, cmd, "--help"], { encoding: "utf8", timeout: 30000 });
    assert.match(help.stdout, /--lora-dir DIR +.*LoRA/, `${cmd} --help: ${help.stderr}`);
    assert.match(help.stdout, /--lora-cache N/);
  }
});

test("server lora: through Redis the job spec carries the LoRAs and the worker resolves them in its own --lora-dir", { skip: NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found"), timeout: 120_000 }, async () => {
  const { url: queueUrl, process: redis } = await startRedisServer();
  try {
    const rq = await RedisQueue.connect(queueUrl, { maxQueue: 4, files: new FileStore(), model: "tiny-ssd" });
    const workerDir = join(tmp, "worker-loras");
    mkdirSync(workerDir, { recursive: true });
    copyFileSync(fixture("lora", "kohya", "lora.safetensors"), join(workerDir, "astro-style.safetensors"));
    const worker = await startRedisWorker({ url: queueUrl, pipe, loras: new LoraLibrary(workerDir) });
    try {
      const spec: JobSpec = { prompt: `${BASIC.prompt} <lora:astro-style:1>`, negativePrompt: BASIC.negative_prompt, steps: 4, guidanceScale: 5, seed: 0, scheduler: "Euler", width: 32, height: 32, batchSize: 1, iterations: 1, loras: [{ name: "astro-style", weight: 1 }] };
      const out = await (await rq.submit(spec)).done;
      assert.ok(levelDiff(out.images[0], loraRef()) <= 1, "worker image vs lora_basic");
      assert.match(out.infotexts[0], /^An astronaut riding a green horse <lora:astro-style:1>\n/);
      const missing = await rq.submit({ ...spec, loras: [{ name: "other", weight: 1 }] });
      await assert.rejects(missing.done, (e: { status: number; message: string }) => e.status === 400 && /unknown LoRA "other" in .*worker-loras/.test(e.message));
    } finally {
      await worker.close();
      await rq.close();
    }
  } finally {
    const exited = new Promise((r) => redis.once("exit", r));
    redis.kill("SIGTERM");
    await exited;
  }
});

test("pipeline withLoras: a variant shares the VAE and, without text-encoder deltas, the prompt encoder; it stacks on load-time LoRAs; releasing it leaves the base working", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const variant = await pipe.withLoras([{ file: fixture("lora", "peft", "lora.safetensors"), weight: 1 }]);
  assert.equal(variant.vae, pipe.vae);
  assert.equal(variant.promptEncoder, pipe.promptEncoder);
  assert.notEqual(variant.unet, pipe.unet);
  assert.equal(variant.loras.length, pipe.loras.length + 1);
  await variant.release();
  const c = JSON.parse(readFileSync(fixture("lora", "peft", "cases.json"), "utf8")).lora_basic;
  const args = { prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler };
  assert.equal((await pipe.encodePrompt({ prompt: c.prompt })).promptEmbeds.shape[0], 1, "the base's shared text encoders still run");

  // a text-encoder LoRA gets its own text encoders, equal to loading it with the model
  const te = join(tmp, "te-lora.safetensors");
  const mat = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i * 0.37) * 0.2);
  saveTensors(te, {
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { dtype: "F32", shape: [32, 2], data: mat(64, 1) },
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { dtype: "F32", shape: [2, 32], data: mat(64, 2) },
  });
  const teVariant = await pipe.withLoras([{ file: te, weight: 1 }]);
  const teLoaded = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { loras: [{ file: te, weight: 1 }] });
  try {
    assert.notEqual(teVariant.promptEncoder, pipe.promptEncoder);
    const a = await teVariant.encodePrompt({ prompt: c.prompt }), b = await teLoaded.encodePrompt({ prompt: c.prompt });
    assert.deepEqual(a.promptEmbeds.data, b.promptEmbeds.data);
    assert.notDeepEqual(a.promptEmbeds.data, (await pipe.encodePrompt({ prompt: c.prompt })).promptEmbeds.data);
  } finally {
    await teVariant.release();
    await teLoaded.release();
  }

  // per-request LoRAs stack on the load-time (--lora) ones: 0.5 + 0.5 = lora_basic
  const half = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { loras: [{ file: fixture("lora", "peft", "lora.safetensors"), weight: 0.5 }] });
  const full = await half.withLoras([{ file: fixture("lora", "kohya", "lora.safetensors"), weight: 0.5 }]);
  try {
    assert.equal(full.loras.length, 2);
    const out = await full.generate(args);
    let m = 0;
    const ref = loraRef();
    for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(out.images.data[i] - ref[i]));
    assert.ok(m <= 2e-3, `load-time 0.5 + per-request 0.5 vs lora_basic: max|d| ${m}`);
  } finally {
    await full.release();
    await half.release();
  }
});

const CHROMIUM = "/usr/bin/chromium";

test("web page with --lora-dir: the LoRA picker lists the folder and adds a tag that the job applies", { skip: NO_FIXTURES || (existsSync(CHROMIUM) ? false : `${CHROMIUM} not found`), timeout: 120_000 }, async () => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"], timeout: 60000 });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(60000);
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url + "/");
    await page.waitForSelector('body[data-ready="1"]');
    assert.ok(await page.isVisible("#lora-picker"), "the picker shows when there are LoRAs");
    const names = await page.$$eval("#lora option", (os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.ok(names.includes("astro-style") && names.includes("kohya-style"), names.join(", "));
    await page.fill("#prompt", BASIC.prompt + "  ");
    await page.selectOption("#lora", "astro-style");
    assert.equal(await page.inputValue("#prompt"), `${BASIC.prompt} <lora:astro-style:1>`);
    assert.equal(await page.inputValue("#lora"), "", "the picker resets");
    await page.fill("#negative", BASIC.negative_prompt);
    await page.fill("#steps", "4");
    await page.fill("#guidance", "5");
    await page.fill("#seed", "0");
    await page.selectOption("#scheduler", "Euler");
    await page.click("#generate");
    await page.waitForSelector("#gallery .card");
    assert.match(await page.textContent("#gallery .card pre") ?? "", /^An astronaut riding a green horse <lora:astro-style:1>\nNegative prompt/);
    const src = await page.getAttribute("#gallery .card img", "src");
    const png = Buffer.from(await (await fetch(new URL(src!, url))).arrayBuffer());
    assert.ok(levelDiff(png, loraRef()) <= 1, "the page's image vs lora_basic");
    assert.deepEqual(errors, []);
    // without --lora-dir there is no picker
    await page.goto(bare.url + "/");
    await page.waitForSelector('body[data-ready="1"]');
    assert.equal(await page.isVisible("#lora-picker"), false);
  } finally {
    await browser.close();
  }
});

test("lora pipelines: the cache keeps the most recent N LoRA sets, releases the evicted ones, and with N = 0 releases after each job", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lora-cache-"));
  try {
    for (const n of ["a", "b", "c"]) writeFileSync(join(dir, `${n}.safetensors`), "x");
    const released: string[] = [];
    const made: string[] = [];
    const idled: string[] = [];
    const sessions = (name: string) => ({ unet: { release: async () => { idled.push(name); } }, promptEncoder: { release: async () => {} } });
    // a stand-in for the pipeline: withLoras makes a named variant that records its release
    const base = {
      ...sessions("base"),
      withLoras: async (files: { file: string; weight: number }[]) => {
        const name = files.map((f) => `${basename(f.file, ".safetensors")}:${f.weight}`).join("+");
        made.push(name);
        return { name, ...sessions(name), release: async () => { released.push(name); } };
      },
    } as unknown as StableDiffusionXLPipeline;
    const run = (p: LoraPipelines, loras: { name: string; weight: number }[]) => p.use(loras, async (pipe) => (pipe as unknown as { name?: string }).name ?? "base");
    const library = new LoraLibrary(dir);
    const two = new LoraPipelines(base, { library, cacheSize: 2 });
    assert.equal(await run(two, []), "base");
    assert.equal(await run(two, [{ name: "a", weight: 1 }]), "a:1");
    assert.equal(await run(two, [{ name: "b", weight: 1 }]), "b:1");
    assert.equal(await run(two, [{ name: "a", weight: 1 }]), "a:1");
    assert.deepEqual(made, ["a:1", "b:1"], "a reused");
    // before each job, the other pipelines' UNet sessions are let go
    assert.deepEqual(idled, ["base", "base", "a:1", "base", "b:1"]);
    assert.equal(await run(two, [{ name: "c", weight: 0.5 }]), "c:0.5");
    assert.deepEqual(released, ["b:1"], "the least recently used went");
    assert.equal(await run(two, [{ name: "a", weight: 0.5 }]), "a:0.5", "another weight is another set");
    assert.deepEqual(released, ["b:1", "a:1"]);
    await two.release();
    assert.deepEqual(released.sort(), ["a:0.5", "a:1", "b:1", "c:0.5"]);
    assert.equal(two.created, 4);

    released.length = 0;
    const none = new LoraPipelines(base, { library, cacheSize: 0 });
    await run(none, [{ name: "a", weight: 1 }]);
    await run(none, [{ name: "a", weight: 1 }]);
    assert.deepEqual(released, ["a:1", "a:1"]);
    await assert.rejects(run(new LoraPipelines(base, { runner: "worker" }), [{ name: "a", weight: 1 }]),
      (e: { status: number; message: string }) => e.status === 400 && /this worker has no --lora-dir/.test(e.message));
    await assert.rejects(run(two, [{ name: "../a", weight: 1 }]), (e: { status: number; message: string }) => e.status === 400 && /bad LoRA name/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
