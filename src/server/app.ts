/**
 * The HTTP server: every API family's routes on one router over a job queue (in-process or
 * Redis), ComfyUI's WebSocket beside them, listening on loopback by default.
 *
 *   const queue = new LocalQueue(await StableDiffusionXLPipeline.fromPretrained(dir), 16, files);
 *   const server = await startServer({ queue, files, port: 7860 });
 *   ... server.url ... await server.close();
 */
import { createServer, type Server } from "node:http";
import type { VaeLibrary } from "./vae-library.js";
import type { AddressInfo } from "node:net";
import { Router } from "./http.js";
import { FileStore } from "./file-store.js";
import type { AppState } from "./generation.js";
import type { JobQueue } from "./queue.js";
import { DEFAULT_LIMITS, type Limits } from "./validation.js";
import { nativeRoutes } from "./routes-native.js";
import { openAiRoutes } from "./routes-openai.js";
import { openAiImageRoutes } from "./routes-openai-images.js";
import { a1111Routes } from "./routes-a1111.js";
import { segmindRoutes } from "./routes-segmind.js";
import { segmindV2Routes } from "./routes-segmind-v2.js";
import { extrasRoutes } from "./routes-extras.js";
import type { UpscalerLibrary } from "./upscaler-library.js";
import type { LoraLibrary } from "./lora-library.js";
import { AccessPolicy } from "./access.js";
import type { ControlNetLibrary } from "./controlnet-library.js";
import { controlNetRoutes } from "./routes-controlnet.js";
import { webRoutes } from "./routes-web.js";
import type { PromptStyles } from "./prompt-styles.js";
import type { EmbeddingsListing } from "./embeddings-listing.js";
import { ComfyUiApi } from "./comfyui/routes.js";

export interface ServerOptions {
  queue: JobQueue;
  /** Default: the queue's. */
  files?: FileStore;
  limits?: Partial<Limits>;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7860; 0 picks a free port. */
  port?: number;
  log?: (line: string) => void;
  /** --lora-dir: LoRAs requests may name (<lora:NAME:W> in prompts, a `loras` field); give the queue's runner the same. */
  loras?: LoraLibrary;
  /** --host-allow: Host names accepted besides loopback and `host` ("*": any); see access.ts. */
  hostAllow?: string[];
  /** --cors-allow-origins: origins that get CORS headers (default none). */
  corsAllowOrigins?: string[];
  /** --fast: requests may ask for preset "fast"; give the queue's runner the LCM-LoRA (fastLora) and a TAESD. */
  fast?: boolean;
  /** --upscaler-dir: RRDBNet models for /sdapi/v1/upscalers and /sdapi/v1/extra-single-image. */
  upscalers?: UpscalerLibrary;
  /** --vae-dir: VAE files for A1111's sd_vae, /sdapi/v1/sd-vae and ComfyUI's VAELoader. */
  vaes?: VaeLibrary;
  /** --controlnet-dir: the nets requests may name; give the queue's runner the same. */
  controlnets?: ControlNetLibrary;
  /** --styles-file: A1111 prompt styles, applied here before a job is queued (runners need nothing). */
  styles?: PromptStyles;
  /** --embedding, --embeddings-dir: the textual inversions the runners hold, as the APIs list them. */
  embeddings?: EmbeddingsListing;
}

export interface RunningServer {
  server: Server;
  /** http://host:port */
  url: string;
  port: number;
  state: AppState;
  /** Stops listening, ends open connections (SSE included) and closes the queue. */
  close(): Promise<void>;
}

export function createApp(opts: ServerOptions): { server: Server; state: AppState; comfy: ComfyUiApi } {
  const state: AppState = {
    queue: opts.queue,
    files: opts.files ?? opts.queue.files,
    limits: { ...DEFAULT_LIMITS, ...opts.limits },
    log: opts.log ?? (() => {}),
    startedAt: Date.now(),
    loras: opts.loras,
    fast: opts.fast ?? false,
    cmdFlags: {
      api: true, nowebui: false, listen: !["127.0.0.1", "localhost", "::1"].includes(opts.host ?? "127.0.0.1"),
      server_name: opts.host ?? "127.0.0.1", port: opts.port ?? 7860, cors_allow_origins: opts.corsAllowOrigins?.join(",") || null,
      lora_dir: opts.loras?.dir ?? null, vae_dir: opts.vaes?.dir ?? null, controlnet_dir: opts.controlnets?.dir ?? null, styles_file: opts.styles?.path ? [opts.styles.path] : [], ckpt: opts.queue.model().source ?? null, no_half: true, skip_torch_cuda_test: true,
    },
    upscalers: opts.upscalers,
    vaes: opts.vaes,
    controlnets: opts.controlnets,
    styles: opts.styles,
    embeddings: opts.embeddings,
  };
  const access = new AccessPolicy({ host: opts.host, hostAllow: opts.hostAllow, corsAllowOrigins: opts.corsAllowOrigins });
  const router = new Router<AppState>(state, state.log, access);
  nativeRoutes(router);
  openAiRoutes(router);
  openAiImageRoutes(router);
  a1111Routes(router);
  segmindRoutes(router);
  segmindV2Routes(router);
  extrasRoutes(router);
  controlNetRoutes(router);
  webRoutes(router);
  const comfy = new ComfyUiApi(state);
  comfy.routes(router);
  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => void router.handle(req, res));
  // ComfyUI's WebSocket (/ws); any other upgrade is refused
  server.on("upgrade", (req, socket, head) => comfy.handleUpgrade(req, socket, head, access));
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
  });
  return { server, state, comfy };
}

export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const { server, state, comfy } = createApp(opts);
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 7860, host, () => { server.off("error", reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    server, port, state,
    url: `http://${shown}:${port}`,
    close: () => (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await opts.queue.close();
      comfy.close();
      server.closeAllConnections();
      await closed;
    })()),
  };
}
