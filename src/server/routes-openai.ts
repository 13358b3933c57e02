/**
 * The OpenAI Images API: `POST /v1/images/generations` (edits, variations and models:
 * routes-openai-images.ts), so that the official `openai` client
 * (baseURL http://HOST:PORT/v1, any API key) works unchanged.
 *
 *   { prompt, n, size: "WxH", response_format: "b64_json" | "url",
 *     negative_prompt, seed, steps, guidance_scale, scheduler, loras: [{name, weight}], preset: "fast",
 *     controlnets: [{name, image, module, scale, start, end, threshold_a, threshold_b}], guess_mode }   (the last
 *     nine are extensions; <lora:NAME:WEIGHT> tags in the prompt work too, with --lora-dir; preset needs --fast,
 *     and explicit steps / guidance_scale / scheduler still win over it)
 *   -> { created, data: [{ b64_json } | { url }, ...], size, output_format: "png" }
 *
 * `model`, `quality`, `style`, `user`, `background`, `moderation` are accepted and ignored (one
 * model is loaded). Each item also carries the `seed` it was made from.
 */
import { invalid } from "./errors.js";
import { readJson, type Router } from "./http.js";
import type { AppState } from "./generation.js";
import { answerImages } from "./routes-openai-images.js";
import { DEFAULTS, Fields, checkScheduler, finishSpec, parseSize, readSeed } from "./validation.js";
import type { JobSpec } from "./job.js";
import { readLoras } from "./lora-request.js";
import { readOpenAiModel } from "./model-request.js";
import { readControlNetField } from "./controlnet-request.js";
import { FAST_JOB, readPreset } from "./fast-request.js";

export function openAiRoutes(router: Router<AppState>): void {
  router.on("POST", "/v1/images/generations", async (ctx) => {
    const { limits } = ctx.state;
    const f = Fields.of(await readJson(ctx.req, limits.maxBodyBytes));
    for (const name of ["model", "quality", "style", "user", "background", "moderation"]) f.string(name);
    const format = f.string("output_format");
    if (format !== undefined && format !== "png") throw invalid(`output_format ${JSON.stringify(format)} is not supported; only "png"`, "invalid_value", "output_format");
    if (f.bool("stream")) throw invalid("stream is not supported; follow GET /v1/jobs/{id}/events for progress", "invalid_value", "stream");
    const responseFormat = f.oneOf("response_format", ["b64_json", "url"] as const) ?? "b64_json";
    const n = f.int("n", 1, 1_000_000) ?? 1;
    const fast = readPreset(f, ctx.state);
    const spec: JobSpec = finishSpec({
      prompt: f.requiredString("prompt", limits.maxPromptChars),
      negativePrompt: f.string("negative_prompt", limits.maxPromptChars),
      steps: f.int("steps", 1, limits.maxSteps) ?? (fast ? FAST_JOB.steps : DEFAULTS.steps),
      guidanceScale: f.number("guidance_scale", 0, 100) ?? (fast ? FAST_JOB.guidanceScale : DEFAULTS.guidanceScale),
      seed: readSeed(f),
      ...parseSize(f, limits),
      scheduler: checkScheduler(f.string("scheduler"), "scheduler") ?? (fast ? FAST_JOB.scheduler : undefined),
      batchSize: n,
      iterations: 1,
      ...(fast ? { preset: "fast" as const } : {}),
    }, limits);
    readOpenAiModel(f, spec, ctx.state.queue.model());
    await readLoras(f, spec, ctx.state);
    await readControlNetField(f, spec, ctx.state);
    await answerImages(ctx, spec, responseFormat);
  });
}
