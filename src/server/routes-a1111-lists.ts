/**
 * The A1111 API's lists and settings, as A1111 shapes them (clients read `name`, `title`,
 * `model_name`): sd-models, samplers, schedulers, upscalers, latent-upscale-modes, sd-vae, sd-modules,
 * embeddings, loras (+ refresh-loras), prompt-styles, cmd-flags, and what clients probe (face-restorers,
 * hypernetworks, scripts, realesrgan-models, memory, refresh-vae, refresh-checkpoints, refresh-embeddings); GET/POST options (a round trip for the keys of
 * a1111-settings.ts); POST png-info; /internal/ping.
 */
import { freemem, totalmem } from "node:os";
import { A1111_SAMPLERS, WORKING_SCHEDULES } from "../schedulers/index.js";
import { resolveSdVae } from "./vae-request.js";
import { a1111Embeddings } from "./embeddings-listing.js";
import { readJson, sendJson, type Router } from "./http.js";
import type { AppState } from "./generation.js";
import { Fields } from "./validation.js";
import { invalid } from "./errors.js";
import { checkSettings, defaultOptions } from "./a1111-settings.js";
import { servedModels } from "./queue.js";
import { LATENT_UPSCALE_MODES } from "./upscalers.js";
import { readPngInfo } from "./png-info.js";

// A1111's second-order samplers (two model evaluations per step) say so in their options
const SECOND_ORDER = new Set(["Heun", "DPM2", "DPM2 a"]);

/** What POST options set (sd_model_checkpoint is not kept here: the queue's default model is it). */
const stored = (state: AppState): Record<string, unknown> => (state.a1111Options ??= {});

/**
 * Checked settings made the server's (POST options, or a request's override_settings with
 * override_settings_restore_afterwards false). A1111 loads the checkpoint at once; here the next jobs
 * get it, loaded when the first one runs.
 */
export function keepSettings(state: AppState, checked: Record<string, unknown>): void {
  const { sd_model_checkpoint: model, ...rest } = checked;
  if (typeof model === "string") state.queue.setDefaultModel(model);
  Object.assign(stored(state), rest);
}

export function a1111ListRoutes(router: Router<AppState>): void {
  router.on("GET", "/sdapi/v1/sd-models", (ctx) => {
    sendJson(ctx.res, 200, servedModels(ctx.state.queue.model()).map((m) => ({ title: m.name, model_name: m.name, hash: null, sha256: null, filename: m.source, config: null })));
  });

  router.on("GET", "/sdapi/v1/samplers", (ctx) => {
    sendJson(ctx.res, 200, A1111_SAMPLERS.map((s) => ({
      name: s.name, aliases: [...s.aliases], options: SECOND_ORDER.has(s.name) ? { second_order: "True" } : {},
    })));
  });

  router.on("GET", "/sdapi/v1/schedulers", (ctx) => {
    sendJson(ctx.res, 200, WORKING_SCHEDULES.map((s) => ({
      name: s.name, label: s.label, aliases: s.aliases ? [...s.aliases] : null, default_rho: s.default_rho, need_inner_model: s.need_inner_model,
    })));
  });

  router.on("GET", "/sdapi/v1/latent-upscale-modes", (ctx) => sendJson(ctx.res, 200, LATENT_UPSCALE_MODES.map((name) => ({ name }))));
  // the files of --vae-dir (none without one: then only the model's own VAE, as an A1111 with no VAE files)
  router.on("GET", "/sdapi/v1/sd-vae", async (ctx) => {
    sendJson(ctx.res, 200, ((await ctx.state.vaes?.list()) ?? []).map((v) => ({ model_name: v.name, filename: v.path })));
  });
  router.on("GET", "/sdapi/v1/sd-modules", (ctx) => sendJson(ctx.res, 200, []));
  router.on("GET", "/sdapi/v1/embeddings", (ctx) => sendJson(ctx.res, 200, a1111Embeddings(ctx.state.embeddings)));
  router.on("GET", "/sdapi/v1/cmd-flags", (ctx) => sendJson(ctx.res, 200, ctx.state.cmdFlags ?? { api: true }));
  router.on("GET", "/internal/ping", (ctx) => sendJson(ctx.res, 200, {}));

  router.on("GET", "/sdapi/v1/loras", async (ctx) => {
    const entries = (await ctx.state.loras?.list()) ?? [];
    sendJson(ctx.res, 200, entries.map((e) => ({ name: e.name, alias: e.name, path: e.path, metadata: e.metadata })));
  });

  // A1111's shape: name, prompt, negative_prompt for each style of the file, in file order
  router.on("GET", "/sdapi/v1/prompt-styles", (ctx) => {
    sendJson(ctx.res, 200, (ctx.state.styles?.styles ?? []).map((s) => ({ name: s.name, prompt: s.prompt, negative_prompt: s.negative_prompt })));
  });

  // what clients probe at start: empty where this server has nothing of the kind (no face restorers, hypernetworks or selectable scripts)
  router.on("GET", "/sdapi/v1/face-restorers", (ctx) => sendJson(ctx.res, 200, []));
  router.on("GET", "/sdapi/v1/hypernetworks", (ctx) => sendJson(ctx.res, 200, []));
  router.on("GET", "/sdapi/v1/scripts", (ctx) => sendJson(ctx.res, 200, { txt2img: ["controlnet"], img2img: ["controlnet"] }));
  router.on("GET", "/sdapi/v1/realesrgan-models", async (ctx) => {
    const models = ((await ctx.state.upscalers?.list()) ?? []).filter((u) => u.path);
    sendJson(ctx.res, 200, models.map((u) => ({ name: u.name, path: u.path, scale: u.scale })));
  });
  router.on("GET", "/sdapi/v1/memory", (ctx) => {
    const total = totalmem(), free = freemem();
    // onnxruntime reports no GPU memory figures: A1111 answers an error there when it has no CUDA
    sendJson(ctx.res, 200, { ram: { free, used: total - free, total }, cuda: { error: "no CUDA memory figures (onnxruntime-node)" } });
  });
  // the --vae-dir listing is read on every call; the served checkpoints, and the embeddings compiled into their text encoders, are fixed at start
  router.on("POST", "/sdapi/v1/refresh-vae", (ctx) => sendJson(ctx.res, 200, null));
  router.on("POST", "/sdapi/v1/refresh-checkpoints", (ctx) => sendJson(ctx.res, 200, null));
  router.on("POST", "/sdapi/v1/refresh-embeddings", (ctx) => sendJson(ctx.res, 200, null));

  router.on("POST", "/sdapi/v1/refresh-loras", async (ctx) => {
    await ctx.state.loras?.refresh();
    ctx.state.log(`refresh-loras: ${ctx.state.loras ? `${(await ctx.state.loras.list()).length} LoRA(s) in ${ctx.state.loras.dir}` : "no --lora-dir"}`);
    sendJson(ctx.res, 200, null);
  });

  router.on("GET", "/sdapi/v1/options", (ctx) => {
    const m = ctx.state.queue.model();
    sendJson(ctx.res, 200, { ...defaultOptions(m), ...stored(ctx.state), sd_model_checkpoint: m.name });
  });

  // Open WebUI posts back the whole GET answer with sd_model_checkpoint changed; SillyTavern only that key
  router.on("POST", "/sdapi/v1/options", async (ctx) => {
    const body = await readJson(ctx.req, ctx.state.limits.maxBodyBytes);
    if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalid("the request body must be a JSON object of settings", "invalid_json");
    const checked = checkSettings(body, ctx.state.queue.model(), "");
    if (checked.sd_vae !== undefined) await resolveSdVae(checked.sd_vae, ctx.state, "sd_vae");
    keepSettings(ctx.state, checked);
    sendJson(ctx.res, 200, null);
  });

  router.on("POST", "/sdapi/v1/png-info", async (ctx) => {
    const f = Fields.of(await readJson(ctx.req, ctx.state.limits.maxBodyBytes));
    const image = f.string("image");
    if (image === undefined) throw invalid("image (a base64 PNG) is required", "missing_field", "image");
    sendJson(ctx.res, 200, readPngInfo(image, ctx.state.limits));
  });
}
