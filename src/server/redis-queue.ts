/**
 * Scale-out through Redis with BullMQ: the front end (`ssd1b serve --queue redis://...`) adds jobs
 * to a BullMQ queue and follows them through QueueEvents (active, progress with previews,
 * completed, failed); workers (`ssd1b worker`, redis-worker.ts) run them. Results travel in a
 * Redis key of their own (not in BullMQ's event stream); cancellation is a Redis pub/sub message
 * plus a key a worker checks before it starts. A poll every few seconds catches any event missed.
 */
import { connect } from "node:net";
import { Queue, QueueEvents, type ConnectionOptions } from "bullmq";
import { HttpError, errorFromWire, queueFull, toHttpError, type CancelReason } from "./errors.js";
import { Job, newJobId, outputFromJson, type JobOutputJson, type JobSpec } from "./job.js";
import { JobQueue, type ModelInfo } from "./queue.js";
import type { FileStore } from "./file-store.js";

/** ioredis options from redis://[user:password@]host[:port][/db][?name=queue] (rediss:// for TLS). */
export function redisConnection(url: string): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--queue must be a redis:// URL, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") throw new Error(`--queue must be a redis:// URL, got ${JSON.stringify(url)}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`bad Redis database number in ${url}`);
  return {
    host: u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db,
    tls: u.protocol === "rediss:" ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

/**
 * Fails fast when nothing listens at the URL's address (BullMQ's client would retry for ever and
 * keep the process alive). TLS URLs are left to the client.
 */
export async function probeRedis(url: string, timeoutMs = 5000): Promise<void> {
  const c = redisConnection(url) as { host: string; port: number; tls?: object };
  if (c.tls) return;
  await new Promise<void>((resolve, reject) => {
    const socket = connect(c.port, c.host);
    const fail = (why: string) => { socket.destroy(); reject(new Error(`cannot reach Redis at ${url}: ${why}`)); };
    socket.setTimeout(timeoutMs, () => fail(`no answer within ${timeoutMs / 1000} s`));
    socket.once("error", (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (d) => {
      socket.destroy();
      // +PONG, or an error such as -NOAUTH: either way a Redis answers
      if (d[0] === 0x2b || d[0] === 0x2d) resolve();
      else reject(new Error(`${url} does not answer like Redis`));
    });
  });
}

/** The BullMQ queue name: ?name= in the URL, default "ssd1b". */
export function queueName(url: string): string {
  const name = new URL(url).searchParams.get("name") ?? "ssd1b";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw new Error(`bad queue name ${JSON.stringify(name)}`);
  return name;
}

/** The Redis keys and channel this project adds next to BullMQ's. */
export function redisKeys(name: string) {
  return {
    cancelChannel: `ssd1b:${name}:cancel`,
    cancelled: (id: string) => `ssd1b:${name}:cancelled:${id}`,
    result: (id: string) => `ssd1b:${name}:result:${id}`,
    model: `ssd1b:${name}:model`,
  };
}

/** The ioredis commands used here besides BullMQ's (BullMQ types its client narrowly). */
export interface RedisCommands {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, mode?: "EX", seconds?: number): Promise<unknown>;
  del(key: string): Promise<number>;
  publish(channel: string, message: string): Promise<number>;
  subscribe(channel: string): Promise<unknown>;
  duplicate(): RedisCommands;
  on(event: string, listener: (...args: never[]) => void): unknown;
  disconnect(): void;
}

export async function commands(client: Promise<unknown>): Promise<RedisCommands> {
  return (await client) as RedisCommands;
}

/** How long a request waits for Redis before answering 503. */
const REDIS_TIMEOUT_MS = 5000;

/** How long results, cancel marks and finished BullMQ jobs stay in Redis. */
export const KEEP_SECONDS = 3600;

/** What a worker reports with each step. */
export interface ProgressData {
  step: number;
  totalSteps: number;
  /** base64 PNG latent preview (sent every few hundred ms). */
  preview?: string;
}

export class RedisQueue extends JobQueue {
  readonly mode = "redis" as const;
  private modelInfo: ModelInfo;
  private workers = 1;
  private poller?: NodeJS.Timeout;
  private readonly settling = new Set<string>();
  private readonly keys: ReturnType<typeof redisKeys>;

  private constructor(
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    name: string,
    maxQueue: number,
    files: FileStore,
    fallbackModel: string,
    private readonly log: (line: string) => void,
  ) {
    super(maxQueue, files);
    this.keys = redisKeys(name);
    this.modelInfo = { name: fallbackModel };
  }

  /** Connects to Redis, starts following events; fails when Redis cannot be reached within timeoutMs. */
  static async connect(url: string, opts: { maxQueue: number; files: FileStore; model: string; log?: (line: string) => void; timeoutMs?: number }): Promise<RedisQueue> {
    const connection = redisConnection(url);
    const name = queueName(url);
    await probeRedis(url);
    const queue = new Queue(name, { connection, streams: { events: { maxLen: 2000 } } });
    const events = new QueueEvents(name, { connection });
    const noop = () => {};
    queue.on("error", noop);
    events.on("error", noop);
    const timeout = opts.timeoutMs ?? 10000;
    try {
      await withTimeout(Promise.all([queue.waitUntilReady(), events.waitUntilReady()]), timeout, `cannot reach Redis at ${url} within ${timeout / 1000} s`);
    } catch (e) {
      // close() would wait for a connection that never comes
      await withTimeout(Promise.allSettled([queue.disconnect(), events.disconnect()]), 2000, "").catch(() => {});
      throw e;
    }
    const q = new RedisQueue(queue, events, name, opts.maxQueue, opts.files, opts.model, opts.log ?? (() => {}));
    q.follow();
    await q.refresh();
    return q;
  }

  model(): ModelInfo { return this.modelInfo; }

  protected override parallelism(): number { return this.workers; }

  async submit(spec: JobSpec): Promise<Job> {
    let waiting: number;
    try {
      waiting = await withTimeout(this.queue.getJobCountByTypes("waiting", "paused", "prioritized", "delayed"), REDIS_TIMEOUT_MS, "no answer from Redis");
    } catch (e) {
      throw new HttpError(503, `the job queue (Redis) is unavailable: ${(e as Error).message}`, "server_error", "queue_unavailable");
    }
    if (waiting >= this.maxQueue) throw queueFull(this.maxQueue, this.retryAfterSeconds());
    const job = new Job(newJobId(), spec);
    job.onCancel = (reason) => void this.cancelRemote(job, reason).catch((e) => this.log(`cancel ${job.id}: ${(e as Error).message}`));
    this.register(job);
    try {
      await withTimeout(this.queue.add("generate", spec, {
        jobId: job.id, attempts: 1,
        removeOnComplete: { age: KEEP_SECONDS, count: 1000 }, removeOnFail: { age: KEEP_SECONDS, count: 1000 },
      }), REDIS_TIMEOUT_MS, "no answer from Redis");
    } catch (e) {
      const err = new HttpError(503, `the job queue (Redis) is unavailable: ${(e as Error).message}`, "server_error", "queue_unavailable");
      job.fail(err);
      throw err;
    }
    job.queued(waiting);
    return job;
  }

  private follow(): void {
    const mine = (id: string) => { const j = this.jobs.get(id); return j && !j.finished ? j : undefined; };
    this.events.on("active", ({ jobId }) => mine(jobId)?.started());
    this.events.on("progress", ({ jobId, data }) => {
      const job = mine(jobId);
      if (!job || typeof data !== "object" || data === null) return;
      const p = data as unknown as ProgressData;
      const png = p.preview ? Buffer.from(p.preview, "base64") : undefined;
      // between previews the last one stands
      const last = job.preview;
      job.progress(p.step, p.totalSteps, png ? () => png : last ?? (() => undefined));
    });
    this.events.on("completed", ({ jobId }) => { if (mine(jobId)) void this.settle(jobId, "completed"); });
    this.events.on("failed", ({ jobId, failedReason }) => { mine(jobId)?.fail(errorFromWire(failedReason)); });
    this.events.on("removed", ({ jobId }) => { mine(jobId)?.fail(toHttpError(new Error("the job was removed from the queue"))); });
    this.poller = setInterval(() => void this.refresh().catch(() => {}), 2000);
    this.poller.unref();
  }

  /** Reads a completed job's result from its key. */
  private async settle(id: string, state: string): Promise<void> {
    const job = this.jobs.get(id);
    if (!job || job.finished || this.settling.has(id)) return;
    this.settling.add(id);
    try {
      const client = await commands(this.queue.client);
      if (state === "completed") {
        const text = await client.get(this.keys.result(id));
        if (!text) throw new Error(`the result of job ${id} is missing from Redis`);
        await client.del(this.keys.result(id));
        this.complete(job, outputFromJson(JSON.parse(text) as JobOutputJson));
      } else if (state === "failed") {
        const bj = await this.queue.getJob(id);
        job.fail(errorFromWire(bj?.failedReason ?? "the job failed"));
      } else {
        job.fail(toHttpError(new Error(`job ${id} is no longer in Redis (state ${state})`)));
      }
    } catch (e) {
      job.fail(toHttpError(e));
    } finally {
      this.settling.delete(id);
    }
  }

  /** Catches missed events, the model a worker reported and the number of workers. */
  private async refresh(): Promise<void> {
    const client = await commands(this.queue.client);
    const model = await client.get(this.keys.model);
    if (model) {
      try { this.modelInfo = JSON.parse(model) as ModelInfo; } catch { /* keep */ }
    }
    this.workers = Math.max(1, (await this.queue.getWorkersCount().catch(() => 1)) || 1);
    const now = Date.now();
    for (const job of this.jobs.values()) {
      if (job.finished || now - job.createdAt < 3000) continue;
      const state = await this.queue.getJobState(job.id);
      if (state === "completed" || state === "failed" || state === "unknown") await this.settle(job.id, state);
      else if (state === "active" && job.status === "queued") job.started();
    }
  }

  private async cancelRemote(job: Job, reason: CancelReason): Promise<void> {
    const client = await commands(this.queue.client);
    await client.set(this.keys.cancelled(job.id), reason, "EX", KEEP_SECONDS);
    await client.publish(this.keys.cancelChannel, JSON.stringify({ id: job.id, reason }));
    const bj = await this.queue.getJob(job.id);
    if (bj && (await bj.isWaiting())) {
      try {
        await bj.remove();
        job.fail(toHttpError(new Error(reason)));
      } catch { /* taken by a worker meanwhile: it sees the cancel mark */ }
    }
  }

  async close(): Promise<void> {
    if (this.poller) clearInterval(this.poller);
    for (const job of this.jobs.values()) if (!job.finished) job.fail(new HttpError(503, "the server is shutting down", "server_error", "shutting_down"));
    await Promise.allSettled([this.events.close(), this.queue.close()]);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]);
}
