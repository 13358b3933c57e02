/**
 * Several served models (serve with more than one --model, or --models-dir): one loaded at a time,
 * as A1111 swaps checkpoints. A1111's sd_model_checkpoint (per request or through POST options), the
 * native and OpenAI `model` pick one; each image equals the library's on that model; an unknown name
 * is a 400 listing the served ones; a model that fails to load fails its job and the old one comes back.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { startServeCli } from "./helpers/serve-cli.js";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, levelDiff } from "./helpers/fixtures.js";
import { decodePng } from "../src/image/png.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { postJson, txt2imgFirst } from "./helpers/a1111-client.js";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import type { LocalQueue } from "../src/server/local-queue.js";
import { buildCatalog, findServedModel, modelsInFolder, servedModelName } from "../src/server/model-catalog.js";

let catalog: ReturnType<typeof buildCatalog> = [];
const loads: string[] = [];
const served = serveTinyModel("server-models-", {
  skip: NO_FIXTURES, queueSize: 8, browser: !BROWSER_SKIP,
  setup: (tmp) => {
    catalog = buildCatalog([tinyModelIn(tmp, "tiny-ssd"), tinyModelIn(tmp, "tiny-sdxl"), join(tmp, "broken")]);
    mkdirSync(join(tmp, "broken"), { recursive: true });
    return { queue: { switching: { models: catalog, load: async (m) => { loads.push(m.name); return { pipe: await StableDiffusionXLPipeline.fromPretrained(m.source) }; } } } };
  },
});
const queue = () => served.server.state.queue as LocalQueue;
let sdxl: StableDiffusionXLPipeline | undefined;
after(async () => { await sdxl?.release(); await queue()?.pipe.release(); });

const post = (path: string, body: unknown) => postJson(served.server.url, path, body);
const txt2img = (body: Record<string, unknown>) => txt2imgFirst(served.server.url, body);
const base = { prompt: "a lighthouse", steps: 2, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5, seed: 4 };
const library = (pipe: StableDiffusionXLPipeline) => pipe.generate({ prompt: base.prompt, numInferenceSteps: 2, guidanceScale: 5, width: 32, height: 32, seeds: [4], scheduler: "Euler" });

test("model catalog: names as the pipeline names models, duplicates refused, --models-dir finds files and folders", () => {
  assert.equal(servedModelName("/models/sd_xl_base_1.0.safetensors"), "sd_xl_base_1.0");
  assert.equal(servedModelName("segmind/SSD-1B@main"), "SSD-1B");
  assert.throws(() => buildCatalog(["/a/SSD-1B.safetensors", "segmind/SSD-1B"]), /two models are called "SSD-1B"/);
  const models = [{ name: "SSD-1B", source: "segmind/SSD-1B" }, { name: "x", source: "/m/x.safetensors" }];
  assert.equal(findServedModel("SSD-1B [0123abcd]", models)?.name, "SSD-1B");
  assert.equal(findServedModel("x.safetensors", models)?.name, "x");
  assert.equal(findServedModel("segmind/SSD-1B", models)?.name, "SSD-1B");
  assert.equal(findServedModel("y", models), undefined);
  const dir = join(served.tmp, "models-dir");
  mkdirSync(join(dir, "sub", "folder-model"), { recursive: true });
  writeFileSync(join(dir, "b.safetensors"), "x");
  writeFileSync(join(dir, "notes.txt"), "x");
  writeFileSync(join(dir, "sub", "a.safetensors"), "x");
  writeFileSync(join(dir, "sub", "folder-model", "model_index.json"), "{}");
  assert.deepEqual(modelsInFolder(dir).map((p) => p.slice(dir.length + 1)), ["b.safetensors", "sub/a.safetensors", "sub/folder-model"]);
  assert.throws(() => modelsInFolder(join(dir, "missing")), /--models-dir .*missing: no such folder/);
});

test("served models: listed by A1111 and OpenAI; sd_model_checkpoint, POST options and the native / OpenAI model pick one; each image is the library's", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const listed = await (await fetch(served.server.url + "/sdapi/v1/sd-models")).json() as { title: string }[];
  assert.deepEqual(listed.map((m) => m.title), ["tiny-ssd", "tiny-sdxl", "broken"]);
  const openai = await (await fetch(served.server.url + "/v1/models")).json() as { data: { id: string }[] };
  assert.deepEqual(openai.data.map((m) => m.id), ["tiny-ssd", "tiny-sdxl", "broken"]);

  const ssdImage = await library(served.pipe);
  sdxl = await StableDiffusionXLPipeline.fromPretrained(catalog[1].source);
  const sdxlImage = await library(sdxl);
  assert.ok(levelDiff(Buffer.from((await txt2img(base)).image), ssdImage.images.data) <= 1, "default: the first model");
  assert.deepEqual(loads, []);

  const other = await txt2img({ ...base, override_settings: { sd_model_checkpoint: "tiny-sdxl [abc]" } });
  assert.ok(levelDiff(other.image, sdxlImage.images.data) <= 1, "override_settings: tiny-sdxl");
  assert.ok(levelDiff(other.image, ssdImage.images.data) > 1, "another model, another image");
  assert.match(other.info.infotexts[0], /Model: tiny-sdxl/);
  assert.equal(other.info.sd_model_name, "tiny-sdxl");
  assert.deepEqual(loads, ["tiny-sdxl"]);
  assert.equal(queue().pipe.model.name, "tiny-sdxl", "one model in memory: the loaded one");
  // override_settings do not stay (A1111's override_settings_restore_afterwards): the default runs next
  assert.ok(levelDiff((await txt2img(base)).image, ssdImage.images.data) <= 1);
  assert.deepEqual(loads, ["tiny-sdxl", "tiny-ssd"]);

  // override_settings_restore_afterwards false: the request's model stays the default (then back by POST options)
  const kept = await txt2img({ ...base, override_settings: { sd_model_checkpoint: "tiny-sdxl" }, override_settings_restore_afterwards: false });
  assert.match(kept.info.infotexts[0], /Model: tiny-sdxl/);
  assert.equal((await (await fetch(served.server.url + "/sdapi/v1/options")).json() as Record<string, unknown>).sd_model_checkpoint, "tiny-sdxl");
  assert.match((await txt2img(base)).info.infotexts[0], /Model: tiny-sdxl/);
  assert.equal((await post("/sdapi/v1/options", { sd_model_checkpoint: "tiny-ssd" })).status, 200);

  // POST options changes the default for every API's jobs
  assert.equal((await post("/sdapi/v1/options", { sd_model_checkpoint: "tiny-sdxl" })).status, 200);
  assert.equal((await (await fetch(served.server.url + "/sdapi/v1/options")).json() as Record<string, unknown>).sd_model_checkpoint, "tiny-sdxl");
  assert.ok(levelDiff((await txt2img(base)).image, sdxlImage.images.data) <= 1);
  const oa = await post("/v1/images/generations", { prompt: base.prompt, size: "32x32", steps: 2, seed: 4, model: "gpt-image-1", scheduler: "Euler" });
  assert.equal(oa.status, 200);
  const oaPng = Buffer.from((await oa.json() as { data: { b64_json: string }[] }).data[0].b64_json, "base64");
  assert.match(decodePng(oaPng).text.parameters, /Model: tiny-sdxl/, "an OpenAI model name that is not served: the default");
  const oaSsd = await post("/v1/images/generations", { prompt: base.prompt, size: "32x32", steps: 2, seed: 4, model: "tiny-ssd", scheduler: "Euler" });
  assert.match(decodePng(Buffer.from((await oaSsd.json() as { data: { b64_json: string }[] }).data[0].b64_json, "base64")).text.parameters, /Model: tiny-ssd/);
  assert.equal((await post("/sdapi/v1/options", { sd_model_checkpoint: "tiny-ssd" })).status, 200);

  // the native model field; an unknown name is a 400 that lists the served ones
  const nat = await post("/v1/jobs", { prompt: "x", steps: 1, width: 16, height: 16, model: "nope" });
  assert.equal(nat.status, 400);
  assert.match((await nat.json() as { error: { message: string } }).error.message, /model "nope" is not served here; this server serves "tiny-ssd", "tiny-sdxl", "broken"/);
  const bad = await post("/sdapi/v1/txt2img", { ...base, override_settings: { sd_model_checkpoint: "sd_xl_base_1.0" } });
  assert.equal(bad.status, 400);
  assert.match((await bad.json() as { error: { message: string } }).error.message, /serves "tiny-ssd", "tiny-sdxl", "broken"/);

  // a model that cannot load: its job fails with why, the model before it is loaded again
  const broken = await post("/sdapi/v1/txt2img", { ...base, override_settings: { sd_model_checkpoint: "broken" } });
  assert.notEqual(broken.status, 200);
  assert.match(await broken.text(), /broken/);
  assert.equal(queue().pipe.model.name, "tiny-ssd");
  assert.ok(levelDiff((await txt2img(base)).image, ssdImage.images.data) <= 1, "and serves again");
});

test("cli serve: --model repeated and --models-dir make the catalog; bad combinations exit 2", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
  const dir = join(served.tmp, "cli-models");
  mkdirSync(dir, { recursive: true });
  const env = { ...process.env, HF_HUB_OFFLINE: "1", HF_HOME: join(served.tmp, "hf") };
  // a diffusers folder inside --models-dir (a link to the tiny SDXL), after the --model ones
  symlinkSync(catalog[1].source, join(dir, "linked-sdxl"));
  const cli = await startServeCli(["serve", "--model", catalog[0].source, "--models-dir", dir, "--port", "0"], env);
  try {
    const url = cli.url;
    assert.match(cli.stderr(), /models: tiny-ssd, linked-sdxl \(one loaded at a time\)/);
    const listed = await (await fetch(url + "/sdapi/v1/sd-models")).json() as { title: string }[];
    assert.deepEqual(listed.map((m) => m.title), ["tiny-ssd", "linked-sdxl"]);
    const r = await fetch(url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...base, override_settings: { sd_model_checkpoint: "linked-sdxl" } }) });
    assert.equal(r.status, 200);
    const png = Buffer.from((await r.json() as { images: string[] }).images[0], "base64");
    assert.ok(levelDiff(png, (await library(sdxl ??= await StableDiffusionXLPipeline.fromPretrained(catalog[1].source))).images.data) <= 1);
  } finally {
    assert.equal(await cli.stop(), 0, cli.stderr());
  }
  mkdirSync(join(served.tmp, "empty-models"), { recursive: true });
  for (const [args, re] of [
    [["serve", "--queue", "redis://127.0.0.1:1", "--model", "a/b", "--model", "c/d"], /with --queue the workers run the jobs, each on its own --model/],
    [["serve", "--models-dir", join(served.tmp, "empty-models")], /--models-dir .*empty-models: no \*\.safetensors file or diffusers folder in it/],
    [["serve", "--model", "a/SSD-1B", "--model", "segmind/SSD-1B"], /two models are called "SSD-1B"/],
  ] as [string[], RegExp][]) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60000, env });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test("web page: the model picker lists the served models and starts on the default; the chosen one runs (native model field, A1111's sd_model_checkpoint with the hires fix)", { skip: NO_FIXTURES || BROWSER_SKIP, timeout: 180_000 }, async () => {
  const { page, consoleErrors } = await openReadyPage(served.browser, served.server.url + "/");
  assert.deepEqual(await page.$$eval("#sd-model option", (els) => els.map((o) => (o as HTMLOptionElement).value)), ["tiny-ssd", "tiny-sdxl", "broken"]);
  await page.fill("#prompt", base.prompt);
  await page.fill("#steps", "2");
  await page.fill("#seed", "4");
  await page.selectOption("#scheduler", "Euler");
  assert.equal(await page.inputValue("#sd-model"), "tiny-ssd");
  await page.selectOption("#sd-model", "tiny-sdxl");
  const sent: { url: string; body: any }[] = [];
  page.on("request", (r) => { if (r.method() === "POST" && /\/(sdapi\/v1\/txt2img|v1\/jobs)$/.test(r.url())) sent.push({ url: new URL(r.url()).pathname, body: r.postDataJSON() }); });
  await page.click("#generate");
  await page.waitForSelector("#gallery .card pre");
  assert.match(await page.textContent("#gallery .card pre") ?? "", /Model: tiny-sdxl/);
  assert.deepEqual([sent[0].url, sent[0].body.model], ["/v1/jobs", "tiny-sdxl"]);
  // through A1111's txt2img (the hires fix): override_settings
  await page.check("#enable-hr");
  await page.fill("#hr-steps", "2");
  await page.click("#generate");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 2 || document.getElementById("status")!.textContent !== "");
  assert.equal(await page.textContent("#status"), "");
  assert.deepEqual([sent[1].url, sent[1].body.override_settings], ["/sdapi/v1/txt2img", { sd_model_checkpoint: "tiny-sdxl" }]);
  assert.match(await page.textContent("#gallery .card pre") ?? "", /Model: tiny-sdxl/);
  // a new page starts on the default that POST options set
  assert.equal((await post("/sdapi/v1/options", { sd_model_checkpoint: "tiny-sdxl" })).status, 200);
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  assert.equal(await page.inputValue("#sd-model"), "tiny-sdxl");
  assert.equal((await post("/sdapi/v1/options", { sd_model_checkpoint: "tiny-ssd" })).status, 200);
  assert.deepEqual(consoleErrors, []);
  await page.close();
});
