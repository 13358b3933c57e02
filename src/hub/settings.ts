/**
 * Where the Hub is and who we are to it, read as huggingface_hub reads it: HF_ENDPOINT (mirrors),
 * HF_TOKEN (or the token file `huggingface-cli login` writes: HF_TOKEN_PATH, else $HF_HOME/token),
 * HF_HUB_OFFLINE, and the cache root (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub).
 * Explicit options win over the environment.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hfHome, hubCacheDir } from "../loaders/model-folder.js";
import type { DownloadProgress } from "./progress.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export interface HubOptions {
  /** The Hub's base URL (default HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** An access token (default HF_TOKEN, else the token file). Any token the Hub accepts, not only `hf_...`. */
  token?: string;
  /** Use the cache only (default: HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** The cache root (default as huggingface_hub). */
  cacheDir?: string;
  /** Files downloaded at once (default 4). */
  concurrency?: number;
  /** Told about every chunk received (bytes per file and in total). */
  onProgress?: (p: DownloadProgress) => void;
  /** Where to read HF_* variables (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface HubSettings {
  endpoint: string;
  token?: string;
  offline: boolean;
  cacheDir: string;
  concurrency: number;
  onProgress?: (p: DownloadProgress) => void;
}

const truthy = (v: string | undefined) => v !== undefined && ["1", "on", "yes", "true"].includes(v.trim().toLowerCase());

function tokenFromFile(env: NodeJS.ProcessEnv): string | undefined {
  const file = env.HF_TOKEN_PATH ?? join(hfHome(env), "token");
  if (!existsSync(file)) return undefined;
  const t = readFileSync(file, "utf8").trim();
  return t || undefined;
}

export function hubSettings(opts: HubOptions = {}): HubSettings {
  const env = opts.env ?? process.env;
  const token = opts.token ?? (env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim() || tokenFromFile(env));
  return {
    endpoint: (opts.endpoint ?? (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT)).replace(/\/+$/, ""),
    token: token || undefined,
    offline: opts.offline ?? truthy(env.HF_HUB_OFFLINE),
    cacheDir: opts.cacheDir ?? hubCacheDir(env),
    concurrency: Math.max(1, Math.floor(opts.concurrency ?? 4)),
    onProgress: opts.onProgress,
  };
}
