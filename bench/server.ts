/**
 * Server throughput and latency with the tiny synth model (../shared/fixtures/pipeline/tiny-ssd):
 * 4 concurrent clients send A1111 txt2img requests (32x32, 4 steps, CFG 5, Euler) for a fixed
 * time, against
 *   - `ssd1b serve` (in-process queue), and
 *   - `ssd1b serve --queue redis://...` with two `ssd1b worker` processes (needs redis-server).
 * Writes requests/minute and latency percentiles to bench/results/server.md. Everything on loopback.
 *
 *   npx tsc -p . && node dist/bench/server.js [--seconds 20] [--clients 4] [--steps 4]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthModel } from "../src/cli/commands/synth.js";
import { stopChildren } from "../test/helpers/child-processes.js";
import { REDIS_SERVER, startRedisServer } from "../test/helpers/redis-server.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const CLI = join(root, "dist/src/cli/main.js");
const { values } = parseArgs({ options: { seconds: { type: "string", default: "20" }, clients: { type: "string", default: "4" }, steps: { type: "string", default: "4" } } });
const SECONDS = Number(values.seconds), CLIENTS = Number(values.clients), STEPS = Number(values.steps);

const children: ChildProcess[] = [];

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  c.stderr!.resume();
  children.push(c);
  return c;
}

function waitFor(child: ChildProcess, stream: "stdout" | "stderr", re: RegExp, ms = 60000): Promise<RegExpExecArray> {
  return new Promise((res, rej) => {
    let text = "";
    const t = setTimeout(() => rej(new Error(`timed out waiting for ${re}`)), ms);
    child[stream]!.on("data", (d) => { text += d; const m = re.exec(text); if (m) { clearTimeout(t); res(m); } });
    child.once("exit", (code) => { clearTimeout(t); rej(new Error(`exited ${code} before ${re}`)); });
  });
}

async function stopAll(): Promise<void> {
  await stopChildren(children.splice(0));
}

interface Result { mode: string; done: number; errors: number; seconds: number; latencies: number[] }

async function load(url: string, mode: string): Promise<Result> {
  const body = (seed: number) => JSON.stringify({ prompt: "a lighthouse at dusk", negative_prompt: "blurry", steps: STEPS, cfg_scale: 5, width: 32, height: 32, seed, sampler_name: "Euler" });
  const once = async (seed: number) => {
    const t = performance.now();
    const r = await fetch(`${url}/sdapi/v1/txt2img`, { method: "POST", headers: { "Content-Type": "application/json" }, body: body(seed) });
    await r.arrayBuffer();
    return { ok: r.status === 200, ms: performance.now() - t };
  };
  // warm-up: every worker compiles its sessions on its first job
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => once(i)));
  const latencies: number[] = [];
  let errors = 0, seed = 1000;
  const t0 = performance.now(), end = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < end) {
      const r = await once(seed++);
      if (r.ok) latencies.push(r.ms); else errors++;
    }
  }));
  return { mode, done: latencies.length, errors, seconds: (performance.now() - t0) / 1000, latencies };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "bench-server-"));
  const model = join(tmp, "tiny-ssd");
  cpSync(resolve(root, "../shared/fixtures/pipeline/tiny-ssd"), model, { recursive: true });
  synthModel(model, "fp32");
  const results: Result[] = [];
  try {
    process.stderr.write("in-process ...\n");
    const front = start(process.execPath, [CLI, "serve", "--model", model, "--port", "0", "--max-queue", "64"]);
    const url = (await waitFor(front, "stdout", /listening on (\S+)/))[1];
    results.push(await load(url, "in-process (`ssd1b serve`)"));
    await stopAll();

    if (REDIS_SERVER) {
      process.stderr.write("redis, two workers ...\n");
      const redis = await startRedisServer();
      children.unshift(redis.process); // stopped last
      const q = redis.url;
      const f = start(process.execPath, [CLI, "serve", "--queue", q, "--model", "tiny-ssd", "--port", "0", "--max-queue", "64"]);
      const furl = (await waitFor(f, "stdout", /listening on (\S+)/))[1];
      const ws = [0, 1].map(() => start(process.execPath, [CLI, "worker", "--queue", q, "--model", model]));
      await Promise.all(ws.map((w) => waitFor(w, "stderr", /ready:/)));
      results.push(await load(furl, "Redis (BullMQ), 2 workers"));
      await stopAll();
    } else process.stderr.write("redis-server not found: the Redis row is left out\n");
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }

  let ort = "";
  try { ort = JSON.parse(readFileSync(join(root, "node_modules/onnxruntime-node/package.json"), "utf8")).version; } catch { /* absent */ }
  const lines = [
    "# Server benchmark",
    "",
    `Machine: ${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Node ${process.version}, onnxruntime-node ${ort}; ${new Date().toISOString().slice(0, 10)}.`,
    `Tiny synth SSD-1B (fixtures/pipeline/tiny-ssd), ${CLIENTS} concurrent clients for ${SECONDS} s after a warm-up, each sending POST /sdapi/v1/txt2img one after another (32x32, ${STEPS} steps, CFG 5, Euler, a new seed each); latency is request to full answer, on loopback.`,
    "Server, workers, Redis and clients share the machine's cores (each onnxruntime session uses all of them), so two workers here overlap one job's HTTP, PNG and prompt work with another's UNet steps rather than double the compute; on a shared machine the numbers vary by tens of percent from run to run.",
    "",
    "| mode | requests | errors | requests/min | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |",
    "|---|---|---|---|---|---|---|---|",
    ...results.map((r) => {
      const s = [...r.latencies].sort((a, b) => a - b);
      const f = (v: number | undefined) => (v === undefined ? "-" : v.toFixed(0));
      return `| ${r.mode} | ${r.done} | ${r.errors} | ${(r.done / r.seconds * 60).toFixed(0)} | ${f(pct(s, 50))} | ${f(pct(s, 90))} | ${f(pct(s, 99))} | ${f(s.at(-1))} |`;
    }),
    "",
  ];
  const out = join(root, "bench/results/server.md");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, lines.join("\n"));
  process.stdout.write(lines.join("\n"));
}

process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
await main();
