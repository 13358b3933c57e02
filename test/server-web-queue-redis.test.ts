/**
 * The web page's queue view with the Redis queue: two front ends on one Redis, the page open on the
 * first; a client of the second queues jobs, and the page shows them (from BullMQ), queued and then
 * running on an in-process worker, until they are cancelled.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BROWSER_SKIP, launchBrowser } from "./helpers/browser.js";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { REDIS_SERVER, startRedisServer } from "./helpers/redis-server.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { startServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { RedisQueue } from "../src/server/redis-queue.js";
import { startRedisWorker } from "../src/server/redis-worker.js";

const SKIP = NO_FIXTURES || (REDIS_SERVER ? false : "redis-server not found") || BROWSER_SKIP;

test("web page queue view through Redis: another front end's jobs, queued then running, then gone", { skip: SKIP, timeout: 180_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "server-web-queue-redis-"));
  const { url: queueUrl, process: redis } = await startRedisServer();
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const servers = await Promise.all([0, 1].map(async () => {
    const files = new FileStore();
    const queue = await RedisQueue.connect(queueUrl, { maxQueue: 8, files, model: "tiny-ssd" });
    return startServer({ queue, files, host: "127.0.0.1", port: 0 });
  }));
  const [a, b] = servers;
  const browser = await launchBrowser();
  let worker: Awaited<ReturnType<typeof startRedisWorker>> | undefined;
  try {
    const submit = async (prompt: string, steps: number) => {
      const r = await fetch(b.url + "/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt, steps, width: 32, height: 32, seed: 1 }) });
      assert.equal(r.status, 202);
      return ((await r.json()) as { id: string }).id;
    };
    const long = await submit("from the other front end, long", 1000);
    const next = await submit("from the other front end, next", 2);
    // no worker yet: both wait, in order, and the first front end sees them
    const q = (await (await fetch(a.url + "/v1/queue")).json()) as { mode: string; jobs: { id: string; status: string; position: number; prompt: string }[] };
    assert.equal(q.mode, "redis");
    assert.deepEqual(q.jobs.map((j) => [j.id, j.status, j.position, j.prompt]), [[long, "queued", 0, "from the other front end, long"], [next, "queued", 1, "from the other front end, next"]]);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(60000);
    await page.goto(a.url + "/");
    await page.waitForSelector('body[data-ready="1"]');
    await page.waitForSelector(`#queue li[data-id="${next}"][data-status="queued"]`);
    assert.equal(await page.textContent(`#queue li[data-id="${long}"] .prompt`), "from the other front end, long");

    worker = await startRedisWorker({ url: queueUrl, pipe });
    await page.waitForFunction((id) => /^running [1-9]\d*\/1000$/.test(document.querySelector(`#queue li[data-id="${id}"] .state`)?.textContent ?? ""), long);
    assert.equal(await page.textContent(`#queue li[data-id="${next}"] .state`), "queued #1");

    for (const id of [next, long]) assert.equal((await fetch(`${b.url}/v1/jobs/${id}`, { method: "DELETE" })).status, 200);
    await page.waitForFunction(() => document.querySelectorAll("#queue li").length === 0);
    await page.close();
  } finally {
    await browser.close();
    await worker?.close();
    for (const s of servers) await s.close();
    await pipe.release();
    const exited = new Promise((r) => redis.once("exit", r));
    redis.kill("SIGTERM");
    await exited;
    rmSync(tmp, { recursive: true, force: true });
  }
});
