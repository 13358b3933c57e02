import { parseArgs } from "node:util";
import { VaeLibrary, VaeLibraryError } from "../../server/vae-library.js";
import { StableDiffusionXLPipeline } from "../../pipelines/sdxl/index.js";
import { PipelineInputError } from "../../pipelines/errors.js";
import { startServer } from "../../server/app.js";
import { FileStore } from "../../server/file-store.js";
import { LocalQueue, type LoadedModel } from "../../server/local-queue.js";
import { buildCatalog, ModelCatalogError, modelsInFolder, type ServedModel } from "../../server/model-catalog.js";
import { RedisQueue } from "../../server/redis-queue.js";
import type { JobQueue } from "../../server/queue.js";
import { LoraLibrary, LoraLibraryError } from "../../server/lora-library.js";
import { UpscalerLibrary, UpscalerLibraryError } from "../../server/upscaler-library.js";
import { UsageError, asUsageError } from "../usage-error.js";
import { parseDevice, resolveDevice, type DeviceChoice } from "../../runtime/device.js";
import { AccessPolicy } from "../../server/access.js";
import { loadStylesFile, StylesFileError, type PromptStyles } from "../../server/prompt-styles.js";
import { embeddingsOf, intFlag, MODEL_LOAD_OPTIONS, parseModelLoad } from "./generate.js";
import { embeddingTokenOf } from "../../loaders/textual-inversion.js";
import type { EmbeddingsListing } from "../../server/embeddings-listing.js";
import { FAST_HELP, FAST_OPTIONS, parseFast, resolveFastLora, withFastTaesd } from "../fast-flags.js";
import { CONTROLNET_DIR_HELP, CONTROLNET_DIR_OPTIONS, parseControlNetDir } from "../controlnet-dir-flags.js";

export const serveUsage = `ssd1b serve [--model M ...] [--models-dir DIR] [--host H] [--port P] [--max-queue N] [--output-dir DIR] [--lora-dir DIR] [--controlnet-dir DIR] [--upscaler-dir DIR] [--vae-dir DIR] [--queue redis://HOST:PORT]
            [--styles-file FILE.csv] [--host-allow NAMES] [--cors-allow-origins ORIGINS] [--fast [--fast-lora L]]
  HTTP server with one model loaded at a time; jobs run one at a time in arrival order. APIs: OpenAI
  POST /v1/images/generations, AUTOMATIC1111 /sdapi/v1/* (txt2img, img2img, progress, interrupt,
  skip, options, ...), ComfyUI (POST /prompt with an API-format graph, /history, /view, /upload/image,
  /object_info, the /ws WebSocket), Segmind POST /v1/ssd-1b, jobs with server-sent events
  /v1/jobs/:id/events, GET /health, a web page at /; every route in GET /openapi.json and /docs.
  --model M            diffusers folder, single .safetensors file or Hugging Face repo id (default
                       segmind/SSD-1B); repeat to serve several: the first is loaded at start, a job
                       for another (A1111's sd_model_checkpoint, the native and OpenAI "model") releases
                       the loaded one and loads its own, as A1111 swaps checkpoints
  --models-dir DIR     serve the checkpoints in DIR too (*.safetensors and diffusers folders, sub-folders
                       too: A1111's models/Stable-diffusion), by file or folder name
  --host H             address to listen on (default 127.0.0.1)
  --port P             port (default 7860; 0 picks a free one)
  --host-allow A,B     Host header names accepted besides localhost, 127.0.0.1, [::1] and --host (with a
                       wildcard --host, the machine's addresses); others get 403 (DNS rebinding). "*": any
  --cors-allow-origins O,P  origins (https://app.example:8080, "*": any) whose pages may call the API
                       (CORS headers, preflight answered); other cross-origin requests get 403
  --max-queue N        jobs that may wait; more get 429 with Retry-After (default 16)
  --output-dir DIR     also write every image made here to DIR (never pruned) and read the newest back
                       at start, so the web page's history (GET /v1/history) outlives a restart
  --variant fp16|fp32  which weight files to load (default fp32 when present, else fp16)
  --lora FILE[:W], --vae DIR|FILE, --config DIR, --vae-precision P, --unet-precision P, --unet-weights W,
                       --text-encoder-weights W, --vae-tiling, --vae-tile-size PX,
                       --prompt-syntax diffusers|a1111|comfyui, --embedding FILE: as for generate
  --embeddings-dir DIR every SDXL textual inversion under DIR, in every prompt, as A1111's embeddings folder
                       (the name in A1111 prompts, embedding:NAME in ComfyUI's; GET /sdapi/v1/embeddings lists them)
  --taesd DIR|FILE     a TAESD (madebyollin/taesdxl): progress previews become its full-size decode (made
                       in the background) instead of the latent-to-RGB projection
  --lora-dir DIR       LoRA files (*.safetensors, sub-folders too) that requests may apply by name (the
                       file name without extension): A1111 <lora:NAME:WEIGHT> in prompts, or a
                       "loras": [{"name": N, "weight": W}] field; GET /sdapi/v1/loras lists them.
                       They stack on the --lora ones. With --queue, give the workers the same folder
  --upscaler-dir DIR   ESRGAN-family models (RRDBNet *.safetensors, sub-folders too) for A1111's
                       GET /sdapi/v1/upscalers and POST /sdapi/v1/extra-single-image, by file name; the
                       model-free None, Lanczos and Nearest are always there. Upscales run in this process
  --vae-dir DIR        VAE files (*.safetensors in LDM or diffusers names, sub-folders too: A1111's
                       models/VAE, e.g. sdxl_vae.safetensors) that A1111's sd_vae (override_settings, or
                       POST /sdapi/v1/options) and ComfyUI's VAELoader name by file name; GET
                       /sdapi/v1/sd-vae lists them. A job's VAE encodes and decodes in place of the model's.
                       With --queue the workers open the same paths
  --styles-file FILE.csv  A1111's styles.csv (name,prompt,negative_prompt): GET /sdapi/v1/prompt-styles
                       lists them; a txt2img / img2img "styles": [NAME, ...] applies them to the prompts
                       as A1111 does (a style's {prompt} is where the prompt goes, else ", " joins them);
                       an unknown name is a 400. Read once at start (at most 2 MiB, 5000 styles); applied
                       here, so --queue workers need no copy
  --lora-cache N       LoRA sets kept compiled between jobs (default 1; each holds its own UNet weights)
${CONTROLNET_DIR_HELP}
${FAST_HELP}
                       (with --queue: --fast here and on the workers, --fast-lora on the workers)
  --device cpu|webgpu|auto  onnxruntime execution provider (default cpu; auto: webgpu on a hardware
                       GPU with a Vulkan driver, else cpu)
  --queue URL          redis://[:password@]host:port[/db][?name=queue]: enqueue into Redis for
                       \`ssd1b worker\` processes (BullMQ) instead of running jobs here; the model is
                       then not loaded here (--model only names it until a worker reports in)`;

export function parseVariant(v: string | undefined): "fp16" | "fp32" | undefined {
  if (v !== undefined && v !== "fp16" && v !== "fp32") throw new UsageError(`--variant must be fp16 or fp32, got "${v}"`);
  return v;
}

/** A comma-separated flag as a list. */
const list = (v: string | undefined): string[] | undefined => v?.split(",").map((x) => x.trim()).filter(Boolean);

/** Resolves on SIGINT / SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (s: string) => { process.off("SIGINT", on); process.off("SIGTERM", on); resolve(s); };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** The --lora-dir and --lora-cache flags of serve and worker. */
export const LORA_DIR_OPTIONS = {
  "lora-dir": { type: "string" },
  "lora-cache": { type: "string", default: "1" },
} as const;

/** --lora-dir opened (a usage error when it is no folder) and --lora-cache checked. */
export function parseLoraDir(values: { "lora-dir"?: string; "lora-cache"?: string }): { loras?: LoraLibrary; loraCache: number } {
  const loraCache = intFlag(values, "lora-cache", 0)!;
  const dir = values["lora-dir"];
  if (dir === undefined) return { loraCache };
  return { loras: asUsageError(() => new LoraLibrary(dir), LoraLibraryError), loraCache };
}

export async function serveCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      model: { type: "string", multiple: true },
      "models-dir": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "7860" },
      "max-queue": { type: "string", default: "16" },
      "output-dir": { type: "string" },
      variant: { type: "string" },
      ...MODEL_LOAD_OPTIONS,
      ...LORA_DIR_OPTIONS,
      ...CONTROLNET_DIR_OPTIONS,
      ...FAST_OPTIONS,
      device: { type: "string", default: "cpu" },
      queue: { type: "string" },
      "host-allow": { type: "string" },
      "cors-allow-origins": { type: "string" },
      "upscaler-dir": { type: "string" },
      "vae-dir": { type: "string" },
      "styles-file": { type: "string" },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const port = intFlag(values, "port", 0)!;
  if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
  const maxQueue = intFlag(values, "max-queue", 0)!;
  const variant = parseVariant(values.variant);
  const deviceChoice = parseDevice(values.device);
  if (!deviceChoice) throw new UsageError(`--device must be cpu, webgpu or auto, got "${values.device}"`);
  if (values.queue !== undefined && !/^rediss?:\/\//.test(values.queue)) throw new UsageError(`--queue must be a redis:// URL, got "${values.queue}"`);
  const fast = parseFast(values);
  if (values.queue !== undefined && values["fast-lora"] !== undefined) throw new UsageError("with --queue the workers run the jobs: give them --fast-lora (serve takes --fast only)");
  const corsAllowOrigins = list(values["cors-allow-origins"]);
  try {
    new AccessPolicy({ corsAllowOrigins }); // a bad origin is a usage error before the model loads
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
  const catalog = servedCatalog(values.model, values["models-dir"]);
  if (values.queue !== undefined && catalog.length > 1) throw new UsageError("with --queue the workers run the jobs, each on its own --model: give serve one --model (or none)");
  if (catalog.length > 1) log(`models: ${catalog.map((m) => m.name).join(", ")} (one loaded at a time)`);
  // small and checked first: a bad file is a usage error before any library, model or queue opens
  let styles: PromptStyles | undefined;
  if (values["styles-file"] !== undefined) {
    styles = asUsageError(() => loadStylesFile(values["styles-file"]!), StylesFileError);
    log(`styles: ${styles.styles.length} in ${values["styles-file"]}`);
  }
  const { loras, loraCache } = parseLoraDir(values);
  if (loras) log(`LoRAs: ${(await loras.list()).length} in ${loras.dir}`);
  const { controlnets, controlnetCache } = parseControlNetDir(values);
  if (controlnets) log(`ControlNets: ${(await controlnets.names()).length} in ${controlnets.dir}`);
  let upscalers: UpscalerLibrary | undefined;
  if (values["upscaler-dir"] !== undefined) {
    // upscales run in this process, on the same device as the model
    const device = await resolveDevice(deviceChoice, log);
    upscalers = asUsageError(() => new UpscalerLibrary(values["upscaler-dir"], { device }), UpscalerLibraryError);
    log(`upscalers: ${(await upscalers.list()).length - 3} model(s) in ${upscalers.dir}`);
  }
  let vaes: VaeLibrary | undefined;
  if (values["vae-dir"] !== undefined) {
    vaes = asUsageError(() => new VaeLibrary(values["vae-dir"]!), VaeLibraryError);
    log(`VAEs: ${(await vaes.list()).length} in ${vaes.dir}`);
  }
  // what /sdapi/v1/embeddings and ComfyUI's /embeddings list: the --embedding files and --embeddings-dir's (which the runners load)
  const embeddings = embeddingsListing(values);
  if (embeddings.folder) log(`embeddings: ${embeddings.folder.loaded.length} in ${embeddings.folder.dir}${embeddings.folder.skipped.length ? ` (${embeddings.folder.skipped.length} skipped)` : ""}`);
  // the images are served from memory (an hour, 512 MiB); --output-dir keeps them on disk too
  const files = new FileStore(undefined, undefined, { dir: values["output-dir"], log });
  let queue: JobQueue;
  let local: LocalQueue | undefined;
  if (values.queue) {
    const name = catalog[0].name;
    queue = await RedisQueue.connect(values.queue, { maxQueue, files, model: name, log });
    log(`queue: ${values.queue} (BullMQ; run \`ssd1b worker --queue ${values.queue} --model M${fast ? " --fast" : ""}\` to process jobs)`);
  } else {
    const load = withFastTaesd(parseModelLoad(values), fast);
    const device = await resolveDevice(deviceChoice, log);
    // every served model loads with the same flags; --fast finds each one's LCM-LoRA
    const loadModel = async (model: ServedModel): Promise<LoadedModel> => {
      const t0 = performance.now();
      let loaded: StableDiffusionXLPipeline;
      try {
        loaded = await StableDiffusionXLPipeline.fromPretrained(model.source, { ...load, variant, session: { device }, onWarning: (m) => log(`warning: ${m}`) });
      } catch (e) {
        if (e instanceof PipelineInputError) throw new UsageError(e.message);
        throw e;
      }
      log(`loaded ${loaded.model.dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      if (!fast) return { pipe: loaded };
      try {
        return { pipe: loaded, fastLora: await resolveFastLora(values, loaded, load.hub, log) };
      } catch (e) {
        // the first model is checked at start; another one without an LCM-LoRA still serves, minus fast jobs
        if (model !== catalog[0]) {
          log(`${model.name}: no fast preset (${(e as Error).message})`);
          return { pipe: loaded };
        }
        await loaded.release();
        throw e;
      }
    };
    const first = await loadModel(catalog[0]);
    const switching = catalog.length > 1 ? { models: catalog, load: loadModel } : undefined;
    local = new LocalQueue(first.pipe, maxQueue, files, { loras, loraCache, log, fastLora: first.fastLora, controlnets, controlnetCache, switching });
    queue = local;
  }
  let server;
  try {
    server = await startServer({ queue, files, host: values.host, port, log, loras, hostAllow: list(values["host-allow"]), corsAllowOrigins, fast, upscalers, vaes, controlnets, styles, embeddings });
  } catch (e) {
    await queue.close();
    await local?.pipe.release();
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EADDRINUSE") throw new UsageError(`port ${port} on ${values.host} is in use (pick another with --port, or 0 for a free one)`);
    throw e;
  }
  process.stdout.write(`listening on ${server.url}\n`);
  const signal = await untilSignal();
  log(`${signal}: shutting down`);
  await server.close();
  await upscalers?.release();
  await local?.pipe.release();
}

/** The embeddings the runners load, as the server lists them. */
function embeddingsListing(values: Parameters<typeof embeddingsOf>[0]): EmbeddingsListing {
  const { textualInversions = [], embeddingsFolder } = embeddingsOf(values);
  const loaded = textualInversions.map(({ file }) => embeddingsFolder?.loaded.find((e) => e.file === file) ?? { token: embeddingTokenOf(file), file, vectors: undefined });
  return { loaded, skipped: embeddingsFolder?.skipped ?? [], folder: embeddingsFolder };
}

/** --model (repeated; default segmind/SSD-1B) and the checkpoints of --models-dir, as one catalog. */
function servedCatalog(models: string[] | undefined, modelsDir: string | undefined): ServedModel[] {
  const fromDir = modelsDir === undefined ? [] : asUsageError(() => modelsInFolder(modelsDir), ModelCatalogError);
  if (modelsDir !== undefined && fromDir.length === 0) throw new UsageError(`--models-dir ${modelsDir}: no *.safetensors file or diffusers folder in it`);
  const sources = [...(models ?? (fromDir.length ? [] : ["segmind/SSD-1B"])), ...fromDir];
  return asUsageError(() => buildCatalog(sources), ModelCatalogError);
}
