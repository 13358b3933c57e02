/**
 * A local stand-in for the Hugging Face Hub's HTTP API on 127.0.0.1, enough for downloads: model info
 * (`/api/models/O/N/revision/REV`), the tree listing (paginated with a Link header), `paths-info`, and
 * `HEAD`/`GET /O/N/resolve/REV/PATH` with X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size, LFS files
 * redirected to a CDN-like `/lfs/SHA256` path with Range support, 401/404 with X-Error-Code. Faults can
 * be injected per file: cut the connection after N bytes, stall, or flip a byte.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";

export interface FakeRepo {
  repoId: string;
  files: Record<string, Buffer>;
  /** A token the repo needs (private repo). */
  token?: string;
}

interface StoredFile { path: string; data: Buffer; lfs: boolean; sha256: string; gitOid: string }

export interface Fault {
  /** Send this many bytes of the response body, then end the connection. */
  cutAfter?: number;
  /** Send this many bytes, then hang (the client must be killed). */
  stallAfter?: number;
  /** Flip one byte in the body. */
  corrupt?: boolean;
  /** How many GETs it applies to (default 1). */
  times?: number;
}

export interface RequestRecord { method: string; url: string; range?: string; auth?: string; bodyBytes: number }

const gitOid = (data: Buffer) => createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

export class FakeHub {
  readonly requests: RequestRecord[] = [];
  readonly faults = new Map<string, Fault>();
  /** Tree listing page size (pagination through the Link header). */
  pageSize = 5;
  private repos = new Map<string, { repo: FakeRepo; commit: string; files: StoredFile[] }>();
  private server = createServer((req, res) => this.handle(req, res));
  url = "";

  static async start(repos: FakeRepo[]): Promise<FakeHub> {
    const hub = new FakeHub();
    for (const r of repos) hub.add(r);
    await new Promise<void>((ok) => hub.server.listen(0, "127.0.0.1", ok));
    hub.url = `http://127.0.0.1:${(hub.server.address() as AddressInfo).port}`;
    return hub;
  }

  add(repo: FakeRepo): string {
    const files = Object.entries(repo.files).map(([path, data]) => ({
      path, data, lfs: path.endsWith(".safetensors") || path.endsWith(".bin") || data.length > 10_000, sha256: sha256(data), gitOid: gitOid(data),
    }));
    const commit = createHash("sha1").update(repo.repoId).update(JSON.stringify(files.map((f) => [f.path, f.sha256]))).digest("hex");
    this.repos.set(repo.repoId, { repo, commit, files });
    return commit;
  }

  commitOf(repoId: string): string { return this.repos.get(repoId)!.commit; }
  fileInfo(repoId: string, path: string): StoredFile { return this.repos.get(repoId)!.files.find((f) => f.path === path)!; }

  /** GET requests for the bytes of a file (resolve for small files, the CDN path for LFS ones). */
  gets(repoId: string, path: string): RequestRecord[] {
    const f = this.fileInfo(repoId, path);
    return this.requests.filter((r) => r.method === "GET" && (f.lfs ? r.url.startsWith(`/lfs/${f.sha256}`) : r.url.includes(`/resolve/`) && r.url.endsWith(`/${path}`)));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((ok) => this.server.close(() => ok()));
  }

  private lfsFile(sha: string): StoredFile | undefined {
    for (const { files } of this.repos.values()) for (const f of files) if (f.lfs && f.sha256 === sha) return f;
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const record: RequestRecord = { method: req.method ?? "", url: req.url ?? "", range: req.headers.range, auth: req.headers.authorization, bodyBytes: 0 };
    this.requests.push(record);
    const url = new URL(req.url ?? "/", "http://x");
    const deny = (status: number, code: string) => { res.writeHead(status, { "x-error-code": code, "content-type": "application/json" }); res.end(JSON.stringify({ error: code })); };
    let m: RegExpExecArray | null;
    if ((m = /^\/lfs\/([0-9a-f]{64})$/.exec(url.pathname))) {
      const f = this.lfsFile(m[1]);
      if (!f) return deny(404, "EntryNotFound");
      return this.sendBytes(req, res, f, record, {});
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/([^/]+)/.exec(url.pathname) ?? /^\/([^/]+\/[^/]+)\/(resolve)\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!m) return deny(404, "NotFound");
    const [, repoId, what, rev] = m;
    const entry = this.repos.get(repoId);
    const auth = req.headers.authorization;
    if (!entry || (entry.repo.token && auth !== `Bearer ${entry.repo.token}`)) {
      // the Hub does not tell a private repo from a missing one
      return deny(auth ? 404 : 401, "RepoNotFound");
    }
    const revision = decodeURIComponent(rev);
    if (revision !== "main" && revision !== entry.commit) return deny(404, "RevisionNotFound");
    const json = (body: unknown, headers: Record<string, string> = {}) => { res.writeHead(200, { "content-type": "application/json", ...headers }); res.end(JSON.stringify(body)); };
    const treeEntry = (f: StoredFile) => ({
      type: "file", path: f.path, size: f.lfs ? 134 : f.data.length, oid: f.lfs ? gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${f.sha256}\nsize ${f.data.length}\n`)) : f.gitOid,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
    });
    if (what === "revision") {
      return json({ _id: `id-${repoId}`, id: repoId, sha: entry.commit, private: !!entry.repo.token, gated: false, siblings: entry.files.map((f) => ({ rfilename: f.path })) });
    }
    if (what === "tree") {
      const start = Number(url.searchParams.get("cursor") ?? 0);
      const page = entry.files.slice(start, start + this.pageSize).map(treeEntry);
      const next = start + this.pageSize < entry.files.length ? `<${this.url}${url.pathname}?recursive=true&cursor=${start + this.pageSize}>; rel="next"` : undefined;
      return json(page, next ? { link: next } : {});
    }
    if (what === "paths-info") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const paths = new URLSearchParams(body).getAll("paths");
        json(entry.files.filter((f) => paths.includes(f.path)).map(treeEntry));
      });
      return;
    }
    const path = decodeURIComponent(m[4]);
    const f = entry.files.find((x) => x.path === path);
    if (!f) return deny(404, "EntryNotFound");
    const headers: Record<string, string> = { "x-repo-commit": entry.commit, etag: `"${f.lfs ? f.sha256 : f.gitOid}"` };
    if (f.lfs) {
      res.writeHead(302, { ...headers, "x-linked-etag": `"${f.sha256}"`, "x-linked-size": String(f.data.length), location: `${this.url}/lfs/${f.sha256}` });
      return void res.end();
    }
    return this.sendBytes(req, res, f, record, headers);
  }

  private sendBytes(req: IncomingMessage, res: ServerResponse, f: StoredFile, record: RequestRecord, headers: Record<string, string>): void {
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range) start = Number(range[1]);
    if (start > f.data.length) { res.writeHead(416); return void res.end(); }
    let body = f.data.subarray(start);
    const status = range ? 206 : 200;
    res.writeHead(status, { ...headers, "content-length": String(body.length), "accept-ranges": "bytes", ...(range ? { "content-range": `bytes ${start}-${f.data.length - 1}/${f.data.length}` } : {}) });
    if (req.method === "HEAD") return void res.end();
    const fault = this.faults.get(f.path);
    if (fault && (fault.times ?? 1) > 0) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.corrupt) {
        body = Buffer.from(body);
        body[Math.floor(body.length / 2)] ^= 0xff;
      }
      const limit = fault.cutAfter ?? fault.stallAfter;
      if (limit !== undefined) {
        const part = body.subarray(0, limit);
        record.bodyBytes = part.length;
        res.write(part, () => {
          if (fault.cutAfter !== undefined) setTimeout(() => res.socket?.destroy(), 50);
        });
        return;
      }
    }
    record.bodyBytes = body.length;
    res.end(body);
  }
}
