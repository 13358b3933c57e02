/**
 * A lock file between processes that download into one cache (a server and its workers). Node has no
 * flock(), which is what huggingface_hub's filelock uses, so the lock is a file created exclusively,
 * holding its owner's pid and host, kept fresh by a heartbeat; a lock whose owner died (same host, pid
 * gone) or that has not been touched for `staleMs` is taken over. It sits in the cache's `.locks/` under
 * its own name, so a lock file that Python leaves behind never blocks us. Against a Python process
 * downloading the same file at the same moment it does not help; the checksum still keeps a mixed-up
 * file out of blobs/.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";

export interface LockOptions { staleMs?: number; pollMs?: number; signal?: AbortSignal }

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function isStale(path: string, staleMs: number): boolean {
  try {
    const age = Date.now() - statSync(path).mtimeMs;
    const owner = JSON.parse(readFileSync(path, "utf8")) as { pid?: number; host?: string };
    if (owner.host === hostname() && typeof owner.pid === "number" && !alive(owner.pid)) return true;
    return age > staleMs;
  } catch {
    // unreadable or half-written: stale only once it has been left alone for a while
    try { return Date.now() - statSync(path).mtimeMs > staleMs; } catch { return false; }
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, "wx");
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }));
    closeSync(fd);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const staleMs = opts.staleMs ?? 30_000, pollMs = opts.pollMs ?? 100;
  mkdirSync(dirname(path), { recursive: true });
  while (!tryCreate(path)) {
    if (isStale(path, staleMs)) rmSync(path, { force: true });
    else await sleep(pollMs, undefined, { signal: opts.signal });
  }
  const beat = setInterval(() => { try { const now = new Date(); utimesSync(path, now, now); } catch { /* gone: taken over */ } }, staleMs / 4);
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    rmSync(path, { force: true });
  }
}
