/**
 * Faults in Redis mode: 50 concurrent submits through two front ends against --max-queue 5 admit
 * exactly 5 (the limit is taken atomically in Redis); /health is a 503 while Redis is down; a worker
 * killed with SIGKILL mid-job under the default lock and stalled-check settings has its job taken
 * over within seconds (the front end releases the jobs of workers whose connections are gone), no
 * job is lost and none completes twice.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT } from "./helpers/fixtures.js";
import { stopChildren } from "./helpers/child-processes.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { startServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { RedisQueue } from "../src/server/redis-queue.js";
import type { JobSpec } from "../src/server/job.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const SKIP = NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found (apt-get install -y redis-server)");
const tmp = mkdtempSync(join(tmpdir(), "server-faults-"));
const children: ChildProcess[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

after(async () => {
  await stopChildren(children);
  rmSync(tmp, { recursive: true, force: true });
});

async function redis(): Promise<{ url: string; process: ChildProcess }> {
  const r = await startRedisServer();
  children.push(r.process);
  return r;
}

function startCli(args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let log = "";
  child.stderr!.on("data", (d) => { log += d; });
  child.stdout!.on("data", (d) => { log += d; });
  return { child, log: () => log };
}

/** Polls (bounded) until `re` matches the text; returns the match and when it was first seen. */
async function waitForLog(text: () => string, re: RegExp, timeoutMs = 60000): Promise<{ m: RegExpExecArray; at: number }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(text());
    if (m) return { m, at: Date.now() };
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in: ${text().slice(-3000)}`);
    await sleep(20);
  }
}

const spec = (seed: number): JobSpec => ({ prompt: "x", steps: 2, guidanceScale: 5, seed, width: 16, height: 16, batchSize: 1, iterations: 1 });

test("redis faults: 50 concurrent submits through two front ends against --max-queue 5 admit exactly 5; cancelling frees the places", { skip: SKIP, timeout: 60_000 }, async () => {
  const { url } = await redis();
  const a = await RedisQueue.connect(url, { maxQueue: 5, files: new FileStore(), model: "tiny-ssd" });
  const b = await RedisQueue.connect(url, { maxQueue: 5, files: new FileStore(), model: "tiny-ssd" });
  const server = await startServer({ queue: a, host: "127.0.0.1", port: 0 });
  try {
    // no worker runs: every admitted job stays waiting
    const http = Array.from({ length: 25 }, (_, i) => fetch(`${server.url}/v1/jobs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "x", steps: 2, width: 16, height: 16, seed: i }) }));
    const direct = Array.from({ length: 25 }, (_, i) => b.submit(spec(100 + i)).then(() => 202, (e: { status: number }) => e.status));
    const statuses = [...(await Promise.all(http)).map((r) => r.status), ...await Promise.all(direct)];
    assert.equal(statuses.filter((s) => s === 202).length, 5, `accepted: ${statuses.join(" ")}`);
    assert.equal(statuses.filter((s) => s === 429).length, 45);
    const full = await fetch(`${server.url}/v1/jobs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "x" }) });
    assert.equal(full.status, 429);
    assert.match(full.headers.get("retry-after") ?? "", /^\d+$/);
    // cancel the waiting ones (DELETE removes them from Redis): the places come back
    for (const q of [a, b]) for (const id of [...(q as unknown as { jobs: Map<string, unknown> }).jobs.keys()]) q.get(id)!.cancel("cancelled");
    let again: number[] = [];
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      if (await b.submit(spec(900 + i)).then(() => true, () => false)) again.push(i);
      if (again.length === 5) break;
    }
    assert.equal(again.length, 5, "five places free again");
    await assert.rejects(a.submit(spec(999)), (e: { status: number }) => e.status === 429);
  } finally {
    await server.close();
    await b.close();
  }
});

test("redis faults: /health is a 503 while Redis is down, and submits are 503s", { skip: SKIP, timeout: 60_000 }, async () => {
  const r = await redis();
  const queue = await RedisQueue.connect(r.url, { maxQueue: 5, files: new FileStore(), model: "tiny-ssd" });
  const server = await startServer({ queue, host: "127.0.0.1", port: 0 });
  try {
    const ok = await fetch(`${server.url}/health`);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { status: string }).status, "ok");
    const exited = new Promise((res) => r.process.once("exit", res));
    r.process.kill("SIGKILL");
    await exited;
    const t0 = Date.now();
    const down = await fetch(`${server.url}/health`);
    const body = await down.json() as { status: string; error: string; mode: string };
    assert.equal(down.status, 503, JSON.stringify(body));
    assert.equal(body.status, "unavailable");
    assert.match(body.error, /Redis/);
    assert.equal(body.mode, "redis");
    assert.ok(Date.now() - t0 < 2500, `answered in ${Date.now() - t0} ms`);
    const submit = await fetch(`${server.url}/v1/jobs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "x" }) });
    assert.equal(submit.status, 503);
    // Redis back on the same port: healthy again (and the clients can close)
    const port = new URL(r.url).port;
    children.push(spawn(REDIS_SERVER!, ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" }));
    let status = 0;
    for (let i = 0; i < 200 && status !== 200; i++) {
      await sleep(50);
      status = (await fetch(`${server.url}/health`)).status;
    }
    assert.equal(status, 200, "healthy once Redis is back");
  } finally {
    await Promise.race([server.close(), sleep(5000)]);
  }
});

test("redis faults: a worker killed mid-job (default lock and stalled settings) has its job taken over within seconds; none lost, none done twice", { skip: SKIP, timeout: 180_000 }, async (t) => {
  const modelDir = tinyModelIn(tmp);
  const { url } = await redis();
  const front = startCli(["serve", "--queue", url, "--port", "0", "--model", "tiny-ssd", "--max-queue", "32"]);
  const frontUrl = (await waitForLog(front.log, /listening on (http:\/\/127\.0\.0\.1:\d+)/)).m[1];
  const workers = [startCli(["worker", "--queue", url, "--model", modelDir]), startCli(["worker", "--queue", url, "--model", modelDir])];
  await Promise.all(workers.map((w) => waitForLog(w.log, /ready: tiny-ssd/)));
  const post = (seed: number, steps: number) => fetch(`${frontUrl}/sdapi/v1/txt2img`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "a lighthouse", steps, width: 32, height: 32, seed, sampler_name: "Euler" }),
  });
  // let the front end see both workers before the kill
  await sleep(2500);
  const answer = post(4242, 200);
  const all = () => workers.map((w) => w.log()).join("\n");
  const started = await waitForLog(all, /job ([0-9a-f]{20}) started/);
  const id = started.m[1];
  const victim = workers.find((w) => w.log().includes(`job ${id} started`))!;
  const survivor = workers.find((w) => w !== victim)!;
  // kill it mid-job: after a few steps
  await sleep(300);
  victim.child.kill("SIGKILL");
  const killedAt = Date.now();
  const taken = await waitForLog(survivor.log, new RegExp(`job ${id} started \\(seed 4242, 200 steps, taken over from a stalled worker\\)`), 60000);
  const recovery = (taken.at - killedAt) / 1000;
  t.diagnostic(`SIGKILL to takeover: ${recovery.toFixed(1)} s (lock 300 s, stalled check 5 s; the old 30 s / 30 s defaults took about 61 s)`);
  assert.ok(recovery < 15, `taken over after ${recovery.toFixed(1)} s`);
  assert.match(front.log(), new RegExp(`job ${id}: its worker \\S+ is gone; released for another worker`));
  const r = await answer;
  assert.equal(r.status, 200, await r.clone().text());
  assert.equal(JSON.parse(((await r.json()) as { info: string }).info).seed, 4242);

  // a fresh second worker; six more jobs: each starts and finishes exactly once
  const third = startCli(["worker", "--queue", url, "--model", modelDir]);
  workers.push(third);
  await waitForLog(third.log, /ready: tiny-ssd/);
  const answers = await Promise.all([1, 2, 3, 4, 5, 6].map((s) => post(s, 20)));
  const ids = await Promise.all(answers.map(async (a) => { assert.equal(a.status, 200); return JSON.parse(((await a.json()) as { info: string }).info).job_id as string; }));
  const logs = all();
  for (const j of ids) {
    assert.equal(logs.split(`job ${j} started`).length - 1, 1, `job ${j} started once`);
    assert.equal(logs.split(`job ${j} done`).length - 1, 1, `job ${j} done once`);
  }
  assert.equal(logs.split(`job ${id} done`).length - 1, 1, "the recovered job completed once");
});
