/**
 * The server's own endpoints: the web page, health, stored images, and asynchronous jobs.
 *
 *   GET    /                    the web page
 *   GET    /health              { status: "ok", mode, model, queue: {running, queued, max}, limits, defaults, presets, uptime_seconds }
 *                                (503 { status: "unavailable", error } while the queue's Redis cannot be reached)
 *   GET    /files/<name>.png    an image made here (response_format "url", job results)
 *   POST   /v1/jobs             { prompt, negative_prompt, steps, guidance_scale, seed, width, height | size, scheduler, n,
 *                                 init_image (base64 PNG: img2img), strength, loras: [{name, weight}],
 *                                 controlnets: [{name, image, module: "none"|"canny", scale, start, end, threshold_a, threshold_b}], guess_mode,
 *                                 preset: "fast" (with --fast; explicit steps / guidance_scale / scheduler win),
 *                                 freeu: true | {b1, b2, s1, s2, variant: "diffusers"|"comfyui"|"comfyui-v2"},
 *                                 pag_scale, pag_adaptive_scale, pag_applied_layers (diffusers' PAG),
 *                                 prompt_syntax: "diffusers"|"a1111"|"comfyui" (default the server's --prompt-syntax) }
 *                                -> 202 { id, status, seed, events_url, status_url }
 *   GET    /v1/jobs/:id         status, progress and, when done, { result: { images: [{url}], seeds, infotexts, ... } }
 *   DELETE /v1/jobs/:id         cancels it (queued: never runs; running: stops after the current step)
 *   GET    /v1/jobs/:id/events  server-sent events, step by step (see sse.ts)
 *   GET    /openapi.json, /docs the routes of every API (openapi.ts)
 */
import { invalid, notFound } from "./errors.js";
import { PROMPT_SYNTAXES, type PromptSyntax } from "../pipelines/prompt-encoding.js";
import { baseUrl, readJson, sendBytes, sendJson, type Router } from "./http.js";
import { loraNote, type AppState } from "./generation.js";
import { readLoras } from "./lora-request.js";
import { readControlNetField } from "./controlnet-request.js";
import { FAST_JOB, PRESETS, readPreset } from "./fast-request.js";
import { readNativeClipSkip } from "./clip-skip-request.js";
import { readNativeModel } from "./model-request.js";
import { readNativeFreeU } from "./freeu-request.js";
import { readNativePag } from "./pag-request.js";
import { servedModels } from "./queue.js";
import { DEFAULTS, Fields, checkScheduler, checkStrength, finishSpec, parseSize, readInitImage, readSeed, readSides } from "./validation.js";
import { FILE_NAME } from "./file-store.js";
import { jobJson, streamJobEvents } from "./sse.js";
import { WEB_PAGE } from "./web-page.js";
import type { JobSpec } from "./job.js";
import { OPENAPI, docsPage } from "./openapi.js";

export function nativeRoutes(router: Router<AppState>): void {
  router.on("GET", "/", (ctx) => {
    sendBytes(ctx.res, 200, WEB_PAGE, "text/html; charset=utf-8", {
      "Cache-Control": "no-cache",
      "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
    });
  });

  router.on("GET", "/favicon.ico", (ctx) => { ctx.res.writeHead(204).end(); });

  router.on("GET", "/openapi.json", (ctx) => sendJson(ctx.res, 200, OPENAPI));
  router.on("GET", "/docs", (ctx) => {
    sendBytes(ctx.res, 200, docsPage(), "text/html; charset=utf-8", { "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'" });
  });

  router.on("GET", "/health", async (ctx) => {
    const { queue, limits } = ctx.state;
    const m = queue.model();
    // a load balancer takes this server out while its queue backend is gone
    const down = await queue.unavailable();
    sendJson(ctx.res, down ? 503 : 200, {
      status: down ? "unavailable" : "ok",
      ...(down ? { error: down } : {}),
      mode: queue.mode,
      model: { name: m.name, source: m.source ?? null, default_size: m.defaultSize ?? null },
      // every model jobs may ask for (one loaded at a time)
      models: servedModels(m).map((s) => s.name),
      queue: { ...queue.counts(), max: queue.maxQueue },
      limits: { max_side: limits.maxSide, max_images: limits.maxImages, max_prompt_chars: limits.maxPromptChars, max_steps: limits.maxSteps },
      defaults: { steps: DEFAULTS.steps, guidance_scale: DEFAULTS.guidanceScale, strength: DEFAULTS.strength },
      // what the `preset` field may name here (the web page shows its Fast checkbox for "fast")
      presets: ctx.state.fast ? [...PRESETS] : [],
      uptime_seconds: Math.round((Date.now() - ctx.state.startedAt) / 1000),
    });
  });

  router.on("GET", "/files/:name", (ctx) => {
    const name = ctx.params.name;
    const file = FILE_NAME.test(name) ? ctx.state.files.get(name) : undefined;
    if (!file) throw notFound(`no file ${JSON.stringify(name)} (files are kept for an hour)`);
    sendBytes(ctx.res, 200, file.data, file.type, { "Cache-Control": "private, max-age=3600" });
  });

  router.on("POST", "/v1/jobs", async (ctx) => {
    const { limits, queue } = ctx.state;
    const f = Fields.of(await readJson(ctx.req, limits.maxBodyBytes));
    const fast = readPreset(f, ctx.state);
    const steps = f.int("steps", 1, limits.maxSteps) ?? (fast ? FAST_JOB.steps : DEFAULTS.steps);
    const spec: JobSpec = {
      prompt: f.requiredString("prompt", limits.maxPromptChars),
      negativePrompt: f.string("negative_prompt", limits.maxPromptChars),
      steps,
      guidanceScale: f.number("guidance_scale", 0, 100) ?? (fast ? FAST_JOB.guidanceScale : DEFAULTS.guidanceScale),
      seed: readSeed(f),
      scheduler: checkScheduler(f.string("scheduler"), "scheduler") ?? (fast ? FAST_JOB.scheduler : undefined),
      batchSize: f.int("n", 1, 1_000_000) ?? 1,
      iterations: 1,
      ...(fast ? { preset: "fast" as const } : {}),
    };
    const init = f.string("init_image");
    if (init !== undefined) {
      spec.initImage = readInitImage(init, limits, "init_image").base64;
      spec.strength = f.number("strength", 0, 1) ?? DEFAULTS.strength;
      checkStrength(spec.strength, steps, "strength");
    } else {
      Object.assign(spec, f.has("size") ? parseSize(f, limits) : readSides(f, limits));
    }
    readNativeModel(f, spec, queue.model());
    readNativeClipSkip(f, spec, queue.model());
    // A1111's tiling and variation seeds, in the native API's words
    if (f.bool("tiling")) spec.tiling = true;
    readNativeFreeU(f, spec);
    readNativePag(f, spec);
    // the prompts' syntax of this job (absent: the server's --prompt-syntax)
    const syntax = f.string("prompt_syntax", 20);
    if (syntax !== undefined) {
      if (!(PROMPT_SYNTAXES as readonly string[]).includes(syntax)) throw invalid(`prompt_syntax must be one of ${PROMPT_SYNTAXES.join(", ")}, got ${JSON.stringify(syntax)}`, "invalid_value", "prompt_syntax");
      spec.promptSyntax = syntax as PromptSyntax;
    }
    const variationStrength = f.number("variation_strength", 0, 1) ?? 0;
    if (variationStrength > 0) Object.assign(spec, { variationSeed: readSeed(f, "variation_seed"), variationStrength });
    await readLoras(f, spec, ctx.state);
    await readControlNetField(f, spec, ctx.state);
    finishSpec(spec, limits);
    const job = await queue.submit(spec);
    ctx.state.log(`job ${job.id}: POST /v1/jobs ${spec.initImage ? "img2img" : "txt2img"} seed ${spec.seed}, ${spec.steps} steps, ${spec.batchSize} image(s)${loraNote(spec)}`);
    sendJson(ctx.res, 202, { id: job.id, status: job.status, seed: spec.seed, status_url: `/v1/jobs/${job.id}`, events_url: `/v1/jobs/${job.id}/events` },
      { "X-Job-Id": job.id, "X-Seed": String(spec.seed), Location: `/v1/jobs/${job.id}` });
  });

  const findJob = (state: AppState, id: string) => {
    const job = state.queue.get(id);
    if (!job) throw notFound(`no job ${JSON.stringify(id)} (finished jobs are kept for an hour)`);
    return job;
  };

  router.on("GET", "/v1/jobs/:id", (ctx) => {
    sendJson(ctx.res, 200, jobJson(findJob(ctx.state, ctx.params.id), baseUrl(ctx.req)));
  });

  router.on("DELETE", "/v1/jobs/:id", (ctx) => {
    const job = findJob(ctx.state, ctx.params.id);
    job.cancel("cancelled");
    sendJson(ctx.res, 200, { id: job.id, status: job.status, cancelled: !!job.cancelReason });
  });

  router.on("GET", "/v1/jobs/:id/events", (ctx) => {
    const job = findJob(ctx.state, ctx.params.id);
    streamJobEvents(ctx.res, job, { baseUrl: baseUrl(ctx.req), previews: ctx.url.searchParams.get("preview") !== "0" });
  });
}
