/**
 * The prompts queued through the ComfyUI API: each is a job of the shared queue (its prompt_id is
 * the job id, so /v1/jobs/:id sees it too), with ComfyUI's bookkeeping on top: the running number,
 * the history entry written when it ends, and the WebSocket messages ComfyUI sends on the way
 * (execution_start, executing, progress with a binary PNG preview after it, executed,
 * execution_success / execution_error, and `executing` with node null last, which is what Open WebUI
 * waits for).
 */
import type { Job } from "../job.js";
import type { JobQueue } from "../queue.js";
import type { CompiledPrompt } from "./workflow.js";

export interface ComfyMessage {
  type: string;
  data: Record<string, unknown>;
}

/** Where messages go: to one client (its clientId), or to every client (undefined). */
export interface Sockets {
  send(clientId: string | undefined, message: ComfyMessage): void;
  /** A binary message (ComfyUI's step previews). */
  sendBinary(clientId: string | undefined, data: Buffer): void;
  /** Whether a socket would get what is sent to this client (previews are made only then). */
  listening(clientId: string | undefined): boolean;
}

/** ComfyUI's binary preview frame: event 1 (PREVIEW_IMAGE), format 2 (PNG), then the image. */
export function previewFrame(png: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(1, 0);
  head.writeUInt32BE(2, 4);
  return Buffer.concat([head, png]);
}

interface ImageRef { filename: string; subfolder: string; type: string }

export interface PromptRecord {
  number: number;
  id: string;
  prompt: unknown;
  clientId?: string;
  compiled: CompiledPrompt;
  job: Job;
  /** Set when the prompt has ended (ComfyUI's history holds ended prompts only). */
  history?: Record<string, unknown>;
}

/** Ended prompts kept for /history (ComfyUI keeps 10000; the queue keeps as many finished jobs as this). */
const KEEP_HISTORY = 200;
/** A history entry keeps the prompt's graph up to this size (in JSON), so /history stays small whatever was sent. */
const KEEP_GRAPH_BYTES = 256 << 10;

export class ComfyPrompts {
  private next = 0;
  private readonly records = new Map<string, PromptRecord>();

  constructor(private readonly queue: JobQueue, private readonly sockets: Sockets) {}

  private send(clientId: string | undefined, message: ComfyMessage): void {
    this.sockets.send(clientId, message);
  }

  get(id: string): PromptRecord | undefined { return this.records.get(id); }

  /** Running then pending, in order. */
  active(): PromptRecord[] {
    return [...this.records.values()].filter((r) => !r.history);
  }

  ended(): PromptRecord[] {
    return [...this.records.values()].filter((r) => r.history);
  }

  /** ComfyUI's queue_remaining: the jobs running or waiting, of every API (one queue serves them all). */
  remaining(): number {
    const c = this.queue.counts();
    return c.running + c.queued;
  }

  status(): ComfyMessage {
    return { type: "status", data: { status: { exec_info: { queue_remaining: this.remaining() } } } };
  }

  /** Tracks a job just queued for this prompt. */
  add(job: Job, prompt: unknown, compiled: CompiledPrompt, clientId: string | undefined): PromptRecord {
    const kept = JSON.stringify(prompt).length <= KEEP_GRAPH_BYTES ? prompt : {};
    const record: PromptRecord = { number: this.next++, id: job.id, prompt: kept, clientId, compiled, job };
    this.records.set(job.id, record);
    const messages: [string, Record<string, unknown>][] = [];
    const emit = (type: string, data: Record<string, unknown>, log = false) => {
      const full = { ...data, prompt_id: record.id };
      if (log) messages.push([type, { ...full, timestamp: Date.now() }]);
      this.send(clientId, { type, data: log ? { ...full, timestamp: Date.now() } : full });
    };
    const { sampler, decoder, outputs } = compiled;
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      emit("execution_start", {}, true);
      emit("execution_cached", { nodes: [] }, true);
      emit("executing", { node: sampler, display_node: sampler });
    };
    const unsubscribe = job.subscribe((e) => {
      if (e.type === "started") start();
      else if (e.type === "step") {
        start();
        emit("progress", { value: e.step, max: e.totalSteps, node: sampler });
        const png = this.sockets.listening(clientId) ? e.preview() : undefined;
        if (png) this.sockets.sendBinary(clientId, previewFrame(png));
      } else if (e.type === "done") {
        emit("executing", { node: decoder, display_node: decoder });
        const images: ImageRef[][] = outputs.map((o) => job.files.map((filename) => ({ filename, subfolder: "", type: o.type })));
        outputs.forEach((o, i) => emit("executed", { node: o.id, display_node: o.id, output: { images: images[i] } }));
        emit("execution_success", {}, true);
        this.end(record, { status_str: "success", completed: true, messages }, Object.fromEntries(outputs.map((o, i) => [o.id, { images: images[i] }])));
      } else if (e.type === "failed") {
        const interrupted = job.cancelReason !== undefined;
        const where = { node_id: sampler, node_type: "KSampler", executed: [] };
        if (interrupted) emit("execution_interrupted", where, true);
        else emit("execution_error", { ...where, exception_message: e.error.message, exception_type: e.error.code, traceback: [], current_inputs: {}, current_outputs: {} }, true);
        this.end(record, { status_str: "error", completed: false, messages }, {});
      }
      if (e.type === "done" || e.type === "failed") {
        unsubscribe();
        emit("executing", { node: null });
        this.send(undefined, this.status());
      }
    });
    this.send(undefined, this.status());
    return record;
  }

  /** ComfyUI's /queue entry: [number, prompt_id, prompt, extra_data, outputs to execute]. */
  queueEntry(r: PromptRecord): unknown[] {
    return [r.number, r.id, r.prompt, r.clientId ? { client_id: r.clientId } : {}, r.compiled.outputs.map((o) => o.id)];
  }

  /** Forgets ended prompts (all, or these ids). */
  forget(ids?: string[]): void {
    for (const r of ids ? ids.map((id) => this.records.get(id)) : this.ended()) {
      if (r?.history) this.records.delete(r.id);
    }
  }

  private end(record: PromptRecord, status: Record<string, unknown>, outputs: Record<string, unknown>): void {
    record.history = {
      prompt: this.queueEntry(record), outputs, status,
      meta: Object.fromEntries(record.compiled.outputs.map((o) => [o.id, { node_id: o.id, display_node: o.id, parent_node: null, real_node_id: o.id }])),
    };
    const ended = this.ended();
    for (const r of ended.slice(0, Math.max(0, ended.length - KEEP_HISTORY))) this.records.delete(r.id);
  }
}
