/**
 * Hostile input against `ssd1b serve` (in-process, the tiny model): Host and Origin checks
 * (DNS rebinding, cross-site requests), CORS only for listed origins, JSON-only bodies, malformed
 * %-escapes, unknown LoRA names against a 300-file --lora-dir (no folder walk per request; /health
 * keeps answering within 200 ms), LoRA weights rounded so that near-equal weights share one
 * compiled UNet, and the library's own size/steps limits.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { crc32 } from "node:zlib";
import jpeg from "jpeg-js";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, fixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { PIPELINE_LIMITS } from "../src/pipelines/limits.js";
import { encodePng } from "../src/image/png.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { LoraLibrary } from "../src/server/lora-library.js";
import { quantizeLoras } from "../src/server/lora-pipelines.js";

const tmp = mkdtempSync(join(tmpdir(), "server-hostile-"));
const loraDir = join(tmp, "loras");
const LORA_FILES = 300;
let pipe: StableDiffusionXLPipeline;
let queue: LocalQueue;
let library: LoraLibrary;
let server: RunningServer;
let port = 0;
const extra: RunningServer[] = [];

before(async () => {
  if (NO_FIXTURES) return;
  mkdirSync(join(loraDir, "sub"), { recursive: true });
  for (let i = 0; i < LORA_FILES; i++) copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(loraDir, i % 2 ? "sub" : "", `style-${i}.safetensors`));
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const files = new FileStore();
  library = new LoraLibrary(loraDir);
  queue = new LocalQueue(pipe, 8, files, { loras: library });
  server = await startServer({ queue, files, loras: library, host: "127.0.0.1", port: 0 });
  port = server.port;
});

after(async () => {
  for (const s of extra) await s.close();
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** A raw request (fetch would not send a Host of our choosing). */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string, at = port): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: at, method, path, headers: { Host: `127.0.0.1:${at}`, ...headers, ...(body !== undefined ? { "Content-Length": String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { text += d; });
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const code = (a: Answer) => (JSON.parse(a.body) as { error: { code: string } }).error.code;
const json = { "Content-Type": "application/json" };
const small = JSON.stringify({ prompt: "x", steps: 1, width: 16, height: 16, seed: 1 });

test("hostile: Host names outside the allow-list get 403 (DNS rebinding); loopback names and --host-allow ones pass", { skip: NO_FIXTURES }, async () => {
  for (const host of ["evil.example", `evil.example:${port}`, "127.0.0.1.nip.io", "localhost.evil.example"]) {
    for (const path of ["/sdapi/v1/loras", "/health", "/"]) {
      const a = await raw("GET", path, { Host: host });
      assert.equal(a.status, 403, `${host} ${path}`);
      assert.equal(code(a), "host_not_allowed");
      assert.match(a.body, /--host-allow/);
    }
  }
  for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "LOCALHOST", "127.0.0.1"]) {
    assert.equal((await raw("GET", "/health", { Host: host })).status, 200, host);
  }
  const named = await startServer({ queue: new LocalQueue(pipe, 1, new FileStore()), host: "127.0.0.1", port: 0, hostAllow: ["gen.example"] });
  const any = await startServer({ queue: new LocalQueue(pipe, 1, new FileStore()), host: "127.0.0.1", port: 0, hostAllow: ["*"] });
  extra.push(named, any);
  assert.equal((await raw("GET", "/health", { Host: "gen.example" }, undefined, named.port)).status, 200);
  assert.equal((await raw("GET", "/health", { Host: "other.example" }, undefined, named.port)).status, 403);
  assert.equal((await raw("GET", "/health", { Host: "whatever.example" }, undefined, any.port)).status, 200);
});

test("hostile: cross-origin requests are refused before they queue or cancel anything; same-origin ones (the web page) pass", { skip: NO_FIXTURES }, async () => {
  const before = queue.counts();
  // what a page on another site can send without a preflight: text/plain or a form, with its Origin
  for (const [path, type] of [["/sdapi/v1/txt2img", "text/plain"], ["/v1/jobs", "text/plain;charset=UTF-8"], ["/sdapi/v1/interrupt", "application/x-www-form-urlencoded"], ["/v1/images/generations", "multipart/form-data; boundary=x"]]) {
    for (const origin of ["http://evil.example", `http://localhost:${port + 1}`, "null"]) {
      const a = await raw("POST", path, { Origin: origin, "Content-Type": type }, small);
      assert.equal(a.status, 403, `${origin} ${path}`);
      assert.equal(code(a), "origin_not_allowed");
      assert.equal(a.headers["access-control-allow-origin"], undefined);
    }
  }
  // even with a JSON type (it would need a preflight, which gets no CORS answer)
  assert.equal((await raw("POST", "/v1/jobs", { Origin: "http://evil.example", ...json }, small)).status, 403);
  assert.equal((await raw("DELETE", "/v1/jobs/abc", { Origin: "http://evil.example" })).status, 403);
  assert.equal((await raw("OPTIONS", "/v1/jobs", { Origin: "http://evil.example", "Access-Control-Request-Method": "POST" })).status, 403);
  assert.deepEqual(queue.counts(), before, "nothing was queued");
  // the server's own page: Origin equals the Host it was loaded from
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
    const a = await raw("POST", "/v1/jobs", { Host: host, Origin: `http://${host}`, ...json }, small);
    assert.equal(a.status, 202, `${host}: ${a.body}`);
  }
  assert.equal((await raw("POST", "/sdapi/v1/interrupt", { Origin: `http://127.0.0.1:${port}` })).status, 200);
});

test("hostile: bodies must be JSON (415 otherwise, with a hint); body-less POSTs pass", { skip: NO_FIXTURES }, async () => {
  for (const [path, type] of [["/sdapi/v1/txt2img", "text/plain"], ["/v1/images/generations", "application/x-www-form-urlencoded"], ["/v1/ssd-1b", undefined], ["/sdapi/v1/interrupt", "text/plain"], ["/sdapi/v1/options", "text/html"]] as [string, string | undefined][]) {
    const a = await raw("POST", path, type ? { "Content-Type": type } : {}, small);
    assert.equal(a.status, 415, `${path} ${type}`);
    assert.equal(code(a), "unsupported_media_type");
    assert.match(a.body, /Content-Type: application\/json/);
  }
  // a JSON route with no body at all is told the same
  assert.equal((await raw("POST", "/v1/jobs")).status, 415);
  assert.equal((await raw("POST", "/sdapi/v1/interrupt")).status, 200, "interrupt reads no body");
  assert.equal((await raw("POST", "/sdapi/v1/refresh-loras")).status, 200);
  assert.equal((await raw("POST", "/v1/jobs", { "Content-Type": "application/json; charset=utf-8" }, small)).status, 202);
  assert.equal((await raw("POST", "/v1/jobs", { "Content-Type": "application/vnd.api+json" }, small)).status, 202);
  // a big text/plain body is drained, not kept: the connection and server go on
  assert.equal((await raw("POST", "/sdapi/v1/txt2img", { "Content-Type": "text/plain" }, "x".repeat(8 << 20))).status, 415);
  assert.equal((await raw("GET", "/health")).status, 200);
});

test("hostile: CORS is off by default; --cors-allow-origins origins get the headers and their preflight answered", { skip: NO_FIXTURES }, async () => {
  const app = "http://app.example:8080";
  const cors = await startServer({ queue: new LocalQueue(pipe, 4, new FileStore()), host: "127.0.0.1", port: 0, corsAllowOrigins: [app + "/"] });
  extra.push(cors);
  const pre = await raw("OPTIONS", "/v1/images/generations", { Origin: app, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization" }, undefined, cors.port);
  assert.equal(pre.status, 204);
  assert.equal(pre.headers["access-control-allow-origin"], app);
  assert.match(String(pre.headers["access-control-allow-methods"]), /POST/);
  assert.equal(pre.headers["access-control-allow-headers"], "content-type, authorization");
  const get = await raw("GET", "/health", { Origin: app }, undefined, cors.port);
  assert.equal(get.status, 200);
  assert.equal(get.headers["access-control-allow-origin"], app);
  assert.match(String(get.headers["access-control-expose-headers"]), /X-Job-Id/);
  const post = await raw("POST", "/v1/jobs", { Origin: app, ...json }, small, cors.port);
  assert.equal(post.status, 202);
  assert.equal(post.headers["access-control-allow-origin"], app);
  const err = await raw("POST", "/v1/jobs", { Origin: app, ...json }, "{", cors.port);
  assert.equal(err.status, 400);
  assert.equal(err.headers["access-control-allow-origin"], app, "errors are readable by the listed page too");
  const other = await raw("GET", "/health", { Origin: "http://other.example" }, undefined, cors.port);
  assert.equal(other.status, 403);
  // without the flag: no CORS headers even for the same origin
  const plain = await raw("GET", "/health", { Origin: `http://127.0.0.1:${port}` });
  assert.equal(plain.status, 200);
  assert.equal(plain.headers["access-control-allow-origin"], undefined);
});

test("hostile: malformed %-escapes are 400s on every route with a parameter", { skip: NO_FIXTURES }, async () => {
  for (const [method, path] of [["GET", "/v1/jobs/%E0%A4%A"], ["DELETE", "/v1/jobs/%E0%A4%A"], ["GET", "/v1/jobs/%E0%A4%A/events"], ["GET", "/files/%E0%A4%A.png"], ["GET", "/v1/jobs/%"]]) {
    const a = await raw(method, path);
    assert.equal(a.status, 400, `${method} ${path}: ${a.body}`);
    assert.equal(code(a), "invalid_url");
  }
});

/** Times GET /health every 20 ms while `work` runs; returns the slowest answer in ms. */
async function slowestHealth(work: Promise<unknown>): Promise<number> {
  let done = false, worst = 0;
  const watcher = (async () => {
    while (!done) {
      const t0 = performance.now();
      assert.equal((await raw("GET", "/health")).status, 200);
      worst = Math.max(worst, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await work;
  done = true;
  await watcher;
  return worst;
}

test("hostile: unknown LoRA names against 300 files walk no folder; /health stays within 200 ms; a new file is still found", { skip: NO_FIXTURES, timeout: 120_000 }, async (t) => {
  assert.equal((await library.list()).length, LORA_FILES);
  const walks = library.walkCount;
  const t0 = performance.now();
  // three waves of 20 concurrent requests (the old code walked the folder, reading 300 headers, for each)
  const storm = (async () => {
    const all: Answer[] = [];
    for (let w = 0; w < 3; w++) all.push(...await Promise.all(Array.from({ length: 20 }, (_, i) => raw("POST", "/sdapi/v1/txt2img", json, JSON.stringify({ prompt: `x <lora:ghost-${w}-${i}:1>` })))));
    return all;
  })();
  const worst = await slowestHealth(storm);
  const answers = await storm;
  const ms = performance.now() - t0;
  t.diagnostic(`60 unknown-LoRA requests in ${ms.toFixed(0)} ms; slowest /health ${worst.toFixed(1)} ms; folder checks ${library.checkCount}, walks ${library.walkCount - walks}`);
  for (const a of answers) {
    assert.equal(a.status, 400);
    assert.equal(code(a), "unknown_lora");
  }
  assert.equal(library.walkCount, walks, "no folder walk for unknown names");
  assert.ok(worst < 200, `slowest /health ${worst.toFixed(1)} ms`);
  // a file dropped in later: its folder changed, so the next lookup walks once and finds it
  copyFileSync(fixture("lora", "peft", "lora.safetensors"), join(loraDir, "sub", "brand-new.safetensors"));
  const found = await raw("POST", "/v1/jobs", json, JSON.stringify({ prompt: "x <lora:brand-new:1>", steps: 1, width: 16, height: 16 }));
  assert.equal(found.status, 202, found.body);
  assert.equal(library.walkCount, walks + 1);
  await queue.get(JSON.parse(found.body).id)!.done;
  // an explicit refresh walks again
  assert.equal((await raw("POST", "/sdapi/v1/refresh-loras")).status, 200);
  assert.equal(library.walkCount, walks + 2);
});

test("hostile: LoRA weights are applied in steps of 0.05, so near-equal weights share one compiled UNet", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  assert.deepEqual(quantizeLoras([{ name: "a", weight: 0.8123 }, { name: "b", weight: 0.02 }, { name: "c", weight: -1.2251 }]), [{ name: "a", weight: 0.8 }, { name: "c", weight: -1.25 }]);
  const created = queue.pipelines.created;
  for (const w of [0.8, 0.81, 0.8123, 0.7751]) {
    const r = await raw("POST", "/v1/jobs", json, JSON.stringify({ prompt: "x", steps: 1, width: 16, height: 16, loras: [{ name: "style-3", weight: w }] }));
    assert.equal(r.status, 202, r.body);
    const job = queue.get(JSON.parse(r.body).id)!;
    assert.deepEqual(job.spec.loras, [{ name: "style-3", weight: 0.8 }], `weight ${w} applies as 0.8`);
    await job.done;
  }
  assert.equal(queue.pipelines.created, created + 1, "one compile for the four weights");
  const far = await raw("POST", "/v1/jobs", json, JSON.stringify({ prompt: "x <lora:style-3:11>" }));
  assert.equal(far.status, 400);
  assert.match(far.body, /outside \[-10, 10\]/);
});

test("library limits: sizes, steps and image counts past the limits are PipelineInputErrors naming the limit, at once", { skip: NO_FIXTURES }, async () => {
  const t0 = performance.now();
  const cases: [object, RegExp][] = [
    [{ width: 100000 }, /width 100000 is above the limit of 4096/],
    [{ height: 4104 }, /height 4104 is above the limit of 4096/],
    [{ numInferenceSteps: 1e9 }, /steps 1000000000 is above the limit of 1000/],
    [{ numImagesPerPrompt: 65 }, /images .* 65 is above the limit of 64/],
    [{ prompt: Array(9).fill("x"), numImagesPerPrompt: 8 }, /72 is above the limit of 64/],
  ];
  for (const [extraOpts, re] of cases) {
    await assert.rejects(pipe.generate({ prompt: "x", ...extraOpts }), (e: Error) => e instanceof PipelineInputError && re.test(e.message), JSON.stringify(extraOpts));
  }
  await assert.rejects(pipe.img2img({ prompt: "x", image: { width: 8192, height: 8, data: new Uint8Array(8192 * 8 * 3) } }), /width 8192 is above the limit of 4096/);
  assert.ok(performance.now() - t0 < 2000, "rejected before any work");
  assert.equal(PIPELINE_LIMITS.maxSide, 4096);
});

/** A PNG whose IHDR claims width x height (CRCs right), with a tiny IDAT: what a 1 KB image bomb looks like. */
function pngClaiming(width: number, height: number): Buffer {
  const good = encodePng({ width: 8, height: 8, data: new Uint8Array(8 * 8 * 3) });
  const b = Buffer.from(good);
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b.writeUInt32BE(crc32(b.subarray(12, 29)) >>> 0, 29);
  return b;
}

/** A small real JPEG whose SOF0 frame size is patched to width x height. */
function jpegClaiming(width: number, height: number): Buffer {
  const b = Buffer.from(jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(16 * 16 * 4, 128) }, 80).data);
  const sof = b.indexOf(Buffer.from([0xff, 0xc0]));
  b.writeUInt16BE(height, sof + 5);
  b.writeUInt16BE(width, sof + 7);
  return b;
}

test("hostile: image bombs as img2img init images are refused from their header (400 naming the limit); the event loop stays responsive", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const bombs: [string, Buffer][] = [["PNG 30000x30000", pngClaiming(30000, 30000)], ["PNG 3000x3000", pngClaiming(3000, 3000)], ["JPEG 4000x4000", jpegClaiming(4000, 4000)]];
  const rss0 = process.memoryUsage().rss;
  for (const [what, bytes] of bombs) {
    assert.ok(bytes.length < 2000, `${what} is small (${bytes.length} bytes)`);
    const body = JSON.stringify({ prompt: "x", steps: 1, width: 16, height: 16, seed: 1, init_images: [bytes.toString("base64")] });
    let answer: Answer | undefined;
    const t0 = performance.now();
    const worst = await slowestHealth(raw("POST", "/sdapi/v1/img2img", json, body).then((a) => { answer = a; }));
    const took = performance.now() - t0;
    assert.equal(answer!.status, 400, `${what}: ${answer!.body}`);
    assert.match(answer!.body, /limit of \d+ pixels|megapixels/, what);
    assert.ok(took < 1000, `${what}: answered in ${took.toFixed(0)} ms`);
    assert.ok(worst < 200, `${what}: /health took ${worst.toFixed(0)} ms`);
  }
  assert.ok(process.memoryUsage().rss - rss0 < 256 * 2 ** 20, "no large allocation");
});

test("hostile: a 10 KB prompt of BREAKs on a --prompt-syntax a1111 server is a quick 400 naming the chunk limit", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const a1111 = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { promptSyntax: "a1111" });
  const files = new FileStore();
  const s = await startServer({ queue: new LocalQueue(a1111, 2, files), files, host: "127.0.0.1", port: 0 });
  try {
    const body = JSON.stringify({ prompt: "BREAK ".repeat(1666), steps: 1, width: 16, height: 16, seed: 1 });
    const t0 = performance.now();
    const a = await raw("POST", "/sdapi/v1/txt2img", json, body, s.port);
    const took = performance.now() - t0;
    assert.equal(a.status, 400, a.body);
    assert.match(a.body, /chunks?/);
    assert.ok(took < 2000, `answered in ${took.toFixed(0)} ms`);
  } finally {
    await s.close();
    await a1111.release();
  }
});
