/**
 * The Hub's HTTP API, as far as downloading needs it. The repo listing and revision lookup go through
 * @huggingface/hub (`modelInfo`, `listFiles`: the official client, which follows the tree API's
 * pagination); we hand it our own fetch, because the library neither reads HF_TOKEN nor accepts
 * tokens that do not start with "hf_" (mirrors and enterprise tokens), and because its errors do not
 * say what to do. File metadata is a HEAD on `resolve/`, read as huggingface_hub reads it
 * (X-Repo-Commit, X-Linked-Etag / ETag, X-Linked-Size), without following the CDN redirect.
 */
import { listFiles, modelInfo } from "@huggingface/hub";
import type { HubSettings } from "./settings.js";

export class HubError extends Error {}

export interface RepoFile {
  path: string;
  size: number;
  /** The git blob id (sha1) of the file, or of its LFS pointer. */
  oid: string;
  /** LFS files: the content's sha256, what blobs/ is named by. */
  lfs?: { oid: string; size: number };
}

export interface FileMetadata {
  commit: string;
  /** The blob name: the sha256 for LFS files, the git blob id otherwise. */
  etag: string;
  size: number;
  /** Where the bytes are (the CDN for LFS files). */
  location: string;
}

/** undici's fetch reports every connection failure (refused, DNS, reset, timeout) as TypeError "fetch failed". */
export function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError && (e.message === "fetch failed" || (e as { cause?: unknown }).cause !== undefined);
}

export function unreachable(s: HubSettings, e: unknown): HubError {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return new HubError(`cannot reach the Hugging Face Hub at ${s.endpoint} (${cause?.code ?? cause?.message ?? (e as Error).message}): ` +
    `no network? Use a model already in the cache with --offline (HF_HUB_OFFLINE=1), a local folder, or set HF_ENDPOINT to a mirror`);
}

/** The Hub's error for `what`, with what to do about it (X-Error-Code as huggingface_hub reads it). */
export function hubHttpError(s: HubSettings, res: Response, what: { repoId: string; revision?: string; file?: string }): HubError {
  const code = res.headers.get("x-error-code") ?? "";
  const message = res.headers.get("x-error-message") ?? "";
  const repoUrl = `${s.endpoint}/${what.repoId}`;
  const tokenHint = s.token ? "the token given (HF_TOKEN, --token or the token file) cannot read it" : "set HF_TOKEN (or --token, or log in with huggingface-cli login) to a token that can read it";
  if (code === "GatedRepo" || (res.status === 403 && /gated/i.test(message))) {
    return new HubError(`${what.repoId} is a gated repo: accept its conditions at ${repoUrl} and ${s.token ? "use a token of that account" : "set HF_TOKEN (or --token) to a token of that account"}`);
  }
  if (code === "RevisionNotFound") return new HubError(`revision "${what.revision}" not found in ${what.repoId} (${repoUrl}): check the branch, tag or commit`);
  if (code === "EntryNotFound") return new HubError(`${what.file} not found in ${what.repoId} at revision ${what.revision}`);
  if (code === "RepoNotFound" || res.status === 404) {
    return new HubError(`repository ${what.repoId} not found at ${s.endpoint} (or it is private: ${tokenHint})`);
  }
  if (res.status === 401 || res.status === 403) return new HubError(`${what.repoId} is private or gated (HTTP ${res.status}): ${tokenHint}`);
  return new HubError(`the Hub answered HTTP ${res.status} for ${what.repoId}${what.file ? `/${what.file}` : ""}${message ? `: ${message}` : ""}`);
}

/** fetch with our token and the errors above. */
function hubFetch(s: HubSettings, what: { repoId: string; revision?: string }): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    if (s.token) headers.set("authorization", `Bearer ${s.token}`);
    let res: Response;
    try {
      res = await fetch(input, { ...init, headers });
    } catch (e) {
      throw isNetworkError(e) ? unreachable(s, e) : e;
    }
    if (!res.ok) throw hubHttpError(s, res, what);
    return res;
  };
}

/** The commit a branch, tag or commit names. */
export async function resolveCommit(s: HubSettings, repoId: string, revision: string): Promise<string> {
  const info = await modelInfo({ name: repoId, revision, hubUrl: s.endpoint, fetch: hubFetch(s, { repoId, revision }), additionalFields: ["sha"] });
  const sha = (info as { sha?: unknown }).sha;
  if (typeof sha !== "string" || !/^[0-9a-f]{40}$/.test(sha)) throw new HubError(`${s.endpoint}: no commit for ${repoId}@${revision} in its answer`);
  return sha;
}

/** Every file of the repo at `commit`. */
export async function listRepoFiles(s: HubSettings, repoId: string, commit: string): Promise<RepoFile[]> {
  const files: RepoFile[] = [];
  for await (const e of listFiles({ repo: { type: "model", name: repoId }, revision: commit, recursive: true, hubUrl: s.endpoint, fetch: hubFetch(s, { repoId, revision: commit }) })) {
    if (e.type !== "file") continue;
    files.push({ path: e.path, size: e.size, oid: e.oid ?? "", ...(e.lfs ? { lfs: { oid: e.lfs.oid, size: e.lfs.size } } : {}) });
  }
  return files;
}

export const resolveUrl = (s: HubSettings, repoId: string, revision: string, path: string) =>
  `${s.endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${path.split("/").map(encodeURIComponent).join("/")}`;

const normalizeEtag = (e: string) => e.replace(/^W\//, "").replace(/^"|"$/g, "");

export function authHeaders(s: HubSettings): Record<string, string> {
  return { "accept-encoding": "identity", ...(s.token ? { authorization: `Bearer ${s.token}` } : {}) };
}

/** HEAD resolve/REV/PATH; relative redirects (renamed repos) are followed, the CDN's is not. */
export async function fileMetadata(s: HubSettings, repoId: string, revision: string, path: string): Promise<FileMetadata> {
  let url = resolveUrl(s, repoId, revision, path);
  for (let hops = 0; ; hops++) {
    let res: Response;
    try {
      res = await fetch(url, { method: "HEAD", redirect: "manual", headers: authHeaders(s) });
    } catch (e) {
      throw isNetworkError(e) ? unreachable(s, e) : e;
    }
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location?.startsWith("/") && hops < 5) {
      url = new URL(location, url).toString();
      continue;
    }
    if (res.status >= 400) throw hubHttpError(s, res, { repoId, revision, file: path });
    const commit = res.headers.get("x-repo-commit") ?? "";
    const etag = normalizeEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag") ?? "");
    const size = Number(res.headers.get("x-linked-size") ?? res.headers.get("content-length"));
    if (!commit || !etag || !Number.isSafeInteger(size)) {
      throw new HubError(`${url}: the answer lacks X-Repo-Commit, ETag or a size; is ${s.endpoint} a Hugging Face Hub (HF_ENDPOINT)?`);
    }
    return { commit, etag, size, location: location ? new URL(location, url).toString() : url };
  }
}
