/**
 * The default queue: jobs run one at a time in arrival order on the pipeline loaded in this
 * process. A queued job that is cancelled leaves the line; a running one is stopped through the
 * AbortSignal given to the pipeline (it stops after the current step).
 */
import type { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { queueFull, toHttpError } from "./errors.js";
import { Job, newJobId, type JobSpec } from "./job.js";
import { JobQueue, textEncoderLayers, type ModelInfo } from "./queue.js";
import type { ServedModel } from "./model-catalog.js";
import { StopControl, runJob } from "./run-job.js";
import type { FileStore } from "./file-store.js";
import { LoraPipelines } from "./lora-pipelines.js";
import type { LoraLibrary } from "./lora-library.js";
import { ControlNets, type ControlNetLibrary } from "./controlnet-library.js";

/** A model the queue runs: its pipeline and, with --fast, its local LCM-LoRA file. */
export interface LoadedModel {
  pipe: StableDiffusionXLPipeline;
  fastLora?: string;
}

/** Several served models (serve with more than one --model, or --models-dir): the list and how to load one. */
export interface ModelSwitching {
  /** Every model, the loaded one among them (the first pipe's name). */
  models: readonly ServedModel[];
  load(model: ServedModel): Promise<LoadedModel>;
}

interface QueueOptions {
  loras?: LoraLibrary; loraCache?: number; log?: (line: string) => void; fastLora?: string;
  controlnets?: ControlNetLibrary; controlnetCache?: number; switching?: ModelSwitching;
}

export class LocalQueue extends JobQueue {
  readonly mode = "in-process" as const;
  private readonly waiting: Job[] = [];
  private current?: Job;
  private closed = false;
  private readonly controllers = new WeakMap<Job, AbortController>();

  // set by install(), from the constructor on
  /** The loaded model's pipeline. */
  pipe!: StableDiffusionXLPipeline;
  /** The loaded model's base pipeline and its variants with per-request LoRAs. */
  pipelines!: LoraPipelines;
  /** The --controlnet-dir nets opened so far for the loaded model (lazily, a few kept). */
  controlnets!: ControlNets;
  /** What new jobs without a model get. */
  private defaultModel: string;
  /** What each model told once loaded (its size and text encoders), for model(). */
  private readonly known = new Map<string, ModelInfo>();

  /**
   * `opts.loras`: the --lora-dir library that jobs' LoRA names resolve against; `loraCache`: LoRA sets
   * kept compiled (default 1); `fastLora`: --fast's local LCM-LoRA file (the pipe then has a TAESD);
   * `switching`: the other models jobs may ask for.
   */
  constructor(pipe: StableDiffusionXLPipeline, maxQueue: number, files: FileStore, private readonly opts: QueueOptions = {}) {
    super(maxQueue, files);
    this.install({ pipe, fastLora: opts.fastLora });
    this.defaultModel = pipe.model.name;
  }

  model(): ModelInfo {
    const models = this.opts.switching?.models;
    const info = this.known.get(this.defaultModel) ?? { name: this.defaultModel, source: models?.find((m) => m.name === this.defaultModel)?.source };
    return models ? { ...info, models } : info;
  }

  override setDefaultModel(name: string): void {
    if (this.opts.switching?.models.some((m) => m.name === name)) this.defaultModel = name;
  }

  /** A served model opened beside the loaded one as a job's refiner (the job releases it). */
  private async openRefiner(name: string): Promise<StableDiffusionXLPipeline> {
    const wanted = this.opts.switching?.models.find((m) => m.name === name);
    if (!wanted) throw new Error(`the refiner ${name} is not served here`);
    const t0 = performance.now();
    const { pipe } = await this.opts.switching!.load(wanted);
    (this.opts.log ?? (() => {}))(`refiner ${name} loaded (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    return pipe;
  }

  /** Loads the job's model in place of the loaded one (releasing it first: one model in memory); back to the old one if that fails. */
  private async switchTo(name: string): Promise<void> {
    const switching = this.opts.switching;
    const wanted = switching?.models.find((m) => m.name === name);
    if (!switching || !wanted || name === this.pipe.model.name) return;
    const previous = switching.models.find((m) => m.name === this.pipe.model.name);
    const log = this.opts.log ?? (() => {});
    await this.pipelines.release();
    await this.controlnets.release();
    await this.pipe.release();
    const t0 = performance.now();
    let loaded: LoadedModel;
    try {
      loaded = await switching.load(wanted);
    } catch (e) {
      log(`loading ${wanted.source} failed (${(e as Error).message}); loading ${previous?.source} again`);
      if (previous) this.install(await switching.load(previous));
      throw e;
    }
    this.install(loaded);
    log(`model ${name} loaded (${((performance.now() - t0) / 1000).toFixed(1)} s) in place of ${previous?.name}`);
  }

  private install(loaded: LoadedModel): void {
    const { pipe } = loaded;
    this.pipe = pipe;
    this.controlnets = new ControlNets(this.opts.controlnets, pipe, this.opts.controlnetCache);
    this.pipelines = new LoraPipelines(pipe, { library: this.opts.loras, cacheSize: this.opts.loraCache, log: this.opts.log, fastLora: loaded.fastLora });
    this.known.set(pipe.model.name, loadedInfo(pipe));
  }

  async submit(spec: JobSpec): Promise<Job> {
    if (this.closed) throw new Error("the queue is closed");
    if (this.waiting.length >= this.maxQueue) throw queueFull(this.maxQueue, this.retryAfterSeconds());
    // the model is chosen when the job is asked for, as A1111 reads sd_model_checkpoint then
    if (this.opts.switching && spec.model === undefined) spec.model = this.defaultModel;
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
      if (job.spec.model !== undefined) await this.switchTo(job.spec.model);
      const output = await this.pipelines.use(job.spec.loras, (pipe) => runJob(pipe, job.spec, { signal, control, controlnets: this.controlnets, openRefiner: (name) => this.openRefiner(name), onStep: (r) => job.progress(r.step, r.totalSteps, r.preview) }), job.spec.preset === "fast");
      this.complete(job, output);
    } catch (e) {
      job.fail(toHttpError(e));
    } finally {
      this.current = undefined;
      setImmediate(() => void this.pump());
    }
  }

  /** Stops taking jobs, cancels the queued ones, waits for the running one to stop, releases the LoRA variants (not the loaded pipeline: `pipe`). */
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

function loadedInfo(pipe: StableDiffusionXLPipeline): ModelInfo {
  return { name: pipe.model.name, source: pipe.model.repoId ?? pipe.model.dir, defaultSize: pipe.defaultSize, textEncoderLayers: textEncoderLayers(pipe) };
}
