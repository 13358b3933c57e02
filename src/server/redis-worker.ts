/**
 * A BullMQ worker (`ssd1b worker`): takes jobs from the Redis queue one at a time and runs them on
 * its loaded pipeline. Progress (with a latent preview every few hundred ms) goes out through
 * job.updateProgress; the result into its own Redis key. A cancel message on the pub/sub channel
 * aborts the running job. A job whose worker dies is taken up again by another worker: at once
 * when the front end sees the dead worker's connections gone (it then drops the job's lock; see
 * RedisQueue.reapDeadWorkers), else once the lock lapses; either way at the next stalled-job check
 * (BullMQ's stalledInterval).
 *
 * Why the lock is long (DEFAULT_LOCK_MS): onnxruntime-node runs a session (and creates one) on the
 * main thread, so BullMQ cannot renew the lock during a UNet step or a VAE decode. Measured on 2 CPU
 * cores (bench/results/pipeline-cpu.md): an SSD-1B step at 1024x1024 blocks 43.6 s, the VAE decode
 * with its session creation 60.9 s (SDXL's UNet is about 1.6x SSD-1B's). The old 30 s lock lapsed
 * inside such a step and a live worker's job ran twice; 5 minutes leaves a margin of 4 or more.
 * A lapsed lock only matters for a machine that vanishes without closing its connections.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { Worker, type Job as BullJob } from "bullmq";
import type { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { CANCEL_REASONS, cancelledError, errorToWire, toHttpError, type CancelReason } from "./errors.js";
import { outputToJson, type JobSpec, type StopAction } from "./job.js";
import { StopControl, runJob } from "./run-job.js";
import { LoraPipelines } from "./lora-pipelines.js";
import type { LoraLibrary } from "./lora-library.js";
import { ControlNets, type ControlNetLibrary } from "./controlnet-library.js";
import { formatLoraTag } from "../prompts/lora-tags.js";
import { KEEP_SECONDS, commands, probeRedis, queueName, redisConnection, redisKeys, withTimeout, type ProgressData } from "./redis-queue.js";
import { textEncoderLayers } from "./queue.js";

export interface WorkerOptions {
  url: string;
  pipe: StableDiffusionXLPipeline;
  /** How long a job's lock lasts without renewal (ms; default DEFAULT_LOCK_MS). Must outlast the longest synchronous model call. */
  lockDurationMs?: number;
  /** How often workers look for stalled jobs (ms; default DEFAULT_STALLED_MS): the delay before a dead worker's job is retaken. */
  stalledIntervalMs?: number;
  /** Least time between two previews sent (ms; default 250). */
  previewEveryMs?: number;
  /** --lora-dir: what the LoRA names of jobs resolve against (jobs with LoRAs fail without it). */
  loras?: LoraLibrary;
  /** LoRA sets kept compiled between jobs (default 1). */
  loraCache?: number;
  /** --fast: the local LCM-LoRA file fast jobs add (the pipe then has a TAESD); absent: fast jobs fail. */
  fastLora?: string;
  /** --controlnet-dir: what the ControlNet names of jobs resolve against; --controlnet-cache: nets kept open. */
  controlnets?: ControlNetLibrary;
  controlnetCache?: number;
  log?: (line: string) => void;
}

export const DEFAULT_LOCK_MS = 300_000;
export const DEFAULT_STALLED_MS = 5_000;

export interface RunningWorker {
  worker: Worker;
  /** Finishes the running job, then disconnects. */
  close(): Promise<void>;
}

export async function startRedisWorker(opts: WorkerOptions): Promise<RunningWorker> {
  const log = opts.log ?? (() => {});
  const connection = redisConnection(opts.url);
  const name = queueName(opts.url);
  const keys = redisKeys(name);
  const reasons = new Map<string, CancelReason>();
  /** The running job's interrupt / skip control, by job id. */
  const controls = new Map<string, StopControl>();
  const previewEvery = opts.previewEveryMs ?? 250;
  await probeRedis(opts.url);
  const pipelines = new LoraPipelines(opts.pipe, { library: opts.loras, cacheSize: opts.loraCache, log, runner: "worker", fastLora: opts.fastLora });
  const controlnets = new ControlNets(opts.controlnets, opts.pipe, opts.controlnetCache, "worker");

  const processor = async (bj: BullJob, _token: string | undefined, signal: AbortSignal | undefined): Promise<{ stored: boolean }> => {
    const id = bj.id!;
    const spec = bj.data as JobSpec;
    const client = await commands(worker.client);
    const mark = await client.get(keys.cancelled(id));
    if (mark) throw new Error(errorToWire(cancelledError(CANCEL_REASONS.includes(mark as CancelReason) ? mark as CancelReason : "cancelled")));
    log(`job ${id} started (seed ${spec.seed}, ${spec.steps} steps${spec.loras?.length ? `, LoRAs ${spec.loras.map(formatLoraTag).join(" ")}` : ""}${spec.preset ? `, preset ${spec.preset}` : ""}${bj.attemptsStarted > 1 || bj.stalledCounter > 0 ? ", taken over from a stalled worker" : ""})`);
    const t0 = Date.now();
    let lastPreview = 0;
    const control = new StopControl();
    controls.set(id, control);
    try {
      const output = await pipelines.use(spec.loras, (pipe) => runJob(pipe, spec, {
        signal, control, controlnets,
        onStep: (r) => {
          const now = Date.now();
          const data: ProgressData = { step: r.step, totalSteps: r.totalSteps };
          if (r.step === 1 || r.step === r.totalSteps || now - lastPreview >= previewEvery) {
            data.preview = r.preview()?.toString("base64");
            lastPreview = now;
          }
          bj.updateProgress(data as unknown as object).catch(() => {});
        },
      }), spec.preset === "fast");
      await client.set(keys.result(id), JSON.stringify(outputToJson(output)), "EX", KEEP_SECONDS);
      log(`job ${id} done in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
      return { stored: true };
    } catch (e) {
      const reason = reasons.get(id);
      const err = signal?.aborted && reason ? cancelledError(reason) : toHttpError(e);
      log(`job ${id} failed: ${err.message}`);
      throw new Error(errorToWire(err));
    } finally {
      reasons.delete(id);
      controls.delete(id);
    }
  };

  const worker: Worker = new Worker(name, processor, {
    connection, concurrency: 1, autorun: false,
    lockDuration: opts.lockDurationMs ?? DEFAULT_LOCK_MS,
    stalledInterval: opts.stalledIntervalMs ?? DEFAULT_STALLED_MS,
    maxStalledCount: 2,
    // unique: BullMQ names the worker's connections and the jobs it takes (processedBy) after it,
    // which is how the front end tells a dead worker's jobs
    name: `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
  });
  let lastError = "";
  worker.on("error", (e) => { if (e.message !== lastError) log(`worker error: ${e.message}`); lastError = e.message; });
  try {
    await withTimeout(worker.waitUntilReady(), 10000, `cannot reach Redis at ${opts.url} within 10 s`);
  } catch (e) {
    await withTimeout(worker.disconnect(), 2000, "").catch(() => {});
    throw e;
  }

  const client = await commands(worker.client);
  const model = opts.pipe.model;
  await client.set(keys.model, JSON.stringify({ name: model.name, source: model.repoId ?? model.dir, defaultSize: opts.pipe.defaultSize, textEncoderLayers: textEncoderLayers(opts.pipe) }));

  const sub = client.duplicate();
  sub.on("error", () => {});
  await sub.subscribe(keys.cancelChannel);
  sub.on("message", (_channel: string, message: string) => {
    try {
      const { id, reason, stop } = JSON.parse(message) as { id: string; reason?: CancelReason; stop?: StopAction };
      if (stop === "interrupt" || stop === "skip") {
        const control = controls.get(id);
        if (control) { control.apply(stop); log(`job ${id}: ${stop}`); }
        return;
      }
      if (!reason) return;
      reasons.set(id, reason);
      if (worker.cancelJob(id, reason)) log(`job ${id} ${reason}`);
      else reasons.delete(id);
    } catch { /* not ours */ }
  });

  void worker.run();
  return {
    worker,
    close: async () => {
      await worker.close();
      sub.disconnect();
      await pipelines.release();
      await controlnets.release();
    },
  };
}
