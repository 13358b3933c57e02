/**
 * Server-sent events for one job (`GET /v1/jobs/:id/events`): a `state` event with where the job
 * is now, then `queued`, `started`, `step` (with progress, time left and, unless ?preview=0, a
 * latent preview as a data: URL), and a final `done` or `failed`, after which the stream ends.
 * A finished job answers its final event at once. Comments keep idle connections open.
 */
import type { ServerResponse } from "node:http";
import type { Job, JobEvent } from "./job.js";

export interface SseOptions {
  /** Send latent previews with step events (default true). */
  previews?: boolean;
  /** Base URL for image links. */
  baseUrl: string;
  /** Heartbeat comment period (ms). */
  heartbeatMs?: number;
}

export function writeSse(res: ServerResponse, event: string, data: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

const dataUrl = (png: Buffer | undefined) => (png ? `data:image/png;base64,${png.toString("base64")}` : undefined);

/** The job as JSON (GET /v1/jobs/:id and the SSE `state` / `done` events). */
export function jobJson(job: Job, baseUrl: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: job.id,
    status: job.status,
    created: Math.floor(job.createdAt / 1000),
    started_at: job.startedAt ?? null,
    finished_at: job.finishedAt ?? null,
    seed: job.spec.seed,
    step: job.step,
    total_steps: job.totalSteps,
    progress: job.fraction,
    eta_seconds: Number(job.etaSeconds().toFixed(2)),
    params: specJson(job),
  };
  if (job.status === "done" && job.output) {
    out.result = {
      images: job.files.map((name) => ({ url: `${baseUrl}/files/${name}` })),
      seeds: job.output.seeds,
      infotexts: job.output.infotexts,
      width: job.output.width,
      height: job.output.height,
      sampler: job.output.sampler,
      model: job.output.model,
      seconds: Number(job.output.seconds.toFixed(3)),
    };
  }
  if (job.error) out.error = job.error.toJSON().error;
  return out;
}

/** The job's settings in the native request's field names (what "reuse these settings" needs). */
export function specJson(job: Job): Record<string, unknown> {
  const s = job.spec;
  return {
    prompt: s.prompt, negative_prompt: s.negativePrompt ?? "", steps: s.steps, guidance_scale: s.guidanceScale, seed: s.seed,
    width: job.output?.width ?? s.width ?? null, height: job.output?.height ?? s.height ?? null,
    scheduler: s.scheduler ?? job.output?.sampler ?? null, n: s.batchSize * s.iterations,
    strength: s.initImage ? s.strength : undefined,
    preset: s.preset,
    tiling: s.tiling || undefined,
    variation_seed: s.variationStrength ? s.variationSeed : undefined, variation_strength: s.variationStrength || undefined,
    // the native field is diffusers' count; an A1111 request's per-encoder skip has no native spelling
    clip_skip: typeof s.clipSkip === "number" ? s.clipSkip : undefined,
    pag_scale: s.pag && !s.pag.optional ? s.pag.scale : undefined, pag_adaptive_scale: s.pag?.adaptiveScale, pag_applied_layers: s.pag?.optional ? undefined : s.pag?.layers,
    freeu: s.freeu,
  };
}

export function streamJobEvents(res: ServerResponse, job: Job, opts: SseOptions): void {
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
    "X-Job-Id": job.id,
  });
  res.write("retry: 2000\n\n");
  const previews = opts.previews !== false;
  const finish = () => {
    unsubscribe();
    clearInterval(heartbeat);
    if (!res.writableEnded) res.end();
  };
  const send = (e: JobEvent) => {
    switch (e.type) {
      case "queued": writeSse(res, "queued", { id: job.id, position: e.position }); break;
      case "started": writeSse(res, "started", { id: job.id }); break;
      case "step":
        writeSse(res, "step", {
          id: job.id, step: e.step, total_steps: e.totalSteps, progress: e.step / e.totalSteps,
          eta_seconds: Number(e.etaSeconds.toFixed(2)), elapsed_seconds: Number((((Date.now() - (job.startedAt ?? Date.now())) / 1000)).toFixed(2)),
          preview: previews ? dataUrl(e.preview()) : undefined,
        });
        break;
      case "done": writeSse(res, "done", jobJson(job, opts.baseUrl)); finish(); break;
      case "failed": writeSse(res, "failed", jobJson(job, opts.baseUrl)); finish(); break;
    }
  };
  const unsubscribe = job.subscribe(send);
  const heartbeat = setInterval(() => { if (!res.writableEnded) res.write(": keep-alive\n\n"); }, opts.heartbeatMs ?? 15000);
  heartbeat.unref();
  res.on("close", finish);
  writeSse(res, "state", jobJson(job, opts.baseUrl));
  if (job.status === "done") send({ type: "done", output: job.output! });
  else if (job.status === "failed") send({ type: "failed", error: job.error! });
}
