/**
 * Which files of a repo to fetch: what the pipeline loads and nothing else. For a diffusers pipeline,
 * model_index.json and, in each component folder it names, the JSON and text files (configs,
 * tokenizers, scheduler) and the chosen variant's safetensors weights (shards and index included);
 * never the other variant, `.bin` / `.ckpt` / `.onnx` files, or single-file checkpoints at the repo
 * root (SSD-1B ships two there, which would triple the download). A component repo (a VAE, a TAESD)
 * is its root folder by the same rule; a LoRA or single-file checkpoint repo is one file.
 */
import type { RepoFile } from "./hub-api.js";
import { HubError } from "./hub-api.js";

/** "files": exactly the files `include` matches (huggingface_hub's allow_patterns), e.g. a model's tokenizers. */
export type RepoKind = "pipeline" | "component" | "lora" | "file" | "files";
export type WeightVariant = "fp16" | "fp32";

export interface Selection {
  kind: RepoKind;
  variant?: WeightVariant;
  files: RepoFile[];
  /** Told to the user: a folder without the chosen variant, and so on. */
  notes: string[];
}

export interface SelectRequest {
  repoId: string;
  /** Default: from the repo (model_index.json → pipeline, config.json → component, else one file). */
  kind?: RepoKind;
  file?: string;
  /** Default: fp16 where the repo has it, else fp32. */
  variant?: WeightVariant;
  /** More files, as fnmatch-style globs (`*` also crosses `/`, as huggingface_hub's allow_patterns). */
  include?: string[];
  /** Parsed model_index.json, for pipelines. */
  modelIndex?: Record<string, unknown>;
}

const base = (path: string) => path.slice(path.lastIndexOf("/") + 1);
const folderOf = (path: string) => (path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "");

/** The variant a file name carries (`.fp16.`, `.fp16-00001-of-…`), if any. */
export function variantOf(path: string): string | undefined {
  return /\.(fp16|fp32|bf16|ema|non_ema|non-ema)(?=[.-])/.exec(base(path))?.[1];
}
const matchesVariant = (path: string, v: WeightVariant) => (variantOf(path) ?? "fp32") === v;

/** The weight files the loader reads: diffusers' and transformers' names, as safetensors (shards too). */
const isWeight = (path: string) => /^(diffusion_pytorch_model|model)\b.*\.safetensors$/.test(base(path));
const isIndex = (path: string) => /\.index(\.[\w-]+)?\.json$/.test(base(path)) && base(path).includes(".safetensors");

export function globToRegExp(glob: string): RegExp {
  // fnmatch semantics, which huggingface_hub's allow_patterns use: `*` matches any run, `/` included
  const body = glob.split("").map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))).join("");
  return new RegExp(`^${body}$`);
}

/** Files of one component folder ("" for the root) for the chosen variant, falling back to the other one. */
function componentFiles(all: RepoFile[], folder: string, variant: WeightVariant, notes: string[]): RepoFile[] {
  const here = all.filter((f) => folderOf(f.path) === folder);
  const weights = (v: WeightVariant) => here.filter((f) => (isWeight(f.path) || isIndex(f.path)) && matchesVariant(f.path, v));
  let chosen = weights(variant);
  if (!chosen.some((f) => isWeight(f.path))) {
    const other: WeightVariant = variant === "fp16" ? "fp32" : "fp16";
    const fallback = weights(other);
    if (fallback.some((f) => isWeight(f.path))) {
      notes.push(`${folder || "the repo"} has no ${variant} weights: taking its ${other} ones`);
      chosen = fallback;
    }
  }
  const other = here.filter((f) => !isIndex(f.path) && (/\.json$/.test(f.path) || /\.txt$/.test(f.path)));
  return [...other, ...chosen];
}

/** The components model_index.json names: entries ["library", "Class"] with a library. */
export function pipelineFolders(modelIndex: Record<string, unknown>): string[] {
  return Object.entries(modelIndex)
    .filter(([k, v]) => !k.startsWith("_") && Array.isArray(v) && v.length === 2 && v[0] !== null && typeof v[1] === "string")
    .map(([k]) => k);
}

export function detectKind(files: RepoFile[], req: SelectRequest): RepoKind {
  if (req.kind) return req.kind;
  if (req.file) return "file";
  const paths = new Set(files.map((f) => f.path));
  if (paths.has("model_index.json")) return "pipeline";
  if (paths.has("config.json")) return "component";
  return "file";
}

export function selectFiles(files: RepoFile[], req: SelectRequest): Selection {
  const kind = detectKind(files, req);
  const notes: string[] = [];
  const byPath = new Map(files.map((f) => [f.path, f]));
  let picked: RepoFile[] = [];
  let variant: WeightVariant | undefined;
  const defaultVariant = (folders: string[]): WeightVariant =>
    req.variant ?? (files.some((f) => folders.includes(folderOf(f.path)) && isWeight(f.path) && matchesVariant(f.path, "fp16")) ? "fp16" : "fp32");

  if (kind === "pipeline") {
    if (!req.modelIndex) throw new HubError(`${req.repoId}: model_index.json is needed to choose the files`);
    const folders = pipelineFolders(req.modelIndex);
    const missing = folders.filter((d) => !files.some((f) => folderOf(f.path) === d));
    if (missing.length) throw new HubError(`${req.repoId}: model_index.json names ${missing.join(", ")}, which the repo does not have`);
    variant = defaultVariant(folders);
    picked = [byPath.get("model_index.json")!, ...folders.flatMap((d) => componentFiles(files, d, variant!, notes))];
  } else if (kind === "component") {
    variant = defaultVariant([""]);
    picked = componentFiles(files, "", variant, notes);
    if (!picked.some((f) => isWeight(f.path))) throw new HubError(`${req.repoId}: no safetensors weights (diffusion_pytorch_model*.safetensors or model*.safetensors) at the repo root`);
  } else if (kind === "files") {
    if (!req.include?.length) throw new HubError(`${req.repoId}: which files? (include globs)`);
  } else {
    if (req.file) {
      const f = byPath.get(req.file);
      if (!f) throw new HubError(`${req.file} not found in ${req.repoId}`);
      picked = [f];
    } else {
      const root = files.filter((f) => !f.path.includes("/") && f.path.endsWith(".safetensors"));
      const preferred = kind === "lora" ? root.find((f) => f.path === "pytorch_lora_weights.safetensors") : undefined;
      if (preferred || root.length === 1) picked = [preferred ?? root[0]];
      else if (!root.length) throw new HubError(`${req.repoId}: no .safetensors file at the repo root${kind === "file" ? " and no model_index.json or config.json: not a model this tool reads" : ""}`);
      else throw new HubError(`${req.repoId} has ${root.length} .safetensors files at its root (${root.map((f) => f.path).join(", ")}): name one as ${req.repoId}/FILE.safetensors`);
    }
  }
  for (const glob of req.include ?? []) {
    const re = globToRegExp(glob);
    const more = files.filter((f) => re.test(f.path));
    if (!more.length && kind === "files") throw new HubError(`${glob} matches no file of ${req.repoId}`);
    if (!more.length) notes.push(`--include ${glob} matches no file of ${req.repoId}`);
    picked.push(...more);
  }
  return { kind, variant, files: [...new Map(picked.map((f) => [f.path, f])).values()], notes };
}
