/**
 * From what a user typed to a path on disk: a local file or folder is itself; a Hub repo id (or
 * `repo/FILE.safetensors`) is looked up in the cache and downloaded on first use (unless offline),
 * so that every loader below only ever sees local paths.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseRepoSpec } from "./repo-spec.js";
import { snapshotDownload } from "./snapshot-download.js";
import type { RepoKind, WeightVariant } from "./select-files.js";
import type { HubOptions } from "./settings.js";

/** What the spec is for: decides which files of the repo are fetched. */
export type SpecRole = "model" | "vae" | "taesd" | "lora" | "controlnet";

const KIND: Record<SpecRole, RepoKind | undefined> = { model: undefined, vae: "component", taesd: "component", lora: "lora", controlnet: "component" };

export async function ensureLocal(spec: string, role: SpecRole, opts: HubOptions & { variant?: WeightVariant; notes?: (m: string) => void } = {}): Promise<string> {
  if (existsSync(resolve(spec))) return spec;
  const repo = parseRepoSpec(spec);
  if (!repo) return spec; // not a repo id: the loader says what it looked for
  const kind = repo.file ? (role === "lora" ? "lora" : "file") : KIND[role];
  const r = await snapshotDownload({ repoId: repo.repoId, revision: repo.revision, file: repo.file, kind, variant: opts.variant }, opts);
  for (const n of r.notes) opts.notes?.(n);
  return r.path;
}
