/**
 * Scale-out through Redis with BullMQ: the front end (`ssd1b serve --queue redis://...`) adds jobs
 * to a BullMQ queue and follows them through QueueEvents (active, progress with previews,
 * completed, failed); workers (`ssd1b worker`, redis-worker.ts) run them. Results travel in a
 * Redis key of their own (not in BullMQ's event stream); cancellation is a Redis pub/sub message
 * plus a key a worker checks before it starts. A poll every few seconds catches any event missed
 * and releases the jobs of workers that died (reapDeadWorkers). --max-queue is taken atomically in
 * Redis (ADMIT_LUA), so any number of front ends share it.
 */
import { Redis, type RedisOptions } from "ioredis";
import { Queue, QueueEvents, type ConnectionOptions } from "bullmq";
import { HttpError, errorFromWire, queueFull, toHttpError, type CancelReason } from "./errors.js";
import { Job, newJobId, outputFromJson, type JobOutputJson, type JobSpec } from "./job.js";
import { JobQueue, queueEntry, type ModelInfo, type QueueEntry } from "./queue.js";
import type { FileStore } from "./file-store.js";

/** ioredis options from redis://[user:password@]host[:port][/db][?name=queue] (rediss:// for TLS), parsed by ioredis. */
export function redisConnection(url: string): ConnectionOptions {
  if (!/^rediss?:\/\//i.test(url)) throw new Error(`--queue must be a redis:// URL, got ${JSON.stringify(url)}`);
  let o: RedisOptions;
  try {
    // lazyConnect: only the parsed options are wanted, no connection
    const parser = new Redis(url, { lazyConnect: true });
    o = parser.options;
    parser.disconnect();
  } catch {
    throw new Error(`--queue must be a redis:// URL, got ${JSON.stringify(url)}`);
  }
  const db = o.db ?? 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`bad Redis database number in ${url}`);
  return { host: o.host, port: o.port, username: o.username, password: o.password, db, tls: o.tls, family: o.family, maxRetriesPerRequest: null };
}

/**
 * Fails fast when no Redis answers PING at the URL (BullMQ's client would retry for ever and keep
 * the process alive); a wrong password fails here too, with Redis's own message.
 */
export async function probeRedis(url: string, timeoutMs = 5000): Promise<void> {
  const client = new Redis({
    ...(redisConnection(url) as RedisOptions),
    lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null,
  });
  // connect() rejects with "Connection is closed."; the socket's own error says why
  let first: Error | undefined;
  client.on("error", (e: Error) => { first ??= e; });
  try {
    await withTimeout((async () => { await client.connect(); await client.ping(); })(), timeoutMs, `no answer within ${timeoutMs / 1000} s`);
  } catch (e) {
    const err = (first ?? e) as NodeJS.ErrnoException;
    throw new Error(`cannot reach Redis at ${url}: ${err.code ?? err.message}`);
  } finally {
    client.disconnect();
  }
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
    /** Places in the queue handed out whose BullMQ job is not added yet (sorted set: job id -> time). */
    admitting: `ssd1b:${name}:admitting`,
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
  ping(): Promise<string>;
  readonly status: string;
  zrem(key: string, member: string): Promise<number>;
  lrange(key: string, start: number, stop: number): Promise<string[]>;
  hget(key: string, field: string): Promise<string | null>;
  defineCommand(name: string, def: { numberOfKeys: number; lua: string }): void;
  /** ADMIT_LUA, defined on the queue's client in RedisQueue.connect. */
  ssd1bAdmit(...args: (string | number)[]): Promise<number>;
}

export async function commands(client: Promise<unknown>): Promise<RedisCommands> {
  return (await client) as RedisCommands;
}

/**
 * The queue limit, checked and taken in one step inside Redis (front ends check-then-add in
 * parallel otherwise, and 50 concurrent submits against --max-queue 5 got 36 in). Counts BullMQ's
 * waiting jobs plus places handed out whose job is not added yet (those whose job hash exists are
 * counted by BullMQ already; a place not used within ADMIT_TTL_MS, a front end that died between
 * the two steps, lapses). Returns the waiting count before this job, or -1 when full.
 * KEYS: wait, paused, prioritized, delayed, admitting. ARGV: max, now (ms), job id, ttl (ms), job key prefix.
 */
const ADMIT_LUA = `
local n = redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]) + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[4]))
for _, id in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  if redis.call('EXISTS', ARGV[5] .. id) == 1 then redis.call('ZREM', KEYS[5], id) else n = n + 1 end
end
if n >= tonumber(ARGV[1]) then return -1 end
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[3])
return n
`;
const ADMIT_TTL_MS = 30000;

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
  /** Running jobs whose worker had no connection at the last poll. */
  private missingOwners = new Set<string>();
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
    (await commands(queue.client)).defineCommand("ssd1bAdmit", { numberOfKeys: 5, lua: ADMIT_LUA });
    const q = new RedisQueue(queue, events, name, opts.maxQueue, opts.files, opts.model, opts.log ?? (() => {}));
    q.follow();
    await q.refresh();
    return q;
  }

  model(): ModelInfo { return this.modelInfo; }

  protected override parallelism(): number { return this.workers; }

  async submit(spec: JobSpec): Promise<Job> {
    const id = newJobId();
    const k = this.queue.keys;
    let waiting: number;
    try {
      const client = await commands(this.queue.client);
      waiting = await withTimeout(client.ssd1bAdmit(k.wait, k.paused, k.prioritized, k.delayed, this.keys.admitting, this.maxQueue, Date.now(), id, ADMIT_TTL_MS, this.queue.toKey("")),
        REDIS_TIMEOUT_MS, "no answer from Redis");
    } catch (e) {
      throw queueDown(e);
    }
    if (waiting < 0) throw queueFull(this.maxQueue, this.retryAfterSeconds());
    const job = new Job(id, spec);
    job.onCancel = (reason) => void this.cancelRemote(job, reason).catch((e) => this.log(`cancel ${job.id}: ${(e as Error).message}`));
    // interrupt / skip reach the worker on the cancel channel too, as { id, stop }
    job.onStop = (action) => void commands(this.queue.client).then((c) => c.publish(this.keys.cancelChannel, JSON.stringify({ id: job.id, stop: action })))
      .catch((e) => this.log(`${action} ${job.id}: ${(e as Error).message}`));
    this.register(job);
    try {
      await withTimeout(this.queue.add("generate", spec, {
        jobId: job.id, attempts: 1,
        removeOnComplete: { age: KEEP_SECONDS, count: 1000 }, removeOnFail: { age: KEEP_SECONDS, count: 1000 },
      }), REDIS_TIMEOUT_MS, "no answer from Redis");
    } catch (e) {
      const err = queueDown(e);
      job.fail(err);
      throw err;
    } finally {
      // the job hash counts it from now on (or the add failed): give the place back
      void commands(this.queue.client).then((c) => c.zrem(this.keys.admitting, id)).catch(() => {});
    }
    job.queued(waiting);
    return job;
  }

  /** From BullMQ, so the jobs other front ends queued show too (this server's own with their ETA). */
  override async listActive(): Promise<QueueEntry[]> {
    const [active, waiting] = await withTimeout(Promise.all([this.queue.getJobs(["active"], 0, 49, true), this.queue.getJobs(["prioritized", "waiting"], 0, 99, true)]),
      REDIS_TIMEOUT_MS, "no answer from Redis").catch((e) => { throw queueDown(e); });
    const entry = (b: (typeof active)[number], status: QueueEntry["status"]): QueueEntry => {
      const own = b.id ? this.jobs.get(b.id) : undefined;
      if (own && !own.finished) return { ...queueEntry(own), status };
      const p = (typeof b.progress === "object" && b.progress ? b.progress : {}) as Partial<ProgressData>;
      const spec = b.data as Partial<JobSpec> | undefined;
      return { id: b.id ?? "", status, prompt: String(spec?.prompt ?? ""), step: Number(p.step) || 0, totalSteps: Number(p.totalSteps) || 0, etaSeconds: 0, createdAt: b.timestamp };
    };
    return [...active.map((b) => entry(b, "running")), ...waiting.map((b) => entry(b, "queued"))];
  }

  override async unavailable(): Promise<string | undefined> {
    try {
      const client = await withTimeout(commands(this.queue.client), 1000, "no connection");
      if (client.status !== "ready") return `the job queue (Redis) is unreachable: connection ${client.status}`;
      await withTimeout(client.ping(), 1000, "no answer to PING within 1 s");
      return undefined;
    } catch (e) {
      return `the job queue (Redis) is unreachable: ${(e as Error).message}`;
    }
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
    const workers = await this.queue.getWorkers().catch(() => undefined);
    this.workers = Math.max(1, workers?.length ?? 1);
    if (workers) await this.reapDeadWorkers(client, workers.map((w) => String(w.rawname ?? "")));
    const now = Date.now();
    for (const job of this.jobs.values()) {
      if (job.finished || now - job.createdAt < 3000) continue;
      const state = await this.queue.getJobState(job.id);
      if (state === "completed" || state === "failed" || state === "unknown") await this.settle(job.id, state);
      else if (state === "active" && job.status === "queued") job.started();
    }
  }

  /**
   * A worker killed mid-job (kill -9, OOM) drops its Redis connections at once, but its job's lock
   * would only lapse after lockDuration. A running job whose worker (BullMQ's processedBy) has had no
   * connection in two polls in a row loses its lock here, so that the workers' next stalled-job check
   * (stalledInterval) puts it back in the queue. Two polls: a worker reconnecting after a network blip
   * keeps its job. A worker whose event loop is busy (a long UNet step) keeps its connection, so it
   * is never taken for dead: the lock must only outlast such pauses.
   */
  private async reapDeadWorkers(client: RedisCommands, connectionNames: string[]): Promise<void> {
    const live = new Set(connectionNames.filter((n) => n.includes(":w:")).map((n) => n.slice(n.indexOf(":w:") + 3)));
    const missing = new Set<string>();
    for (const id of await client.lrange(this.queue.keys.active, 0, -1)) {
      const owner = await client.hget(this.queue.toKey(id), "pb");
      if (!owner || live.has(owner)) continue;
      if (this.missingOwners.has(id)) {
        await client.del(`${this.queue.toKey(id)}:lock`);
        this.log(`job ${id}: its worker ${owner} is gone; released for another worker`);
      } else missing.add(id);
    }
    this.missingOwners = missing;
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

const queueDown = (e: unknown) => new HttpError(503, `the job queue (Redis) is unavailable: ${(e as Error).message}`, "server_error", "queue_unavailable");

export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]);
}
