/**
 * Finds a diffusers model folder from what a user types: a path to the folder, or a Hugging Face repo
 * id such as `segmind/SSD-1B` that was downloaded into the hub cache (huggingface_hub's layout:
 * `<cache>/models--segmind--SSD-1B/snapshots/<revision>/`, the revision named by `refs/main`).
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";
import { ModelFolderError } from "./component.js";

export interface ModelFolder {
  /** Absolute path of the folder holding model_index.json, unet/, vae/, ... */
  dir: string;
  /** A short display name: the repo name (`SSD-1B`) or the folder's name. */
  name: string;
  /** The repo id when the model came from the hub cache. */
  repoId?: string;
}

/** huggingface_hub's cache root: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  return join(hfHome(env), "hub");
}

/** huggingface_hub's home (token file, cache): HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "huggingface");
}

/** A repo's folder name in the cache: `models--owner--name`. */
export const repoFolderName = (repoId: string) => `models--${repoId.split("/").join("--")}`;

/** A repo's folder in the cache of `env`. */
export const repoCacheDir = (repoId: string, env?: NodeJS.ProcessEnv) => join(hubCacheDir(env), repoFolderName(repoId));

/** The cached snapshot of a repo at `revision` (see snapshotOf), or undefined. */
export function hubSnapshot(repoId: string, env?: NodeJS.ProcessEnv, revision = "main"): string | undefined {
  const repo = repoCacheDir(repoId, env);
  return isDir(repo) ? snapshotOf(repo, revision) : undefined;
}

const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** A diffusers pipeline folder has model_index.json; accept a bare unet/ + vae/ layout too. */
function looksLikeModel(dir: string): boolean {
  return existsSync(join(dir, "model_index.json")) || (isDir(join(dir, "unet")) && isDir(join(dir, "vae")));
}

/** The snapshot named by refs/<revision> (default main); without refs, the only snapshot there is. */
function snapshotOf(repoCache: string, revision: string): string | undefined {
  const ref = join(repoCache, "refs", revision);
  if (existsSync(ref)) {
    const dir = join(repoCache, "snapshots", readFileSync(ref, "utf8").trim());
    return isDir(dir) ? dir : undefined;
  }
  const direct = join(repoCache, "snapshots", revision); // a commit hash given as the revision
  if (isDir(direct)) return direct;
  const snaps = isDir(join(repoCache, "snapshots")) ? readdirSync(join(repoCache, "snapshots")) : [];
  return revision === "main" && snaps.length === 1 ? join(repoCache, "snapshots", snaps[0]) : undefined;
}

/**
 * Resolves `spec` (a folder, or `owner/name` with an optional `@revision`) to a model folder, or
 * throws a ModelFolderError that says every place it looked and how to download the model.
 */
export function resolveModelFolder(spec: string, env: NodeJS.ProcessEnv = process.env): ModelFolder {
  if (!spec) throw new ModelFolderError("no model given (a diffusers folder or a Hugging Face repo id such as segmind/SSD-1B)");
  const asPath = resolve(spec);
  if (isDir(asPath)) {
    if (!looksLikeModel(asPath)) {
      throw new ModelFolderError(`${asPath} is not a diffusers model folder (no model_index.json and no unet/ and vae/ folders)`);
    }
    return { dir: asPath, name: basename(asPath) };
  }
  const [repoId, revision = "main"] = spec.split("@");
  if (!REPO_ID.test(repoId) || spec.startsWith(".") || spec.startsWith("/")) {
    throw new ModelFolderError(`model folder not found: ${asPath}`);
  }
  const repoCache = repoCacheDir(repoId, env);
  const snapshot = isDir(repoCache) ? snapshotOf(repoCache, revision) : undefined;
  if (snapshot && looksLikeModel(snapshot)) return { dir: snapshot, name: repoId.split("/")[1], repoId };
  const where = snapshot
    ? `${snapshot} (incomplete: no model_index.json)`
    : isDir(repoCache) ? `${join(repoCache, "snapshots")} (no snapshot for revision "${revision}")` : `${repoCache} (not there)`;
  throw new ModelFolderError(
    `model "${spec}" not found. Looked for a folder ${asPath} (not there) and in the Hugging Face cache at ${where}` +
    ` (cache root from HF_HUB_CACHE, HF_HOME or ~/.cache/huggingface/hub). Download it with:\n` +
    `  npx ssd1b download ${repoId}\n` +
    `(or let generate / fromPretrained fetch it on first use), or pass --model with the path of a diffusers folder.`,
  );
}
