import { existsSync, readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { TensorStore } from "../safetensors/read.js";
import type { WeightSource } from "../nn/weights.js";

export class ModelFolderError extends Error {}

/** Base names of the weight files of a diffusers component folder, by kind. */
const WEIGHT_BASENAMES = ["diffusion_pytorch_model", "model"];

export type Variant = "fp16" | "fp32" | undefined;

export interface ComponentFiles {
  dir: string;
  config: Record<string, any>;
  weightFiles: string[];
  variant: Variant;
}

export function readConfig(dir: string): Record<string, any> {
  const file = join(dir, "config.json");
  if (!existsSync(dir)) throw new ModelFolderError(`model folder not found: ${dir}`);
  if (!existsSync(file)) throw new ModelFolderError(`${dir}: no config.json (is this a diffusers component folder such as unet/, vae/, text_encoder/?)`);
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ModelFolderError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Finds the weight files: single file or sharded index, fp32 or the `.fp16` variant. */
export function findWeightFiles(dir: string, variant?: Variant): { files: string[]; variant: Variant } {
  const tried: string[] = [];
  const order: Variant[] = variant ? [variant] : ["fp32", "fp16"];
  for (const v of order) {
    const suffix = v === "fp16" ? ".fp16" : "";
    for (const base of WEIGHT_BASENAMES) {
      const single = join(dir, `${base}${suffix}.safetensors`);
      tried.push(single);
      if (existsSync(single)) return { files: [single], variant: v };
      // a variant's shard index is named both ways: transformers/diffusers write X.safetensors.index.fp16.json
      const indexNames = v === "fp16" ? [`${single}.index.json`, join(dir, `${base}.safetensors.index.fp16.json`)] : [`${single}.index.json`];
      const index = indexNames.find((f) => existsSync(f)) ?? indexNames[0];
      tried.push(...indexNames);
      if (existsSync(index)) {
        const map = JSON.parse(readFileSync(index, "utf8")).weight_map as Record<string, string>;
        const shards = [...new Set(Object.values(map))].map((f) => join(dirname(index), f));
        for (const s of shards) if (!existsSync(s)) throw new ModelFolderError(`${index}: shard ${s} is missing`);
        return { files: shards, variant: v };
      }
    }
  }
  throw new ModelFolderError(`${dir}: no safetensors weights found (looked for ${tried.map((t) => t.slice(dir.length + 1)).join(", ")})`);
}

/**
 * The one weights-source type: a component's raw config.json object and its weights, from a
 * diffusers folder, a single-file checkpoint's part or an override, for every component kind.
 */
export interface ComponentWeights {
  config: Record<string, any>;
  source: WeightSource;
  /** For messages: the component folder, or the file and the part of it. */
  where: string;
  /** Keys whose tensor is stored transposed (SGM `text_projection.weight`). */
  transposedKeys?: ReadonlySet<string>;
  /** A standalone TAESD decoder file: no encoder. */
  decoderOnly?: boolean;
}

export function openComponent(dir: string, variant?: Variant): ComponentFiles {
  const config = readConfig(dir);
  const found = findWeightFiles(dir, variant);
  return { dir, config, weightFiles: found.files, variant: found.variant };
}

/** Ignored when present in a file: integer buffers that are not parameters. */
const IGNORED_BUFFERS = [/(^|\.)position_ids$/];

export function storeSource(store: TensorStore): WeightSource {
  return {
    description: store.description,
    lookup: (key) => store.tensors.get(key),
    keys: () => [...store.tensors.keys()].filter((k) => !IGNORED_BUFFERS.some((r) => r.test(k))),
  };
}

export function openWeights(files: ComponentFiles): WeightSource {
  const store = files.weightFiles.length === 1
    ? TensorStore.open(files.weightFiles[0])
    : TensorStore.merge(files.weightFiles, `${files.dir} (${files.weightFiles.length} shards)`);
  return storeSource(store);
}

export function folderComponent(dir: string, variant: Variant): ComponentWeights {
  const files = openComponent(dir, variant);
  return { config: files.config, source: openWeights(files), where: dir };
}
