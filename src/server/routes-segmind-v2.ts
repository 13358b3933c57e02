/**
 * Segmind's asynchronous API (v2, "submit + poll", as its SSD-1B page and docs.segmind.com's Async
 * Inference describe it) for the same two models as routes-segmind.ts:
 *
 *   POST /v2/ssd-1b, /v2/ssd-img2img   the v1 fields (any number of samples)
 *     -> { request_id, status: "QUEUED", poll_url, status_url, response_url }
 *   GET  /v2/requests/:id/status       { status: QUEUED | PROCESSING | COMPLETED | FAILED, request_id, metrics, error? }
 *   GET  /v2/requests/:id              the status and, once COMPLETED, output (the first image's URL) and
 *                                      outputs (every image's URL), seeds, infotexts; with base64: true
 *                                      the images as base64 PNGs instead of URLs
 *   GET  /v1/requests/:id              the same (Segmind's v1 poll_url)
 *
 * Results are kept as long as the queue keeps finished jobs (an hour).
 */
import { notFound } from "./errors.js";
import { baseUrl, sendJson, type Ctx, type Router } from "./http.js";
import { loraNote, type AppState } from "./generation.js";
import type { Job, JobSpec } from "./job.js";
import { readSsd1b, readSsdImg2img } from "./routes-segmind.js";

const STATUS = { queued: "QUEUED", running: "PROCESSING", done: "COMPLETED", failed: "FAILED" } as const;

/** Jobs submitted through v2 with base64: true (their result carries the images themselves). */
const base64Jobs = new Set<string>();

function urls(base: string, id: string) {
  return { status_url: `${base}/v2/requests/${id}/status`, response_url: `${base}/v2/requests/${id}` };
}

async function submit(ctx: Ctx<AppState>, read: (ctx: Ctx<AppState>, binary: boolean) => Promise<{ spec: JobSpec; base64: boolean }>): Promise<void> {
  const { spec, base64 } = await read(ctx, false);
  const job = await ctx.state.queue.submit(spec);
  if (base64) base64Jobs.add(job.id);
  // forget the flag with the job (the queue drops finished jobs after an hour)
  job.done.finally(() => setTimeout(() => base64Jobs.delete(job.id), 3_600_000).unref()).catch(() => {});
  ctx.state.log(`job ${job.id}: ${ctx.req.method} ${ctx.url.pathname} seed ${spec.seed}, ${spec.steps} steps, ${spec.batchSize} image(s)${loraNote(spec)}`);
  const base = baseUrl(ctx.req);
  sendJson(ctx.res, 200, { request_id: job.id, status: "QUEUED", poll_url: `${base}/v1/requests/${job.id}`, ...urls(base, job.id) }, { "X-Job-Id": job.id, "X-Seed": String(spec.seed) });
}

function findJob(ctx: Ctx<AppState>): Job {
  const job = ctx.state.queue.get(ctx.params.id);
  if (!job) throw notFound(`no request ${JSON.stringify(ctx.params.id)} (results are kept for an hour)`);
  return job;
}

/** The lightweight status: no output. */
function statusJson(job: Job, base: string): Record<string, unknown> {
  return {
    status: STATUS[job.status], request_id: job.id, ...urls(base, job.id),
    metrics: job.output ? { inference_time: Number(job.output.seconds.toFixed(3)) } : {},
    ...(job.error ? { error: job.error.message } : {}),
  };
}

function resultJson(job: Job, ctx: Ctx<AppState>): Record<string, unknown> {
  const base = baseUrl(ctx.req);
  const out = statusJson(job, base);
  if (job.status !== "done" || !job.output) return out;
  // the PNGs live in the file store (the job's output may have let go of them)
  const images = base64Jobs.has(job.id) ? job.files.map((name) => ctx.state.files.get(name)?.data.toString("base64") ?? null) : job.files.map((name) => `${base}/files/${name}`);
  return { ...out, output: images[0], outputs: images, seeds: job.output.seeds, infotexts: job.output.infotexts };
}

export function segmindV2Routes(router: Router<AppState>): void {
  router.on("POST", "/v2/ssd-1b", (ctx) => submit(ctx, readSsd1b));
  router.on("POST", "/v2/ssd-img2img", (ctx) => submit(ctx, readSsdImg2img));
  router.on("GET", "/v2/requests/:id/status", (ctx) => sendJson(ctx.res, 200, statusJson(findJob(ctx), baseUrl(ctx.req))));
  router.on("GET", "/v2/requests/:id", (ctx) => sendJson(ctx.res, 200, resultJson(findJob(ctx), ctx)));
  router.on("GET", "/v1/requests/:id", (ctx) => sendJson(ctx.res, 200, resultJson(findJob(ctx), ctx)));
}
