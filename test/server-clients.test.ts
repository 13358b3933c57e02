/**
 * Real clients, unchanged: the request sequences of Open WebUI, SillyTavern and the openai SDK
 * (recorded in test/client-replays/*.json from their sources) replayed against `ssd1b serve` with the
 * tiny model, each answer holding what the client reads. Then the A1111 behaviours they rely on, with
 * real values: per-image seeds equal to single runs, interrupt and skip answering with the images so
 * far, override_settings and refused fields, the list routes, options round trip, png-info, OpenAPI.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { NO_FIXTURES, HAVE_FIXTURES, PROJECT_ROOT, levelDiff } from "./helpers/fixtures.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng, encodePng } from "../src/image/png.js";
import type { RunningServer } from "../src/server/app.js";
import { startLocalServer } from "./helpers/local-server.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StopControl, runJob } from "../src/server/run-job.js";
import { parseInfotext } from "../src/server/png-info.js";

const REPLAYS = join(PROJECT_ROOT, "test", "client-replays");

const tmp = mkdtempSync(join(tmpdir(), "server-clients-"));
let pipe: StableDiffusionXLPipeline;
let server: RunningServer;
let url = "";

before(async () => {
  if (!HAVE_FIXTURES) return;
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  server = await startLocalServer(pipe, { queueSize: 8 });
  url = server.url;
});

after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const post = (path: string, body: unknown) => fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function getJson(path: string): Promise<any> {
  const r = await fetch(url + path);
  assert.equal(r.status, 200, `GET ${path}`);
  return r.json();
}

/** Largest difference in 8-bit levels between two PNGs of one size. */
function pngDiff(a: Buffer, b: Buffer): number {
  const x = decodePng(a), y = decodePng(b);
  assert.deepEqual([x.width, x.height], [y.width, y.height]);
  let m = 0;
  for (let i = 0; i < x.data.length; i++) m = Math.max(m, Math.abs(x.data[i] - y.data[i]));
  return m;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await check();
    if (v !== undefined) return v;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const idle = () => waitFor("an idle queue", async () => ((await getJson("/sdapi/v1/progress")).state.job_count === 0 ? true : undefined));

// ---- replays ------------------------------------------------------------------------------

interface Step {
  name: string;
  method: string;
  path: string;
  body?: Record<string, unknown>;
  body_from?: string;
  set?: Record<string, unknown>;
  expect_status?: number;
  expect_message?: string;
  reads?: Record<string, string>;
}

interface Replay { client: string; source: Record<string, unknown>; test_overrides?: Record<string, unknown>; steps: Step[] }

/** The values at a dotted path ("*" fans out over an array's elements; "" is the value itself). */
function valuesAt(value: unknown, path: string): unknown[] {
  let values = [value];
  for (const part of path === "" ? [] : path.split(".")) {
    values = values.flatMap((v) => {
      if (part === "*") {
        assert.ok(Array.isArray(v), `${path}: not an array`);
        return v;
      }
      return [(v as Record<string, unknown> | undefined)?.[part]];
    });
  }
  return values;
}

function resolve(value: unknown, answers: Map<string, unknown>): unknown {
  if (typeof value === "string" && value.startsWith("$")) {
    const [name, ...rest] = value.slice(1).split(".");
    assert.ok(answers.has(name), `no answer named ${name}`);
    return valuesAt(answers.get(name), rest.join("."))[0];
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, answers));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, answers)]));
  return value;
}

async function checkKind(v: unknown, kind: string, what: string): Promise<void> {
  switch (kind) {
    case "array": assert.ok(Array.isArray(v), what); break;
    case "object": assert.ok(v !== null && typeof v === "object" && !Array.isArray(v), what); break;
    case "png": {
      assert.equal(typeof v, "string", what);
      const img = decodePng(Buffer.from(v as string, "base64"));
      assert.ok(img.width > 0 && img.height > 0, what);
      break;
    }
    case "json": assert.equal(typeof JSON.parse(v as string), "object", what); break;
    case "url": {
      assert.match(String(v), /^http:\/\//, what);
      const r = await fetch(String(v));
      assert.equal(r.status, 200, what);
      decodePng(Buffer.from(await r.arrayBuffer()));
      break;
    }
    default: assert.equal(typeof v, kind, what);
  }
}

const replayFiles = readdirSync(REPLAYS).filter((f) => f.endsWith(".json")).sort();

for (const file of replayFiles) {
  const replay = JSON.parse(readFileSync(join(REPLAYS, file), "utf8")) as Replay;
  test(`client replay: ${replay.client} (${file})`, { skip: NO_FIXTURES }, async () => {
    assert.ok(replay.source && typeof replay.source.repository === "string", "the file names where it was read");
    const answers = new Map<string, unknown>();
    for (const step of replay.steps) {
      const what = `${file}: ${step.name}`;
      let body: unknown;
      if (step.body_from) {
        assert.ok(answers.has(step.body_from), `${what}: no answer named ${step.body_from}`);
        body = { ...(answers.get(step.body_from) as object), ...(resolve(step.set ?? {}, answers) as object) };
      } else if (step.body) {
        body = resolve(step.body, answers);
        // the tiny model: small sizes and few steps, only where the client sends these fields
        for (const [k, v] of Object.entries(replay.test_overrides ?? {})) if (k in (body as object)) (body as Record<string, unknown>)[k] = v;
      }
      const init: RequestInit = { method: step.method };
      if (body !== undefined) init.headers = { "Content-Type": "application/json" }, init.body = JSON.stringify(body);
      const r = await fetch(url + step.path, init);
      const text = await r.text();
      assert.equal(r.status, step.expect_status ?? 200, `${what}: ${text.slice(0, 300)}`);
      const answer: unknown = text ? JSON.parse(text) : null;
      if (step.expect_message) assert.match((answer as { error: { message: string } }).error.message, new RegExp(step.expect_message), what);
      for (const [path, kind] of Object.entries(step.reads ?? {})) {
        const values = valuesAt(answer, path);
        if (!path.includes("*")) assert.ok(values[0] !== undefined, `${what}: reads ${path}`);
        for (const v of values) await checkKind(v, kind, `${what}: ${path} is ${kind}`);
      }
      answers.set(step.name, answer);
    }
  });
}

test("client replay: the openai SDK's images.generate, b64_json and url", { skip: NO_FIXTURES }, async () => {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused" });
  const b64 = await client.images.generate({ model: "ssd-1b", prompt: "a lighthouse", n: 2, size: "32x32" as "1024x1024", response_format: "b64_json" });
  assert.equal(b64.data!.length, 2);
  for (const d of b64.data!) assert.equal(decodePng(Buffer.from(d.b64_json!, "base64")).width, 32);
  const byUrl = await client.images.generate({ model: "ssd-1b", prompt: "a lighthouse", n: 1, size: "32x32" as "1024x1024", response_format: "url" });
  const r = await fetch(byUrl.data![0].url!);
  assert.equal(r.status, 200);
  assert.equal(decodePng(Buffer.from(await r.arrayBuffer())).height, 32);
});

// ---- per-image seeds ------------------------------------------------------------------------

test("A1111 seeds: batch_size 2 x n_iter 2 from seed 7 makes seeds 7..10, each image equal to a single run with its seed", { skip: NO_FIXTURES }, async () => {
  const body = { prompt: "a lighthouse", negative_prompt: "fog", steps: 3, width: 32, height: 24, sampler_name: "Euler a", batch_size: 2, n_iter: 2, seed: 7 };
  const r = await post("/sdapi/v1/txt2img", body);
  assert.equal(r.status, 200);
  const out = await r.json() as { images: string[]; info: string };
  const info = JSON.parse(out.info);
  assert.deepEqual(info.all_seeds, [7, 8, 9, 10]);
  assert.equal(info.seed, 7);
  assert.equal(info.all_subseeds.length, 4);
  assert.deepEqual(info.all_subseeds, info.all_subseeds.map((_: number, j: number) => info.subseed + j));
  assert.equal(info.infotexts.length, 4);
  for (let j = 0; j < 4; j++) {
    assert.match(info.infotexts[j], new RegExp(`Seed: ${7 + j},`));
    const png = Buffer.from(out.images[j], "base64");
    assert.equal(decodePng(png).text.parameters, info.infotexts[j], "each PNG carries its own infotext");
    // a request for this one image with its seed, and the library with that seed
    const solo = await (await post("/sdapi/v1/txt2img", { ...body, batch_size: 1, n_iter: 1, seed: 7 + j })).json() as { images: string[] };
    assert.ok(pngDiff(png, Buffer.from(solo.images[0], "base64")) <= 1, `image ${j} vs its single request`);
    const lib = await pipe.generate({ prompt: body.prompt, negativePrompt: body.negative_prompt, numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 24, scheduler: "Euler a", seed: 7 + j });
    assert.ok(levelDiff(png, lib.images.data) <= 1, `image ${j} vs the library's seed ${7 + j}`);
  }
});

test("A1111 img2img seeds: each image of a batch equals the single run with its seed", { skip: NO_FIXTURES }, async () => {
  const rgb = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).map((_, i) => (i * 29) % 256) };
  const init = encodePng(rgb).toString("base64");
  const body = { init_images: [init], prompt: "a boat", steps: 4, denoising_strength: 0.5, batch_size: 2, seed: 40, sampler_name: "Euler" };
  const out = await (await post("/sdapi/v1/img2img", body)).json() as { images: string[]; info: string };
  assert.deepEqual(JSON.parse(out.info).all_seeds, [40, 41]);
  for (let j = 0; j < 2; j++) {
    const lib = await pipe.img2img({ prompt: "a boat", numInferenceSteps: 4, strength: 0.5, image: rgb, seed: 40 + j, scheduler: "Euler" });
    assert.ok(levelDiff(Buffer.from(out.images[j], "base64"), lib.images.data) <= 1, `img2img image ${j}`);
  }
});

// ---- interrupt and skip --------------------------------------------------------------------

test("A1111 interrupt: the image at the interrupted step is the decoded latents of that step; skip keeps the batch as it stands and goes on", async (t) => {
  if (NO_FIXTURES) return t.skip();
  const spec = { prompt: "a castle", steps: 6, guidanceScale: 5, seed: 11, width: 32, height: 32, batchSize: 2, iterations: 2, perImageSeeds: true, scheduler: "Euler" };
  // interrupt after step 3 of iteration 0: two images (its batch), none from iteration 1
  const control = new StopControl();
  const out = await runJob(pipe, spec, { control, onStep: (r) => { if (r.step === 3) control.apply("interrupt"); } });
  assert.deepEqual(out.seeds, [11, 12]);
  const stop = new AbortController();
  const ref = await pipe.generate({ prompt: "a castle", numInferenceSteps: 6, seeds: [11, 12], numImagesPerPrompt: 2, width: 32, height: 32, scheduler: "Euler", stopEarly: stop.signal, onStep: ({ step }) => { if (step === 2) stop.abort(); } });
  assert.equal(ref.timesteps.length, 3);
  for (let i = 0; i < 2; i++) assert.ok(levelDiff(out.images[i], ref.images.data, i) <= 1, `interrupted image ${i}`);

  // skip after step 2 of iteration 0: that batch decoded as it stood, then iteration 1 in full
  const skipper = new StopControl();
  const skipped = await runJob(pipe, spec, { control: skipper, onStep: (r) => { if (r.step === 2) skipper.apply("skip"); } });
  assert.deepEqual(skipped.seeds, [11, 12, 13, 14]);
  const stop2 = new AbortController();
  const cut = await pipe.generate({ prompt: "a castle", numInferenceSteps: 6, seeds: [11, 12], numImagesPerPrompt: 2, width: 32, height: 32, scheduler: "Euler", stopEarly: stop2.signal, onStep: ({ step }) => { if (step === 1) stop2.abort(); } });
  for (let i = 0; i < 2; i++) assert.ok(levelDiff(skipped.images[i], cut.images.data, i) <= 1, `skipped image ${i}`);
  const full = await pipe.generate({ prompt: "a castle", numInferenceSteps: 6, seeds: [13, 14], numImagesPerPrompt: 2, width: 32, height: 32, scheduler: "Euler" });
  for (let i = 0; i < 2; i++) assert.ok(levelDiff(skipped.images[2 + i], full.images.data, i) <= 1, `image ${2 + i}: the iteration after the skip runs in full`);
});

test("A1111 interrupt and skip over HTTP: 200 with the images so far and their info", { skip: NO_FIXTURES }, async () => {
  await idle();
  const pending = post("/sdapi/v1/txt2img", { prompt: "a long job", steps: 1000, width: 32, height: 32, seed: 3, n_iter: 3 });
  await waitFor("a running job", async () => ((await getJson("/sdapi/v1/progress")).state.sampling_step >= 2 ? true : undefined));
  assert.equal((await post("/sdapi/v1/skip", {})).status, 200);
  // the skip ends iteration 0; iteration 1 starts at step 1001 of 3000
  await waitFor("the next iteration", async () => ((await getJson("/sdapi/v1/progress")).state.sampling_step > 1001 ? true : undefined));
  const p = await getJson("/sdapi/v1/progress");
  assert.equal(p.state.sampling_steps, 3000);
  const i = await fetch(url + "/sdapi/v1/interrupt", { method: "POST" });
  assert.equal(i.status, 200);
  const r = await pending;
  assert.equal(r.status, 200);
  const out = await r.json() as { images: string[]; info: string };
  const info = JSON.parse(out.info);
  assert.deepEqual(info.all_seeds, [3, 4], "iteration 0 (skipped) and 1 (interrupted); iteration 2 never ran");
  assert.equal(out.images.length, 2);
  for (const b64 of out.images) {
    const img = decodePng(Buffer.from(b64, "base64"));
    assert.deepEqual([img.width, img.height], [32, 32]);
  }
  assert.match(info.infotexts[1], /Seed: 4,/);
  await idle();
  // with nothing running, both answer 200 and change nothing
  assert.equal((await post("/sdapi/v1/interrupt", {})).status, 200);
  assert.equal((await post("/sdapi/v1/skip", {})).status, 200);
  assert.equal((await post("/sdapi/v1/txt2img", { prompt: "after", steps: 1, width: 16, height: 16 })).status, 200);
});

// ---- settings and refused fields --------------------------------------------------------------

test("A1111 override_settings and fields: honoured when this server can, else a 400 that names them", { skip: NO_FIXTURES }, async () => {
  const base = { prompt: "x", steps: 1, width: 16, height: 16 };
  const ok: Record<string, unknown>[] = [
    { override_settings: { sd_model_checkpoint: "tiny-ssd" } },
    { override_settings: { sd_model_checkpoint: "tiny-ssd [abc123]" } },
    { override_settings: { sd_vae: "Automatic", CLIP_stop_at_last_layers: 1, samples_format: "png" } },
    { override_settings: { sd_vae: "None", samples_save: true, live_previews_enable: false } },
    { override_settings: {}, override_settings_restore_afterwards: true },
    { restore_faces: false, tiling: false, enable_hr: false, subseed_strength: 0, styles: [], clip_skip: 1, script_name: "", alwayson_scripts: {} },
  ];
  for (const extra of ok) assert.equal((await post("/sdapi/v1/txt2img", { ...base, ...extra })).status, 200, JSON.stringify(extra));
  const bad: [Record<string, unknown>, string, RegExp][] = [
    [{ override_settings: { sd_model_checkpoint: "sd_xl_base_1.0.safetensors" } }, "override_settings.sd_model_checkpoint", /serves "tiny-ssd"/],
    [{ override_settings: { sd_vae: "sdxl_vae.safetensors" } }, "override_settings.sd_vae", /"Automatic" or "None"/],
    [{ override_settings: { CLIP_stop_at_last_layers: 13 } }, "override_settings.CLIP_stop_at_last_layers", /must be a whole number in \[1, 12\]/],
    [{ override_settings: { samples_format: "jpg" } }, "override_settings.samples_format", /must be "png"/],
    [{ override_settings: { sd_unet: "Automatic" } }, "override_settings.sd_unet", /"sd_unet" is not supported/],
    [{ override_settings: "nope" }, "override_settings", /must be an object/],
    [{ enable_hr: true, steps: 4, hr_upscaler: "4x-Nope" }, "hr_upscaler", /unknown hr_upscaler "4x-Nope" \(valid: Latent, .*Lanczos, Nearest/],
    [{ enable_hr: true, steps: 4, hr_upscaler: "Latent (antialiased)" }, "hr_upscaler", /not implemented/],
    [{ restore_faces: true }, "restore_faces", /face restoration/],
    [{ subseed_strength: 2 }, "subseed_strength", /subseed_strength/],
    [{ styles: ["Cinematic"] }, "styles", /cannot apply the styles "Cinematic" .*--styles-file/],
    [{ clip_skip: 13 }, "clip_skip", /clip_skip must be in \[0, 12\]/],
    [{ script_name: "x/y/z plot" }, "script_name", /scripts are not supported/],
  ];
  for (const [extra, param, re] of bad) {
    const r = await post("/sdapi/v1/txt2img", { ...base, ...extra });
    assert.equal(r.status, 400, JSON.stringify(extra));
    const e = (await r.json() as { error: { message: string; param: string } }).error;
    assert.equal(e.param, param, JSON.stringify(extra));
    assert.match(e.message, re, e.message);
  }
});

test("A1111 options: GET returns what POST set (known keys); unknown keys and other models are a 400", { skip: NO_FIXTURES }, async () => {
  const before = await getJson("/sdapi/v1/options");
  assert.equal(before.sd_model_checkpoint, "tiny-ssd");
  assert.equal((await post("/sdapi/v1/options", { ...before, sd_vae: "None", live_previews_enable: false, samples_save: false })).status, 200);
  const afterSet = await getJson("/sdapi/v1/options");
  assert.deepEqual(afterSet, { ...before, sd_vae: "None", live_previews_enable: false, samples_save: false });
  for (const [body, re] of [
    [{ sd_model_checkpoint: "other.safetensors" }, /serves "tiny-ssd"/],
    [{ CLIP_stop_at_last_layers: 0 }, /CLIP_stop_at_last_layers must be a whole number in \[1, 12\]/],
    [{ some_unknown_option: 1 }, /"some_unknown_option" is not supported/],
    [[1, 2], /JSON object/],
  ] as [unknown, RegExp][]) {
    const r = await post("/sdapi/v1/options", body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.match((await r.json() as { error: { message: string } }).error.message, re);
  }
  assert.deepEqual(await getJson("/sdapi/v1/options"), afterSet, "a refused POST changes nothing");
  assert.equal((await post("/sdapi/v1/options", { sd_vae: "Automatic", live_previews_enable: true, samples_save: true })).status, 200);
});

// ---- lists, png-info, ping, OpenAPI ----------------------------------------------------------

test("A1111 lists: upscalers, latent modes, VAEs, modules, embeddings, cmd-flags, ping", { skip: NO_FIXTURES }, async () => {
  const upscalers = await getJson("/sdapi/v1/upscalers") as { name: string; scale: number }[];
  assert.deepEqual(upscalers.map((u) => u.name).slice(0, 3), ["None", "Lanczos", "Nearest"]);
  // without --upscaler-dir: the model-free ones only, in A1111's entry shape
  assert.deepEqual(upscalers, ["None", "Lanczos", "Nearest"].map((name) => ({ name, model_name: null, model_path: null, model_url: null, scale: 4 })));
  const latent = await getJson("/sdapi/v1/latent-upscale-modes") as { name: string }[];
  assert.ok(latent.some((m) => m.name === "Latent (nearest-exact)"));
  assert.deepEqual(await getJson("/sdapi/v1/sd-vae"), []);
  assert.deepEqual(await getJson("/sdapi/v1/sd-modules"), []);
  assert.deepEqual(await getJson("/sdapi/v1/embeddings"), { loaded: {}, skipped: {} });
  const flags = await getJson("/sdapi/v1/cmd-flags");
  assert.equal(flags.api, true);
  assert.equal(flags.listen, false);
  assert.deepEqual(await getJson("/internal/ping"), {});
  // what clients probe at start answers in A1111's shapes
  assert.deepEqual(await getJson("/sdapi/v1/face-restorers"), []);
  assert.deepEqual(await getJson("/sdapi/v1/hypernetworks"), []);
  assert.deepEqual(await getJson("/sdapi/v1/realesrgan-models"), []);
  assert.deepEqual(await getJson("/sdapi/v1/scripts"), { txt2img: ["controlnet"], img2img: ["controlnet"] });
  const memory = await getJson("/sdapi/v1/memory");
  assert.ok(memory.ram.total > 0 && memory.ram.free + memory.ram.used === memory.ram.total && typeof memory.cuda.error === "string");
  for (const path of ["/sdapi/v1/refresh-vae", "/sdapi/v1/refresh-checkpoints", "/sdapi/v1/refresh-embeddings"]) {
    const r = await fetch(server.url + path, { method: "POST" });
    assert.equal(r.status, 200, path);
    assert.equal(await r.text(), "null");
  }
});

test("A1111 png-info reads our PNGs and A1111's parameters text", { skip: NO_FIXTURES }, async () => {
  const made = await (await post("/sdapi/v1/txt2img", { prompt: "a red (apple:1.2)", negative_prompt: "dull", steps: 2, width: 16, height: 16, seed: 99, sampler_name: "DPM++ 2M", scheduler: "Karras" })).json() as { images: string[]; info: string };
  const r = await post("/sdapi/v1/png-info", { image: `data:image/png;base64,${made.images[0]}` });
  assert.equal(r.status, 200);
  const got = await r.json() as { info: string; items: Record<string, string>; parameters: Record<string, string> };
  assert.equal(got.info, JSON.parse(made.info).infotexts[0]);
  assert.equal(got.parameters.Prompt, "a red (apple:1.2)");
  assert.equal(got.parameters["Negative prompt"], "dull");
  assert.equal(got.parameters.Seed, "99");
  assert.equal(got.parameters.Steps, "2");
  assert.equal(got.parameters["Size-1"], "16");
  // an A1111 PNG: multi-line prompt, quoted values with commas, extra text chunks
  const a1111 = "masterpiece, a cat\non a mat\nNegative prompt: lowres\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x768, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Lora hashes: \"a: 1f, b: 2e\", Version: v1.10.1";
  const png = encodePng({ width: 8, height: 8, data: new Uint8Array(192) }, { parameters: a1111, extras: "x" });
  const g = await (await post("/sdapi/v1/png-info", { image: png.toString("base64") })).json() as { info: string; items: Record<string, string>; parameters: Record<string, string> };
  assert.equal(g.info, a1111);
  assert.deepEqual(g.items, { extras: "x" });
  assert.equal(g.parameters.Prompt, "masterpiece, a cat\non a mat");
  assert.equal(g.parameters["Lora hashes"], "a: 1f, b: 2e");
  assert.equal(g.parameters["Schedule type"], "Karras");
  assert.equal(g.parameters["Size-2"], "768");
  assert.deepEqual(parseInfotext("just a prompt"), { Prompt: "just a prompt", "Negative prompt": "" });
  // no text: empty; not an image: 400
  const plain = await (await post("/sdapi/v1/png-info", { image: encodePng({ width: 8, height: 8, data: new Uint8Array(192) }).toString("base64") })).json() as { info: string };
  assert.equal(plain.info, "");
  const bad = await post("/sdapi/v1/png-info", { image: "%%%" });
  assert.equal(bad.status, 400);
  assert.equal((await post("/sdapi/v1/png-info", {})).status, 400);
});

test("OpenAPI document and /docs page list every route, with nothing fetched from elsewhere", { skip: NO_FIXTURES }, async () => {
  const doc = await getJson("/openapi.json") as { openapi: string; paths: Record<string, Record<string, unknown>> };
  assert.match(doc.openapi, /^3\./);
  for (const path of ["/sdapi/v1/txt2img", "/sdapi/v1/skip", "/sdapi/v1/png-info", "/sdapi/v1/upscalers", "/v1/images/generations", "/v1/ssd-1b", "/v1/jobs/{id}", "/internal/ping"]) {
    assert.ok(doc.paths[path], path);
  }
  // every path in the document answers (a 404 would mean the document lies)
  for (const [path, ops] of Object.entries(doc.paths)) {
    if (!("get" in ops) || path.includes("{")) continue;
    const r = await fetch(url + path);
    assert.notEqual(r.status, 404, path);
    await r.arrayBuffer();
  }
  const page = await fetch(url + "/docs");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /text\/html/);
  const html = await page.text();
  assert.ok(html.includes("/sdapi/v1/txt2img") && html.includes("/v1/images/generations"));
  assert.ok(!/<script|https?:\/\/(?!127)/.test(html), "no script, no external address");
});
