/**
 * One file from the Hub into blobs/<etag>: written to `<etag>.incomplete`, continued with an HTTP
 * Range request when a partial file is already there (a killed process, a cut connection), its
 * checksum compared with the ETag (sha256 for LFS files, the git blob id for small files), and only
 * then renamed into place. huggingface_hub does the same except the checksum, which it skips.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync, truncateSync } from "node:fs";
import { dirname } from "node:path";
import { open } from "node:fs/promises";
import { authHeaders, HubError, isNetworkError, unreachable, type FileMetadata } from "./hub-api.js";
import type { HubSettings } from "./settings.js";

export class ChecksumError extends HubError {}

/** Connection troubles worth resuming from: a cut body, a reset, a timeout. */
export class TransferError extends HubError {}

type Checksum = { hash: Hash; expected: string } | undefined;

function checksumFor(meta: FileMetadata): Checksum {
  if (/^[0-9a-f]{64}$/.test(meta.etag)) return { hash: createHash("sha256"), expected: meta.etag };
  if (/^[0-9a-f]{40}$/.test(meta.etag)) {
    const hash = createHash("sha1");
    hash.update(`blob ${meta.size}\0`);
    return { hash, expected: meta.etag };
  }
  return undefined; // an ETag of another form (some mirrors): the size is still checked
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

export interface BlobDownload {
  meta: FileMetadata;
  blob: string;
  /** Bytes of this file now on disk (after reading a partial file, then per chunk) and how many just came in. */
  onBytes: (bytesOnDisk: number, received: number) => void;
  signal?: AbortSignal;
}

export async function downloadBlob(s: HubSettings, d: BlobDownload): Promise<void> {
  const { meta, blob } = d;
  const incomplete = `${blob}.incomplete`;
  mkdirSync(dirname(blob), { recursive: true });
  let have = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (have > meta.size) {
    truncateSync(incomplete, 0);
    have = 0;
  }
  let sum = checksumFor(meta);
  if (have > 0 && sum) await hashFile(incomplete, sum.hash);
  d.onBytes(have, 0);

  const headers: Record<string, string> = authHeaders(s);
  if (have > 0) headers.range = `bytes=${have}-`;
  let res: Response;
  try {
    res = await fetch(meta.location, { headers, signal: d.signal });
  } catch (e) {
    if (d.signal?.aborted) throw e;
    throw isNetworkError(e) ? unreachable(s, e) : e;
  }
  if (res.status === 416 && have === meta.size) {
    await res.body?.cancel();
  } else {
    if (!res.ok) throw new HubError(`downloading ${meta.location}: HTTP ${res.status}`);
    if (have > 0 && res.status !== 206) {
      // the server ignored the Range: start over
      truncateSync(incomplete, 0);
      have = 0;
      sum = checksumFor(meta);
    }
    const fh = await open(incomplete, have > 0 ? "a" : "w");
    // Read through a reader that an abort cancels: a read pending on an aborted fetch's body has been
    // seen never to settle (undici), which left the whole download waiting on nothing.
    const reader = res.body!.getReader();
    const cancel = () => { reader.cancel().catch(() => {}); };
    d.signal?.addEventListener("abort", cancel, { once: true });
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        sum?.hash.update(chunk);
        await fh.write(chunk);
        have += chunk.byteLength;
        d.onBytes(have, chunk.byteLength);
      }
      d.signal?.throwIfAborted();
    } catch (e) {
      if (d.signal?.aborted) throw d.signal.reason ?? e;
      throw new TransferError(`the connection broke after ${have} of ${meta.size} bytes of ${meta.location} (${(e as Error).message}); the partial file is kept and continued next time`);
    } finally {
      d.signal?.removeEventListener("abort", cancel);
      await fh.close();
    }
  }
  if (have !== meta.size) {
    throw new TransferError(`${meta.location}: got ${have} bytes, expected ${meta.size}; the partial file is kept and continued next time`);
  }
  const got = sum?.hash.digest("hex");
  if (sum && got !== sum.expected) {
    rmSync(incomplete, { force: true });
    throw new ChecksumError(`${meta.location}: checksum mismatch (expected ${sum.expected}, got ${got}); the file was deleted`);
  }
  renameSync(incomplete, blob);
}
