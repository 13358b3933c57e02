/**
 * `snapshotDownload({ repoId })`: the files a repo's pipeline (or component, LoRA, single file) needs,
 * in huggingface_hub's cache layout; a cached snapshot that already has them is used without asking the
 * Hub anything. Files come several at a time; each blob is locked while it is written (a server and its
 * workers may fetch the same repo at once), resumed from a partial file, checked against its ETag, and
 * the snapshot's links and refs are made only once every blob is complete, so a failed download leaves no
 * half-made snapshot behind. @huggingface/hub's own snapshotDownload is not used: it has no file filter,
 * no progress, no resume, no lock, no checksum, and names snapshots by each file's last commit rather
 * than the revision's commit, which huggingface_hub (Python) would not find.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileMetadata, HubError, listRepoFiles, resolveCommit, type RepoFile } from "./hub-api.js";
import { ChecksumError, downloadBlob, TransferError } from "./download-blob.js";
import { RepoCache } from "./cache-layout.js";
import { withFileLock } from "./file-lock.js";
import { missingFiles } from "./local-completeness.js";
import { selectFiles, type RepoKind, type SelectRequest, type WeightVariant } from "./select-files.js";
import { hubSettings, type HubOptions, type HubSettings } from "./settings.js";

export interface DownloadRequest extends Omit<SelectRequest, "modelIndex"> {
  revision?: string;
}

export interface DownloadResult {
  repoId: string;
  commit: string;
  snapshot: string;
  /** What to load: the snapshot folder, or the file for LoRA and single-file repos. */
  path: string;
  kind: RepoKind;
  variant?: WeightVariant;
  /** Repo paths whose bytes were fetched in this call (empty when the cache had everything). */
  fetched: string[];
  /** Bytes received in this call. */
  bytes: number;
  fromCache: boolean;
  notes: string[];
}

/** The kind of a cached snapshot, and for LoRA / single-file repos the file, read from the disk. */
function cachedKind(snapshot: string, req: DownloadRequest): { kind: RepoKind; file?: string } | undefined {
  if (!existsSync(snapshot)) return undefined;
  if (req.file) return { kind: req.kind ?? "file", file: req.file };
  if (req.kind !== "lora" && req.kind !== "file") {
    if (existsSync(join(snapshot, "model_index.json"))) return { kind: req.kind ?? "pipeline" };
    if (existsSync(join(snapshot, "config.json"))) return { kind: req.kind ?? "component" };
  }
  const root = readdirSync(snapshot).filter((f) => f.endsWith(".safetensors"));
  const file = root.includes("pytorch_lora_weights.safetensors") && req.kind === "lora" ? "pytorch_lora_weights.safetensors" : root.length === 1 ? root[0] : undefined;
  return file ? { kind: req.kind ?? "file", file } : undefined;
}

function fromCache(cache: RepoCache, commit: string, req: DownloadRequest): DownloadResult | undefined {
  if (req.include?.length) return undefined; // extra files asked for: only the listing says whether they are all there
  const snapshot = cache.snapshot(commit);
  const k = cachedKind(snapshot, req);
  if (!k || missingFiles(snapshot, k.kind, { variant: req.variant, file: k.file }).length) return undefined;
  return { repoId: req.repoId, commit, snapshot, path: k.file ? join(snapshot, k.file) : snapshot, kind: k.kind, variant: req.variant, fetched: [], bytes: 0, fromCache: true, notes: [] };
}

function offlineError(cache: RepoCache, req: DownloadRequest, revision: string, commit: string | undefined): HubError {
  const name = `${req.repoId}${req.file ? `/${req.file}` : ""}@${revision}`;
  let where = `not in the cache at ${cache.dir}`;
  if (commit) {
    const snapshot = cache.snapshot(commit);
    const k = cachedKind(snapshot, req);
    const missing = k ? missingFiles(snapshot, k.kind, { variant: req.variant, file: k.file }) : ["the model files"];
    where = `incomplete in the cache at ${snapshot}: missing ${missing.slice(0, 6).join(", ")}${missing.length > 6 ? ", ..." : ""}`;
  }
  return new HubError(`offline (HF_HUB_OFFLINE=1 or --offline): ${name} is ${where}. Run once with the network, or: ssd1b download ${req.repoId}`);
}

/** Runs `jobs` with at most `n` at a time; the first failure aborts the rest. */
async function pool<T>(items: T[], n: number, job: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  let next = 0, failure: unknown;
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++];
      try {
        await job(item, ac.signal);
      } catch (e) {
        failure ??= e;
        ac.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure !== undefined) throw failure;
}

export async function snapshotDownload(req: DownloadRequest, opts: HubOptions = {}): Promise<DownloadResult> {
  const s = hubSettings(opts);
  const revision = req.revision ?? "main";
  const cache = new RepoCache(s.cacheDir, req.repoId);
  const cachedCommit = cache.commitOf(revision);
  const hit = cachedCommit && fromCache(cache, cachedCommit, req);
  if (hit) return hit;
  if (s.offline) throw offlineError(cache, req, revision, cachedCommit);

  const commit = await resolveCommit(s, req.repoId, revision);
  const listing = await listRepoFiles(s, req.repoId, commit);
  const transfer = new Transfer(s, cache, req.repoId, commit);
  let modelIndex: Record<string, unknown> | undefined;
  const indexEntry = listing.find((f) => f.path === "model_index.json");
  if (!req.kind && !req.file && indexEntry || req.kind === "pipeline") {
    if (!indexEntry) throw new HubError(`${req.repoId}: no model_index.json (not a diffusers pipeline repo)`);
    const blob = await transfer.fetchAll([indexEntry]);
    try {
      modelIndex = JSON.parse(readFileSync(blob[0], "utf8")) as Record<string, unknown>;
    } catch (e) {
      throw new HubError(`${req.repoId}: model_index.json is not valid JSON (${(e as Error).message})`);
    }
  }
  const sel = selectFiles(listing, { ...req, modelIndex });
  await transfer.fetchAll(sel.files);
  for (const [path, etag] of transfer.etags) cache.linkIntoSnapshot(commit, path, etag);
  cache.writeRef(revision, commit);
  const snapshot = cache.snapshot(commit);
  const single = sel.kind === "lora" || sel.kind === "file" ? sel.files[0].path : undefined;
  return {
    repoId: req.repoId, commit, snapshot, path: single ? join(snapshot, single) : snapshot, kind: sel.kind, variant: sel.variant,
    fetched: transfer.fetched, bytes: transfer.received, fromCache: false, notes: sel.notes,
  };
}

/** The blobs of one download: sizes for the progress total, one lock per blob, retries. */
class Transfer {
  readonly etags = new Map<string, string>();
  readonly fetched: string[] = [];
  received = 0;
  private bytes = 0;
  private total = 0;
  private files = 0;
  private filesDone = 0;

  constructor(private s: HubSettings, private cache: RepoCache, private repoId: string, private commit: string) {}

  /** Downloads what is not in blobs/ yet; returns the blob paths, in order. */
  async fetchAll(files: RepoFile[]): Promise<string[]> {
    const todo = files.filter((f) => !this.have(f.lfs?.oid ?? f.oid, f.lfs?.size ?? f.size));
    this.files += todo.length;
    this.total += todo.reduce((n, f) => n + (f.lfs?.size ?? f.size), 0);
    const blobs = new Map<string, string>();
    await pool(files, this.s.concurrency, async (f, signal) => { blobs.set(f.path, await this.fetchOne(f, signal)); });
    return files.map((f) => blobs.get(f.path)!);
  }

  private have(etag: string, size: number): boolean {
    const blob = this.cache.blob(etag);
    return etag !== "" && existsSync(blob) && statSync(blob).size === size;
  }

  private report(file: string, fileBytes: number, fileTotal: number, event: "start" | "data" | "done"): void {
    this.s.onProgress?.({ repoId: this.repoId, file, fileBytes, fileTotal, bytes: this.bytes, total: this.total, filesDone: this.filesDone, files: this.files, event });
  }

  private async fetchOne(f: RepoFile, signal: AbortSignal): Promise<string> {
    const meta = await fileMetadata(this.s, this.repoId, this.commit, f.path);
    this.etags.set(f.path, meta.etag);
    const blob = this.cache.blob(meta.etag);
    if (this.have(meta.etag, meta.size)) return blob;
    await withFileLock(this.cache.lock(meta.etag), async () => {
      if (this.have(meta.etag, meta.size)) return; // another process finished it while we waited
      let counted = 0, checksumRetries = 0, transferRetries = 0;
      this.report(f.path, 0, meta.size, "start");
      for (;;) {
        try {
          await downloadBlob(this.s, {
            meta, blob, signal,
            onBytes: (onDisk, received) => {
              this.received += received;
              this.bytes += onDisk - counted;
              counted = onDisk;
              this.report(f.path, onDisk, meta.size, "data");
            },
          });
          break;
        } catch (e) {
          this.bytes -= counted;
          counted = 0;
          if (e instanceof ChecksumError && checksumRetries++ < 1) continue;
          if (e instanceof TransferError && transferRetries++ < 3) continue; // resumes with a Range request
          if (e instanceof ChecksumError) throw new HubError(`${this.repoId}/${f.path}: the checksum did not match twice (expected ${meta.etag}); the download is corrupted on the way (a proxy?) — nothing was kept`);
          throw e;
        }
      }
      this.filesDone++;
      this.fetched.push(f.path);
      this.report(f.path, meta.size, meta.size, "done");
    }, { signal });
    return blob;
  }
}
