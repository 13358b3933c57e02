/** The server on an in-process queue over a loaded pipeline, as most server tests start it. */
import type { StableDiffusionXLPipeline } from "../../src/pipelines/sdxl/index.js";
import { startServer, type RunningServer, type ServerOptions } from "../../src/server/app.js";
import { FileStore } from "../../src/server/file-store.js";
import { LocalQueue } from "../../src/server/local-queue.js";

type QueueOptions = ConstructorParameters<typeof LocalQueue>[3];

/** `queueSize` jobs may wait; `queue` and `server` options pass through (e.g. ControlNet or LoRA libraries). */
export function startLocalServer(pipe: StableDiffusionXLPipeline, opts: { queueSize?: number; queue?: QueueOptions; server?: Omit<Partial<ServerOptions>, "queue" | "files"> } = {}): Promise<RunningServer> {
  const files = new FileStore();
  return startServer({ queue: new LocalQueue(pipe, opts.queueSize ?? 8, files, opts.queue), files, host: "127.0.0.1", port: 0, ...opts.server });
}
