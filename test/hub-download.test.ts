/**
 * Downloads from the Hub (src/hub) against a local stand-in of its HTTP API (test/helpers/fake-hub.ts)
 * serving the synth tiny-ssd model with both weight variants and decoys (a root single-file checkpoint,
 * .bin files): only what the pipeline loads is fetched, in huggingface_hub's layout; resume, checksum,
 * tokens, locking, offline use and a cache written as huggingface_hub writes it.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NO_FIXTURES, PROJECT_ROOT } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { FakeHub } from "./helpers/fake-hub.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { snapshotDownload, selectFiles, HubError } from "../src/hub/index.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const tmp = mkdtempSync(join(tmpdir(), "hub-"));
let hub: FakeHub;
let model: string;
const REPO = "test-org/tiny-ssd";

function readTree(dir: string, base = dir): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) Object.assign(out, readTree(p, base));
    else out[relative(base, p)] = readFileSync(p);
  }
  return out;
}

before(() => {
  if (NO_FIXTURES) return;
  model = tinyModelIn(tmp);
  synthModel(model, "fp16");
  const files = readTree(model);
  delete files["cases.json"];
  delete files["cases.safetensors"];
  // decoys the pipeline never loads: a single-file checkpoint at the root, .bin weights, a README
  files["tiny-ssd.safetensors"] = files["unet/diffusion_pytorch_model.safetensors"];
  files["unet/diffusion_pytorch_model.bin"] = Buffer.alloc(3000, 7);
  files["README.md"] = Buffer.from("# tiny\n");
  return FakeHub.start([
    { repoId: REPO, files },
    { repoId: "test-org/private-tiny", files, token: "secret-token-without-hf-prefix" },
    // stands in for segmind/SSD-1B's tokenizers (what a single-file checkpoint lacks), beside weights never to be fetched
    { repoId: "segmind/SSD-1B", files: { ...Object.fromEntries(Object.entries(files).filter(([p]) => p.startsWith("tokenizer"))), "model_index.json": files["model_index.json"], "unet/diffusion_pytorch_model.fp16.safetensors": files["unet/diffusion_pytorch_model.fp16.safetensors"] } },
    { repoId: "test-org/tiny-lora", files: { "pytorch_lora_weights.safetensors": Buffer.alloc(2000, 1), "other.safetensors": Buffer.alloc(100, 2), "README.md": Buffer.from("x") } },
    { repoId: "test-org/tiny-vae", files: { "config.json": files["vae/config.json"], "diffusion_pytorch_model.safetensors": files["vae/diffusion_pytorch_model.safetensors"], "sdxl_vae.safetensors": Buffer.alloc(500, 3), "diffusion_pytorch_model.bin": Buffer.alloc(500, 4) } },
  ]).then((h) => { hub = h; });
});
after(async () => {
  await hub?.close();
  rmSync(tmp, { recursive: true, force: true });
});

let cacheCount = 0;
const freshCache = () => join(tmp, `cache-${cacheCount++}`);
const env = (cache: string, extra: Record<string, string> = {}) => ({ ...process.env, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HOME: join(cache, "home"), HF_TOKEN: "", HF_HUB_OFFLINE: "", ...extra });
/** The CLI in a child process; asynchronously, since the stand-in Hub answers from this process. */
function cli(args: string[], e: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: e });
    let stdout = "", stderr = "";
    c.stdout.on("data", (d) => (stdout += d));
    c.stderr.on("data", (d) => (stderr += d));
    c.once("close", (status) => ok({ status, stdout, stderr }));
  });
}

const EXPECTED = [
  "model_index.json", "scheduler/scheduler_config.json",
  "text_encoder/config.json", "text_encoder/model.fp16.safetensors", "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors",
  "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
  "tokenizer_2/merges.txt", "tokenizer_2/special_tokens_map.json", "tokenizer_2/tokenizer_config.json", "tokenizer_2/vocab.json",
  "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors", "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors",
];

function snapshotFiles(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((n) => (lstatSync(join(dir, n)).isDirectory() ? snapshotFiles(join(dir, n), base) : [relative(base, join(dir, n))])).sort();
}

test("hub: download fetches only the fp16 pipeline files, in huggingface_hub's cache layout; a second run asks nothing", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const before = hub.requests.length;
  const r = await cli(["download", REPO], env(cache));
  assert.equal(r.status, 0, r.stderr);
  const snapshot = r.stdout.trim().split("\n").at(-1)!;
  const commit = hub.commitOf(REPO);
  const repoDir = join(cache, "models--test-org--tiny-ssd");
  assert.equal(snapshot, join(repoDir, "snapshots", commit));
  const present = snapshotFiles(snapshot).filter((f) => EXPECTED.includes(f) || true);
  const expected = EXPECTED.filter((f) => existsSync(join(model, f))).sort();
  assert.deepEqual(present, expected);
  assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), commit);
  for (const f of expected) {
    const link = join(snapshot, f);
    assert.ok(lstatSync(link).isSymbolicLink(), `${f} is a symlink`);
    const target = readlinkSync(link);
    assert.ok(!target.startsWith("/") && target.includes("blobs/"), `${f}: relative link into blobs/, got ${target}`);
    const info = hub.fileInfo(REPO, f);
    assert.equal(target.split("/").at(-1), info.lfs ? info.sha256 : info.gitOid, `${f}: blob named by its ETag`);
    assert.deepEqual(readFileSync(link), readFileSync(join(model, f)));
  }
  const got = hub.requests.slice(before).filter((q) => q.method === "GET" && q.url.includes("/resolve/")).map((q) => q.url);
  for (const url of got) assert.ok(!/\.bin$|tiny-ssd\.safetensors$|README|(?<!fp16)\.safetensors$/.test(url.replace(/\.fp16\.safetensors$/, ".fp16")), `not fetched: ${url}`);
  assert.ok(!hub.requests.slice(before).some((q) => /diffusion_pytorch_model\.safetensors$|\/model\.safetensors$/.test(q.url)), "no fp32 weights asked for");
  assert.ok(hub.requests.slice(before).filter((q) => q.url.includes("/tree/")).length >= 2, "the tree listing is paginated");
  // complete in the cache: no network call at all
  const n = hub.requests.length;
  const again = await cli(["download", REPO], env(cache));
  assert.equal(again.status, 0, again.stderr);
  assert.equal(again.stdout.trim(), snapshot);
  assert.equal(hub.requests.length, n, "no request for a complete cached snapshot");
  assert.match(again.stderr, /complete in the cache/);
});

test("hub: fromPretrained downloads on first use; offline, the cached repo gives the same image as the local folder", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const opts = { variant: "fp16" as const, lowMemory: true };
  const run = async (spec: string, hubOpts = {}) => {
    const pipe = await StableDiffusionXLPipeline.fromPretrained(spec, { ...opts, hub: { cacheDir: cache, endpoint: hub.url, ...hubOpts } });
    try {
      return await pipe.generate({ prompt: "a red cube", numInferenceSteps: 2, seed: 3, width: 32, height: 32, outputType: "latent" } as never);
    } finally {
      await pipe.release();
    }
  };
  const events: string[] = [];
  const first = await run(REPO, { onProgress: (p: { event: string }) => events.push(p.event) });
  assert.ok(events.includes("start") && events.includes("done"), "progress callback called");
  const n = hub.requests.length;
  const offline = await run(REPO, { offline: true, endpoint: "http://127.0.0.1:1" });
  assert.equal(hub.requests.length, n);
  const local = await run(model);
  assert.deepEqual(Array.from(offline.latents.data), Array.from(local.latents.data));
  assert.deepEqual(Array.from(first.latents.data), Array.from(local.latents.data));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained("test-org/not-cached", { hub: { cacheDir: cache, offline: true } }), (e: Error) => e instanceof HubError && /offline/.test(e.message) && e.message.includes(cache));
});

test("hub: a connection cut mid-file is continued with a Range request, not started over", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const file = "unet/diffusion_pytorch_model.fp16.safetensors";
  const size = hub.fileInfo(REPO, file).data.length;
  const cut = Math.floor(size / 3);
  hub.faults.set(file, { cutAfter: cut });
  await snapshotDownload({ repoId: REPO }, { cacheDir: cache, endpoint: hub.url });
  const gets = hub.gets(REPO, file).slice(-2);
  assert.equal(gets.length, 2);
  assert.equal(gets[0].range, undefined);
  assert.equal(gets[1].range, `bytes=${cut}-`);
  assert.equal(gets[0].bodyBytes + gets[1].bodyBytes, size, "no byte sent twice");
  assert.deepEqual(readFileSync(join(cache, "models--test-org--tiny-ssd", "snapshots", hub.commitOf(REPO), file)), hub.fileInfo(REPO, file).data);
});

test("hub: a download killed mid-file continues from the partial file on the next run", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const file = "text_encoder_2/model.fp16.safetensors";
  const info = hub.fileInfo(REPO, file);
  const stall = Math.floor(info.data.length / 2);
  hub.faults.set(file, { stallAfter: stall });
  const child: ChildProcess = spawn(process.execPath, [CLI, "download", REPO], { env: env(cache), stdio: "ignore" });
  const partial = join(cache, "models--test-org--tiny-ssd", "blobs", `${info.sha256}.incomplete`);
  const t0 = Date.now();
  while (!(existsSync(partial) && statSync(partial).size === stall)) {
    assert.ok(Date.now() - t0 < 30_000, "the partial file did not appear");
    await sleep(50);
  }
  child.kill("SIGKILL");
  await new Promise((ok) => child.once("exit", ok));
  const r = await cli(["download", REPO], env(cache));
  assert.equal(r.status, 0, r.stderr);
  const last = hub.gets(REPO, file).at(-1)!;
  assert.equal(last.range, `bytes=${stall}-`);
  assert.equal(last.bodyBytes, info.data.length - stall, "only the rest was sent");
  assert.ok(!existsSync(partial));
  assert.equal(createHash("sha256").update(readFileSync(join(r.stdout.trim(), file))).digest("hex"), info.sha256);
});

test("hub: a corrupted byte is caught by the checksum (retried once; twice is a clear error with nothing kept)", { skip: NO_FIXTURES }, async () => {
  const file = "vae/diffusion_pytorch_model.fp16.safetensors";
  const info = hub.fileInfo(REPO, file);
  const cache = freshCache();
  hub.faults.set(file, { corrupt: true, times: 1 });
  const r = await snapshotDownload({ repoId: REPO }, { cacheDir: cache, endpoint: hub.url });
  assert.equal(createHash("sha256").update(readFileSync(join(r.snapshot, file))).digest("hex"), info.sha256);
  assert.ok(r.fetched.includes(file));

  const cache2 = freshCache();
  hub.faults.set(file, { corrupt: true, times: 2 });
  const bad = await cli(["download", REPO], env(cache2));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /checksum did not match twice/);
  assert.equal(bad.stderr.trim().split("\n").filter((l) => /error/.test(l)).length, 1);
  assert.ok(!/\n\s+at /.test(bad.stderr), "no stack trace");
  const repoDir = join(cache2, "models--test-org--tiny-ssd");
  assert.ok(!existsSync(join(repoDir, "snapshots")), "no half-made snapshot");
  assert.ok(!existsSync(join(repoDir, "blobs", info.sha256)) && !existsSync(join(repoDir, "blobs", `${info.sha256}.incomplete`)));
});

test("hub: a private repo needs a token (HF_TOKEN, --token or the token file; any token form)", { skip: NO_FIXTURES }, async () => {
  const repo = "test-org/private-tiny";
  const cache = freshCache();
  const denied = await cli(["download", repo], env(cache));
  assert.equal(denied.status, 1);
  assert.match(denied.stderr, /private.*HF_TOKEN/);
  assert.ok(!/\n\s+at /.test(denied.stderr));
  assert.ok(!existsSync(join(cache, "models--test-org--private-tiny")), "nothing written");
  const wrong = await cli(["download", repo, "--token", "nope"], env(cache));
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /cannot read it/);
  const viaEnv = await cli(["download", repo], env(cache, { HF_TOKEN: "secret-token-without-hf-prefix" }));
  assert.equal(viaEnv.status, 0, viaEnv.stderr);
  const cache2 = freshCache();
  mkdirSync(join(cache2, "home"), { recursive: true });
  writeFileSync(join(cache2, "home", "token"), "secret-token-without-hf-prefix\n");
  const viaFile = await cli(["download", repo], env(cache2));
  assert.equal(viaFile.status, 0, viaFile.stderr);
  assert.ok(hub.requests.some((q) => q.auth === "Bearer secret-token-without-hf-prefix"));
});

test("hub: two processes downloading one repo at once end with one correct copy of each blob", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const file = "unet/diffusion_pytorch_model.fp16.safetensors";
  const before = hub.gets(REPO, file).length;
  const runs = [0, 1].map(() => new Promise<{ code: number | null; out: string }>((ok) => {
    const c = spawn(process.execPath, [CLI, "download", REPO], { env: env(cache) });
    let out = "";
    c.stdout.on("data", (d) => (out += d));
    c.once("exit", (code) => ok({ code, out }));
  }));
  const [a, b] = await Promise.all(runs);
  assert.equal(a.code, 0);
  assert.equal(b.code, 0);
  assert.equal(a.out, b.out);
  const blobs = join(cache, "models--test-org--tiny-ssd", "blobs");
  const names = readdirSync(blobs);
  assert.ok(!names.some((n) => n.endsWith(".incomplete")));
  for (const f of EXPECTED) {
    if (!existsSync(join(model, f))) continue;
    const info = hub.fileInfo(REPO, f);
    assert.deepEqual(readFileSync(join(a.out.trim(), f)), info.data, f);
  }
  assert.equal(hub.gets(REPO, file).length - before, 1, "the big file was fetched once");
});

test("hub: a cache laid out by hand as huggingface_hub lays it out is used offline", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const repoDir = join(cache, "models--someone--handmade");
  for (const [path, data] of Object.entries(readTree(model))) {
    if (path.startsWith("cases") || (path.endsWith(".safetensors") && !path.includes(".fp16."))) continue;
    const etag = path.endsWith(".safetensors") ? createHash("sha256").update(data).digest("hex") : createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
    mkdirSync(join(repoDir, "blobs"), { recursive: true });
    writeFileSync(join(repoDir, "blobs", etag), data);
    const link = join(repoDir, "snapshots", commit, path);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(relative(dirname(link), join(repoDir, "blobs", etag)), link);
  }
  mkdirSync(join(repoDir, "refs"), { recursive: true });
  writeFileSync(join(repoDir, "refs", "main"), commit);
  const r = await cli(["download", "someone/handmade", "--offline"], env(cache, { HF_ENDPOINT: "http://127.0.0.1:1" }));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), join(repoDir, "snapshots", commit));
  const pipe = await StableDiffusionXLPipeline.fromPretrained("someone/handmade", { hub: { cacheDir: cache, offline: true } });
  assert.equal(pipe.model.dir, join(repoDir, "snapshots", commit));
  await pipe.release();
});

test("hub: missing repo, missing revision, no network, offline and not cached: one clear line each, exit 1", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const cases: [string[], Record<string, string>, RegExp][] = [
    [["download", "test-org/nope"], {}, /repository test-org\/nope not found/],
    [["download", REPO, "--revision", "v9"], {}, /revision "v9" not found in test-org\/tiny-ssd/],
    [["download", REPO], { HF_ENDPOINT: "http://127.0.0.1:1" }, /cannot reach the Hugging Face Hub at http:\/\/127\.0\.0\.1:1 .*--offline/],
    [["download", REPO], { HF_HUB_OFFLINE: "1" }, /offline .*not in the cache/],
    [["generate", "--model", REPO, "--prompt", "x", "--offline"], {}, /offline .*not in the cache/],
  ];
  for (const [args, extra, re] of cases) {
    const r = await cli(args, env(cache, extra));
    assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
    const errors = r.stderr.trim().split("\n").filter((l) => /error|\s+at /.test(l));
    assert.equal(errors.length, 1, `one error line, no stack: ${r.stderr}`);
    assert.match(errors[0], re);
  }
  assert.ok(!existsSync(join(cache, "models--test-org--nope")));
  assert.ok(!existsSync(join(cache, "models--test-org--tiny-ssd", "snapshots")));
});

test("hub: LoRA and VAE repos: the LoRA file, the VAE's config and diffusers weights (not the single file, not .bin)", { skip: NO_FIXTURES }, async () => {
  const cache = freshCache();
  const lora = await cli(["download", "--lora", "test-org/tiny-lora"], env(cache));
  assert.equal(lora.status, 0, lora.stderr);
  assert.match(lora.stdout.trim(), /snapshots\/[0-9a-f]{40}\/pytorch_lora_weights\.safetensors$/);
  const other = await cli(["download", "--lora", "test-org/tiny-lora/other.safetensors"], env(cache));
  assert.match(other.stdout.trim(), /other\.safetensors$/);
  const vae = await cli(["download", "--vae", "test-org/tiny-vae"], env(cache));
  assert.equal(vae.status, 0, vae.stderr);
  assert.deepEqual(snapshotFiles(vae.stdout.trim()), ["config.json", "diffusion_pytorch_model.safetensors"]);
  // the same repo as a VAE override of a pipeline, fetched on first use
  const pipe = await StableDiffusionXLPipeline.fromPretrained(model, { vae: "test-org/tiny-vae", hub: { cacheDir: freshCache(), endpoint: hub.url } });
  assert.match(pipe.source.vae.where, /models--test-org--tiny-vae/);
  await pipe.release();
});

test("hub: file selection on the real SSD-1B file list (fp16 by default; fp32 on request; no root checkpoints, no .bin)", () => {
  const f = (path: string, size = 10) => ({ path, size, oid: "x" });
  const comps = ["unet", "vae", "text_encoder", "text_encoder_2"];
  const listing = [
    f("model_index.json"), f("README.md"), f("SSD-1B.safetensors"), f("SSD-1B-A1111.safetensors"), f("scheduler/scheduler_config.json"),
    ...["tokenizer", "tokenizer_2"].flatMap((t) => ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"].map((n) => f(`${t}/${n}`))),
    ...comps.flatMap((c) => {
      const w = c.startsWith("text") ? "model" : "diffusion_pytorch_model";
      return [f(`${c}/config.json`), f(`${c}/${w}.safetensors`), f(`${c}/${w}.fp16.safetensors`), f(`${c}/${w}.bin`), f(`${c}/${w}.fp16.bin`)];
    }),
    f("unet/openvino_model.xml"), f("vae_decoder/model.onnx"),
  ];
  const modelIndex = { _class_name: "StableDiffusionXLPipeline", unet: ["diffusers", "UNet2DConditionModel"], vae: ["diffusers", "AutoencoderKL"], text_encoder: ["transformers", "CLIPTextModel"], text_encoder_2: ["transformers", "CLIPTextModelWithProjection"], tokenizer: ["transformers", "CLIPTokenizer"], tokenizer_2: ["transformers", "CLIPTokenizer"], scheduler: ["diffusers", "EulerDiscreteScheduler"], image_encoder: [null, null] };
  const fp16 = selectFiles(listing, { repoId: "segmind/SSD-1B", modelIndex });
  assert.equal(fp16.variant, "fp16");
  const weights = fp16.files.map((x) => x.path).filter((p) => p.endsWith(".safetensors")).sort();
  assert.deepEqual(weights, ["text_encoder/model.fp16.safetensors", "text_encoder_2/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"]);
  assert.equal(fp16.files.length, 1 + 1 + 8 + 4 + 4);
  const fp32 = selectFiles(listing, { repoId: "segmind/SSD-1B", modelIndex, variant: "fp32" });
  assert.ok(fp32.files.every((x) => !x.path.includes("fp16")));
  const sharded = selectFiles([f("config.json"), f("diffusion_pytorch_model.safetensors.index.fp16.json"), f("diffusion_pytorch_model.fp16-00001-of-00002.safetensors"), f("diffusion_pytorch_model.fp16-00002-of-00002.safetensors"), f("diffusion_pytorch_model.safetensors.index.json"), f("diffusion_pytorch_model-00001-of-00002.safetensors")], { repoId: "x/unet" });
  assert.deepEqual(sharded.files.map((x) => x.path).sort(), ["config.json", "diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "diffusion_pytorch_model.fp16-00002-of-00002.safetensors", "diffusion_pytorch_model.safetensors.index.fp16.json"]);
  assert.throws(() => selectFiles([f("a.safetensors"), f("b.safetensors")], { repoId: "x/two" }), /name one as x\/two\/FILE\.safetensors/);
  const extra = selectFiles(listing, { repoId: "segmind/SSD-1B", modelIndex, include: ["*.md"] });
  assert.ok(extra.files.some((x) => x.path === "README.md"));
});

test("hub: a single-file checkpoint without tokenizers at hand gets SSD-1B's tokenizer folders (and nothing else) on first use", { skip: NO_FIXTURES }, async () => {
  const configs = join(tmp, "sf-configs-only");
  for (const c of ["unet", "vae", "text_encoder", "text_encoder_2", "scheduler"]) cpSync(join(model, c), join(configs, c), { recursive: true });
  for (const c of ["unet", "vae", "text_encoder", "text_encoder_2"]) for (const f of readdirSync(join(configs, c))) if (f.endsWith(".safetensors")) rmSync(join(configs, c, f));
  const alone = join(tmp, "sf-alone");
  mkdirSync(alone, { recursive: true });
  const file = join(alone, "model.safetensors");
  cpSync(join(PROJECT_ROOT, "../shared/fixtures/single-file/tiny-ssd-sgm.safetensors"), file);
  const home = join(tmp, "sf-home");
  const env = { HF_HOME: home, HF_HUB_CACHE: "", HUGGINGFACE_HUB_CACHE: "" };
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(file, { config: configs, env, hub: { offline: true } }), /has no tokenizer.*run once online/s);
  const before = hub.requests.length, unetGets = hub.gets("segmind/SSD-1B", "unet/diffusion_pytorch_model.fp16.safetensors").length;
  const pipe = await StableDiffusionXLPipeline.fromPretrained(file, { config: configs, env, hub: { endpoint: hub.url } });
  try {
    assert.equal(pipe.source.tokenizersFrom, join(home, "hub", "models--segmind--SSD-1B", "snapshots", hub.commitOf("segmind/SSD-1B")));
    const got = snapshotFiles(pipe.source.tokenizersFrom!);
    assert.ok(got.length >= 6 && got.every((f) => f.startsWith("tokenizer/") || f.startsWith("tokenizer_2/")), `only tokenizer files: ${got.join(", ")}`);
    assert.equal(hub.gets("segmind/SSD-1B", "unet/diffusion_pytorch_model.fp16.safetensors").length, unetGets, "no weights");
    assert.ok(hub.requests.length > before);
  } finally {
    await pipe.release();
  }
});
