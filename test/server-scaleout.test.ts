/**
 * Scale-out: a Redis on a free loopback port, one `ssd1b serve --queue` front end and two
 * `ssd1b worker` processes (BullMQ). Ten queued jobs all complete with the right images, and a
 * worker killed in the middle of a job does not lose it (BullMQ's stalled-job recovery, with a
 * short lock for the test). Progress, server-sent events and interrupt work through Redis too, and an
 * inpainting request's mask and settings reach the worker in the JobSpec.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture, levelDiff } from "./helpers/fixtures.js";
import { stopChildren } from "./helpers/child-processes.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { inpaintFixtureCase } from "./helpers/inpaint-case.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const SKIP = NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found (apt-get install -y redis-server)");

const tmp = mkdtempSync(join(tmpdir(), "server-scaleout-"));
const children: ChildProcess[] = [];
let modelDir = "";
let queueUrl = "";
let frontUrl = "";
const workers: { child: ChildProcess; log: () => string }[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until a child's output matches; returns the match. */
function waitForOutput(child: ChildProcess, stream: "stdout" | "stderr", re: RegExp, timeoutMs = 30000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${re} in: ${text.slice(-2000)}`)); }, timeoutMs);
    const onData = (d: Buffer) => { text += d; const m = re.exec(text); if (m) { cleanup(); resolve(m); } };
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`exited (${code}) before ${re}: ${text.slice(-2000)}`)); };
    const cleanup = () => { clearTimeout(timer); child[stream]!.off("data", onData); child.off("exit", onExit); };
    child[stream]!.on("data", onData);
    child.once("exit", onExit);
  });
}

function startCli(args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let log = "";
  child.stderr!.on("data", (d) => { log += d; });
  return { child, log: () => log };
}

function startWorker() {
  const w = startCli(["worker", "--queue", queueUrl, "--model", modelDir, "--lock-ms", "2000", "--stalled-ms", "1000"]);
  workers.push(w);
  return w;
}

before(async () => {
  if (SKIP) return;
  modelDir = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), modelDir, { recursive: true });
  synthModel(modelDir, "fp32");
  const redis = await startRedisServer();
  children.push(redis.process);
  queueUrl = redis.url;
  const front = startCli(["serve", "--queue", queueUrl, "--port", "0", "--model", "tiny-ssd", "--max-queue", "32"]);
  frontUrl = (await waitForOutput(front.child, "stdout", /listening on (http:\/\/127\.0\.0\.1:\d+)/))[1];
  const ws = [startWorker(), startWorker()];
  await Promise.all(ws.map((w) => waitForOutput(w.child, "stderr", /ready: tiny-ssd/)));
});

after(async () => {
  // workers and front end first, Redis last
  await stopChildren(children);
  rmSync(tmp, { recursive: true, force: true });
});

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(frontUrl + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

async function getJson(path: string): Promise<any> {
  return (await fetch(frontUrl + path)).json();
}


const STEPS = 40;
const request = (seed: number) => ({ prompt: "a lighthouse at dusk", negative_prompt: "blurry", steps: STEPS, cfg_scale: 5, width: 32, height: 32, seed, sampler_name: "Euler" });

test("scale-out: health and model come from the workers; progress, events and interrupt go through Redis", { skip: SKIP, timeout: 120000 }, async () => {
  const health = await getJson("/health");
  assert.equal(health.mode, "redis");
  assert.equal(health.model.name, "tiny-ssd");
  const r = await post("/v1/jobs", { prompt: "a castle", steps: 5, width: 32, height: 32, seed: 9 });
  assert.equal(r.status, 202);
  const { id } = await r.json() as { id: string };
  const text = await (await fetch(`${frontUrl}/v1/jobs/${id}/events`)).text();
  assert.match(text, /event: step\ndata: \{[^\n]*"step":5,"total_steps":5/);
  assert.match(text, /"preview":"data:image\/png;base64,/);
  assert.match(text, /event: done\n/);
  const done = await getJson(`/v1/jobs/${id}`);
  assert.equal(done.status, "done");
  assert.equal((await fetch(done.result.images[0].url)).status, 200);

  const pending = post("/sdapi/v1/txt2img", { prompt: "long", steps: 1000, width: 32, height: 32 });
  let p: any;
  for (let i = 0; i < 400; i++) {
    p = await getJson("/sdapi/v1/progress");
    if (p.state.sampling_step >= 2) break;
    await sleep(50);
  }
  assert.ok(p.state.sampling_step >= 2 && p.progress > 0 && p.progress < 1, JSON.stringify(p).slice(0, 300));
  assert.equal(p.state.sampling_steps, 1000);
  assert.equal((await post("/sdapi/v1/interrupt", {})).status, 200);
  // A1111: the interrupted request answers with the image as it stood, also through a worker
  const res = await pending;
  assert.equal(res.status, 200);
  const out = await res.json() as { images: string[]; info: string };
  assert.equal(out.images.length, 1);
  assert.equal(decodePng(Buffer.from(out.images[0], "base64")).width, 32);
  assert.equal(JSON.parse(out.info).all_seeds.length, 1);

  // a client that goes away takes its job with it, on whichever worker runs it
  const ac = new AbortController();
  const gone = fetch(`${frontUrl}/sdapi/v1/txt2img`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "nobody waits", steps: 1000, width: 32, height: 32 }), signal: ac.signal }).catch((e: Error) => e);
  for (let i = 0; i < 400; i++) {
    p = await getJson("/sdapi/v1/progress");
    if (p.state.sampling_step >= 2) break;
    await sleep(50);
  }
  assert.ok(p.state.sampling_step >= 2, "the job runs");
  ac.abort();
  assert.ok((await gone) instanceof Error);
  let job: any;
  for (let i = 0; i < 200; i++) {
    job = await getJson(`/v1/jobs/${p.state.job}`);
    if (job.status !== "running") break;
    await sleep(50);
  }
  assert.equal(job.status, "failed");
  assert.equal(job.error.code, "job_disconnected");
  assert.ok(workers.some((w) => w.log().includes(`job ${p.state.job} disconnected`)), "the worker stopped it");
});

test("scale-out: an A1111 inpainting request travels to a worker in its JobSpec and gives the diffusers fixture's image", { skip: SKIP, timeout: 120000 }, async () => {
  const fx = inpaintFixtureCase("strength1_euler");
  const r = await post("/sdapi/v1/img2img", {
    prompt: fx.prompt, negative_prompt: fx.negativePrompt, seed: fx.seed, steps: fx.steps, cfg_scale: fx.guidanceScale, sampler_name: "Euler",
    init_images: [fx.initPng.toString("base64")], mask: fx.maskPng.toString("base64"), denoising_strength: fx.strength,
    mask_blur: 0, inpainting_fill: 1, inpaint_full_res: false,
  });
  assert.equal(r.status, 200, await r.clone().text());
  const out = await r.json() as { images: string[]; info: string };
  assert.ok(levelDiff(Buffer.from(out.images[0], "base64"), fx.a1111Images) <= 1, "the worker's inpainting vs the fixture");
  assert.deepEqual(JSON.parse(out.info).extra_generation_params, { "Masked content": "original" });
  // a bad mask is refused by the front end before anything is queued
  const black = await post("/sdapi/v1/img2img", { prompt: "x", init_images: [fx.initPng.toString("base64")], mask: encodePng({ width: 32, height: 32, data: new Uint8Array(3072) }).toString("base64") });
  assert.equal(black.status, 400);
});

test("scale-out: 10 queued jobs on two workers all complete with the right images; a killed worker's job is not lost", { skip: SKIP, timeout: 180000 }, async () => {
  const seeds = Array.from({ length: 10 }, (_, i) => 500 + i);
  const answers = seeds.map((seed) => post("/sdapi/v1/txt2img", request(seed)));
  // kill worker 0 as soon as it starts a job
  const victim = workers[0];
  const started = await waitForOutput(victim.child, "stderr", /job ([0-9a-f]+) started/, 60000);
  const killedJob = started[1];
  victim.child.kill("SIGKILL");
  const results = await Promise.all(answers);
  for (const r of results) assert.equal(r.status, 200, await r.clone().text());
  const bodies = await Promise.all(results.map((r) => r.json() as Promise<{ images: string[]; info: string }>));
  const infos = bodies.map((b) => JSON.parse(b.info));
  assert.deepEqual(infos.map((i) => i.seed), seeds, "every job answered, each with its own seed");
  const killedIndex = infos.findIndex((i) => i.job_id === killedJob);
  assert.ok(killedIndex >= 0, "the killed worker's job was answered");
  assert.match(workers[1].log(), new RegExp(`job ${killedJob} started \\(seed \\d+, ${STEPS} steps, taken over from a stalled worker\\)`));
  assert.match(workers[1].log(), new RegExp(`job ${killedJob} done`));
  for (const [i, b] of bodies.entries()) {
    assert.equal(b.images.length, 1);
    assert.match(decodePng(Buffer.from(b.images[0], "base64")).text.parameters, new RegExp(`Seed: ${seeds[i]}, Size: 32x32, Model: tiny-ssd$`));
  }
  // the images equal the library's for the same seed (the recovered job and two others)
  const pipe = await StableDiffusionXLPipeline.fromPretrained(modelDir);
  try {
    for (const i of new Set([killedIndex, 0, 9])) {
      const lib = await pipe.generate({ prompt: "a lighthouse at dusk", negativePrompt: "blurry", numInferenceSteps: STEPS, guidanceScale: 5, width: 32, height: 32, seed: seeds[i], scheduler: "Euler" });
      assert.ok(levelDiff(Buffer.from(bodies[i].images[0], "base64"), lib.images.data) <= 1, `job ${i} (seed ${seeds[i]})`);
    }
  } finally {
    await pipe.release();
  }
  const health = await getJson("/health");
  assert.deepEqual([health.queue.running, health.queue.queued], [0, 0]);
});
