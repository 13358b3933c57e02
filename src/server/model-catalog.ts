/**
 * The models one `ssd1b serve` may run: every --model (the first is loaded at start) and the
 * checkpoints of --models-dir (A1111's models/Stable-diffusion folder: single .safetensors files and
 * diffusers folders). One is loaded at a time, as A1111 swaps checkpoints (its default
 * sd_checkpoints_limit of 1): a job for another model releases the loaded one and loads its own.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { libraryFolder } from "./library-folder.js";

export interface ServedModel {
  /** What clients call it (sd_model_checkpoint, the infotext's Model): the file or folder name, or the repo's name. */
  name: string;
  /** What the pipeline opens: a folder, a .safetensors file or a Hub repo id. */
  source: string;
}

export class ModelCatalogError extends Error {}

/** The name a --model gets, as the pipeline names it once loaded (ModelFolder.name, a single file's base name). */
export function servedModelName(source: string): string {
  const trimmed = source.replace(/[\\/]+$/, "");
  if (/\.safetensors$/i.test(trimmed)) return basename(trimmed).replace(/\.[^.]+$/, "");
  if (existsSync(trimmed)) return basename(trimmed);
  // a repo id, maybe with @revision: its name part
  return trimmed.split("@")[0].split("/").pop() ?? trimmed;
}

/** Folders deep enough for A1111's sub-folders of checkpoints, not a walk of a whole disk. */
const MAX_DEPTH = 4;
const MAX_MODELS = 1000;

/** The checkpoints under a --models-dir: *.safetensors files and diffusers folders (model_index.json), sorted. */
export function modelsInFolder(dir: string): string[] {
  const root = libraryFolder(dir, "--models-dir", (m) => new ModelCatalogError(m));
  const found: string[] = [];
  const walk = (folder: string, depth: number) => {
    for (const entry of readdirSync(folder, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(folder, entry.name);
      if (found.length >= MAX_MODELS) throw new ModelCatalogError(`--models-dir ${dir}: more than ${MAX_MODELS} models`);
      // a link counts as what it points to (A1111 users link checkpoints in from elsewhere)
      const kind = entry.isSymbolicLink() ? statSync(path, { throwIfNoEntry: false }) : entry;
      if (kind?.isFile() && /\.safetensors$/i.test(entry.name)) found.push(path);
      else if (kind?.isDirectory() && existsSync(join(path, "model_index.json"))) found.push(path);
      else if (kind?.isDirectory() && !entry.isSymbolicLink() && depth < MAX_DEPTH) walk(path, depth + 1);
    }
  };
  walk(root, 1);
  return found;
}

/** The catalog of these sources, in order; two models with one name are an error (clients choose by name). */
export function buildCatalog(sources: readonly string[]): ServedModel[] {
  const models: ServedModel[] = [];
  for (const source of sources) {
    const name = servedModelName(source);
    const clash = models.find((m) => m.name === name);
    if (clash) throw new ModelCatalogError(`two models are called "${name}": ${clash.source} and ${source} (clients pick a model by name; rename one)`);
    models.push({ name, source });
  }
  return models;
}

/** The served model a client names: its name, A1111's "name [hash]" title, its file or folder name, or its source. */
export function findServedModel(wanted: string, models: readonly ServedModel[]): ServedModel | undefined {
  const w = wanted.trim();
  const bare = w.replace(/\s*\[[0-9a-fA-F]*\]$/, "");
  return models.find((m) => m.name === w || m.name === bare || m.source === w || basename(m.source) === bare);
}

/** "X is not served here; this server serves A, B" (the 400 of every API's model choice). */
export function notServedMessage(what: string, wanted: unknown, models: readonly ServedModel[]): string {
  return `${what} ${JSON.stringify(wanted)} is not served here; this server serves ${models.map((m) => JSON.stringify(m.name)).join(", ")}`;
}
