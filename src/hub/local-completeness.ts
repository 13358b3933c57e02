/**
 * Whether a cached snapshot already holds what the pipeline loads, so that it is used without asking
 * the Hub anything. The same rules as select-files.ts, read from the disk: for a pipeline every
 * component model_index.json names (configs, the variant's weights, tokenizer and scheduler files).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { findWeightFiles } from "../loaders/component.js";
import { pipelineFolders, type RepoKind, type WeightVariant } from "./select-files.js";

function missingInComponent(dir: string, className: string, variant: WeightVariant | undefined, shown: string): string[] {
  const need = (names: string[]) => names.filter((n) => !existsSync(join(dir, n))).map((n) => `${shown}${n}`);
  if (/Tokenizer/.test(className)) return need(["vocab.json", "merges.txt", "tokenizer_config.json"]);
  if (/Scheduler/.test(className)) return need(["scheduler_config.json"]);
  const missing = need(["config.json"]);
  try {
    findWeightFiles(dir, variant);
  } catch {
    missing.push(`${shown}${variant ? `${variant} ` : ""}weights`);
  }
  return missing;
}

/** What is missing from `dir` for a repo of this kind (empty: complete). */
export function missingFiles(dir: string, kind: RepoKind, opts: { variant?: WeightVariant; file?: string } = {}): string[] {
  if (!existsSync(dir)) return ["the whole snapshot"];
  if (kind === "files") return ["the files asked for"]; // only the listing says what they are
  if (kind === "lora" || kind === "file") return opts.file && !existsSync(join(dir, opts.file)) ? [opts.file] : [];
  if (kind === "component") return missingInComponent(dir, "", opts.variant, "");
  const indexFile = join(dir, "model_index.json");
  if (!existsSync(indexFile)) return ["model_index.json"];
  let index: Record<string, unknown>;
  try {
    index = JSON.parse(readFileSync(indexFile, "utf8")) as Record<string, unknown>;
  } catch {
    return ["model_index.json (not valid JSON)"];
  }
  return pipelineFolders(index).flatMap((name) => missingInComponent(join(dir, name), String((index[name] as unknown[])[1]), opts.variant, `${name}/`));
}
