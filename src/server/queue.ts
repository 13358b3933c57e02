/**
 * What the HTTP side needs from a job queue, whichever runs the jobs (this process, or BullMQ
 * workers through Redis): submit in arrival order, look jobs up by id, interrupt, count, close.
 * Finished jobs stay known for a while (for /v1/jobs/:id and its events), within bounds.
 */
import type { ServedModel } from "./model-catalog.js";
import type { Job, JobOutput, JobSpec, StopAction } from "./job.js";
import type { FileStore } from "./file-store.js";

export interface ModelInfo {
  /** The model's short name (Model: in the parameters text). */
  name: string;
  /** Its folder or repo id, when known. */
  source?: string;
  /** Its default image side (UNet sample size x VAE scale), when known. */
  defaultSize?: number;
  /** Layers of text_encoder and text_encoder_2 (the range of clip skip), when known. */
  textEncoderLayers?: [number, number];
  /** Every model this queue may run (serve with several --model or --models-dir); absent: this one only. */
  models?: readonly ServedModel[];
}

/** The models a queue may run: its list, or the one it describes. */
export function servedModels(model: ModelInfo): readonly ServedModel[] {
  return model.models ?? [{ name: model.name, source: model.source ?? model.name }];
}

/** What ModelInfo.textEncoderLayers holds, from a loaded pipeline. */
export function textEncoderLayers(pipe: { promptEncoder: { encoders: readonly [{ config: { numHiddenLayers: number } } | undefined, { config: { numHiddenLayers: number } }] } }): [number, number] {
  const [a, b] = pipe.promptEncoder.encoders;
  // a refiner has text_encoder_2 alone, to which a clip skip then applies
  return [(a ?? b).config.numHiddenLayers, b.config.numHiddenLayers];
}

export interface QueueCounts {
  running: number;
  queued: number;
}

/** A running or queued job as GET /v1/queue lists it. */
export interface QueueEntry {
  id: string;
  status: "running" | "queued";
  prompt: string;
  step: number;
  totalSteps: number;
  etaSeconds: number;
  createdAt: number;
}

export const queueEntry = (j: Job): QueueEntry => ({
  id: j.id, status: j.status === "running" ? "running" : "queued", prompt: j.spec.prompt,
  step: j.step, totalSteps: j.totalSteps, etaSeconds: j.etaSeconds(), createdAt: j.createdAt,
});

const KEEP_FINISHED = 200;
const KEEP_FINISHED_MS = 60 * 60 * 1000;

export abstract class JobQueue {
  abstract readonly mode: "in-process" | "redis";
  protected readonly jobs = new Map<string, Job>();
  /** Moving average of a job's run time in seconds (for Retry-After). */
  private avgSeconds = 0;

  constructor(readonly maxQueue: number, readonly files: FileStore) {}

  /** Queues a job (429 HttpError when maxQueue jobs already wait). */
  abstract submit(spec: JobSpec): Promise<Job>;
  /** The model new jobs get (with every model the queue may run in `models`). */
  abstract model(): ModelInfo;
  /**
   * Makes a served model the one new jobs without a model get (A1111's POST options
   * sd_model_checkpoint); `name` is one of model().models. A queue of one model has nothing to do.
   */
  setDefaultModel(_name: string): void {}
  abstract close(): Promise<void>;
  /** Why the queue cannot take jobs now (its backend unreachable), or undefined when it can. */
  async unavailable(): Promise<string | undefined> { return undefined; }
  /** How many jobs run at once (in-process 1; Redis: workers seen). */
  protected parallelism(): number { return 1; }

  get(id: string): Job | undefined { return this.jobs.get(id); }

  counts(): QueueCounts {
    let running = 0, queued = 0;
    for (const j of this.jobs.values()) {
      if (j.status === "running") running++;
      else if (j.status === "queued") queued++;
    }
    return { running, queued };
  }

  /** Running and queued jobs that this server took, oldest first. */
  active(): Job[] { return [...this.jobs.values()].filter((j) => !j.finished); }

  /** Every client's running jobs, then the queued ones in order (GET /v1/queue); Redis: all front ends'. */
  async listActive(): Promise<QueueEntry[]> {
    const jobs = this.active();
    return [...jobs.filter((j) => j.status === "running"), ...jobs.filter((j) => j.status !== "running")].map(queueEntry);
  }

  /** Running jobs, oldest first. */
  running(): Job[] { return [...this.jobs.values()].filter((j) => j.status === "running"); }

  /**
   * A1111 interrupt (the running jobs end with what they made so far) or skip (their current batch
   * ends where it is, the next iteration runs); the queued jobs go on.
   */
  stop(action: StopAction): number {
    const jobs = this.running();
    for (const j of jobs) j.stop(action);
    return jobs.length;
  }

  /** A guess at when a place in the queue frees up. */
  retryAfterSeconds(): number {
    const per = this.avgSeconds || 5;
    return Math.min(3600, Math.max(1, Math.ceil((per * (this.counts().queued + 1)) / Math.max(1, this.parallelism()))));
  }

  protected recordDuration(seconds: number): void {
    this.avgSeconds = this.avgSeconds ? 0.8 * this.avgSeconds + 0.2 * seconds : seconds;
  }

  /** Stores the images (GET /files/<job>-<i>.png) and settles the job. */
  protected complete(job: Job, output: JobOutput): void {
    if (job.finished) return;
    job.files = output.images.map((png, i) => this.files.put(`${job.id}-${i}.png`, png));
    job.succeed(output);
  }

  protected register(job: Job): void {
    this.jobs.set(job.id, job);
    job.done.then((o) => this.recordDuration(o.seconds), () => {}).finally(() => this.prune());
  }

  /** Forgets finished jobs beyond the newest KEEP_FINISHED or older than an hour (their images stay in the file store). */
  private prune(): void {
    const now = Date.now();
    const finished = [...this.jobs.values()].filter((j) => j.finished);
    finished.forEach((j, i) => {
      if (finished.length - i > KEEP_FINISHED || now - (j.finishedAt ?? now) > KEEP_FINISHED_MS) this.jobs.delete(j.id);
    });
    for (const j of finished) if (this.jobs.has(j.id)) j.output = j.output && { ...j.output, images: [] };
  }
}
