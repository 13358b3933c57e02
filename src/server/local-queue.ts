/**
 * The default queue: jobs run one at a time in arrival order on the pipeline loaded in this
 * process. A queued job that is cancelled leaves the line; a running one is stopped through the
 * AbortSignal given to the pipeline (it stops after the current step).
 */
import type { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { queueFull, toHttpError } from "./errors.js";
import { Job, newJobId, type JobSpec } from "./job.js";
import { JobQueue, textEncoderLayers, type ModelInfo } from "./queue.js";
import { StopControl, runJob } from "./run-job.js";
import type { FileStore } from "./file-store.js";
import { LoraPipelines } from "./lora-pipelines.js";
import type { LoraLibrary } from "./lora-library.js";
import { ControlNets, type ControlNetLibrary } from "./controlnet-library.js";

export class LocalQueue extends JobQueue {
  readonly mode = "in-process" as const;
  private readonly waiting: Job[] = [];
  private current?: Job;
  private closed = false;
  private readonly controllers = new WeakMap<Job, AbortController>();

  /** The base pipeline and the variants with per-request LoRAs. */
  readonly pipelines: LoraPipelines;
  /** The --controlnet-dir nets opened so far (lazily, a few kept). */
  readonly controlnets: ControlNets;

  /**
   * `opts.loras`: the --lora-dir library that jobs' LoRA names resolve against; `loraCache`: LoRA sets
   * kept compiled (default 1); `fastLora`: --fast's local LCM-LoRA file (the pipe then has a TAESD).
   */
  constructor(readonly pipe: StableDiffusionXLPipeline, maxQueue: number, files: FileStore, opts: { loras?: LoraLibrary; loraCache?: number; log?: (line: string) => void; fastLora?: string; controlnets?: ControlNetLibrary; controlnetCache?: number } = {}) {
    super(maxQueue, files);
    this.controlnets = new ControlNets(opts.controlnets, pipe, opts.controlnetCache);
    this.pipelines = new LoraPipelines(pipe, { library: opts.loras, cacheSize: opts.loraCache, log: opts.log, fastLora: opts.fastLora });
  }

  model(): ModelInfo {
    return { name: this.pipe.model.name, source: this.pipe.model.repoId ?? this.pipe.model.dir, defaultSize: this.pipe.defaultSize, textEncoderLayers: textEncoderLayers(this.pipe) };
  }

  async submit(spec: JobSpec): Promise<Job> {
    if (this.closed) throw new Error("the queue is closed");
    if (this.waiting.length >= this.maxQueue) throw queueFull(this.maxQueue, this.retryAfterSeconds());
    const job = new Job(newJobId(), spec);
    const controller = new AbortController();
    job.onCancel = (reason) => {
      const i = this.waiting.indexOf(job);
      if (i >= 0) {
        this.waiting.splice(i, 1);
        job.fail(toHttpError(new Error(reason)));
      } else controller.abort(reason);
    };
    this.register(job);
    this.waiting.push(job);
    job.queued(this.waiting.length - 1 + (this.current ? 1 : 0));
    this.controllers.set(job, controller);
    queueMicrotask(() => void this.pump());
    return job;
  }

  /** Runs the next job when none runs. */
  private async pump(): Promise<void> {
    if (this.current || this.closed) return;
    const job = this.waiting.shift();
    if (!job) return;
    this.current = job;
    const { signal } = this.controllers.get(job)!;
    const control = new StopControl();
    job.onStop = (action) => control.apply(action);
    try {
      job.started();
      const output = await this.pipelines.use(job.spec.loras, (pipe) => runJob(pipe, job.spec, { signal, control, controlnets: this.controlnets, onStep: (r) => job.progress(r.step, r.totalSteps, r.preview) }), job.spec.preset === "fast");
      this.complete(job, output);
    } catch (e) {
      job.fail(toHttpError(e));
    } finally {
      this.current = undefined;
      setImmediate(() => void this.pump());
    }
  }

  /** Stops taking jobs, cancels the queued ones, waits for the running one to stop, releases the LoRA variants (not the base pipeline). */
  async close(): Promise<void> {
    this.closed = true;
    for (const j of [...this.waiting]) j.cancel("cancelled");
    const running = this.current;
    if (running) {
      running.cancel("cancelled");
      await running.done.catch(() => {});
    }
    await this.pipelines.release();
    await this.controlnets.release();
  }
}
