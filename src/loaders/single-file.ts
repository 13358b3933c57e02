/**
 * Original Stability single-file checkpoints (SGM / AUTOMATIC1111 / ComfyUI `.safetensors`): one file
 * holding the UNet (`model.diffusion_model.*`), the VAE (`first_stage_model.*`) and both text encoders
 * (`conditioner.embedders.0.transformer.*`, OpenAI CLIP with transformers names, and
 * `conditioner.embedders.1.model.*`, OpenCLIP). They are presented as four WeightSources with the
 * diffusers/transformers names, every tensor read in place: OpenCLIP's fused q/k/v projection is split
 * into three byte ranges of the same file, LDM's 1x1-conv VAE attention weights are reshaped.
 * The file carries no config: the architecture is recognised from the transformer depth of each
 * attention module, and the configs come from the built-in set (or from `--config DIR`). An SDXL
 * refiner file (sd_xl_refiner_1.0) has OpenCLIP alone, as `conditioner.embedders.0.model.*`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readHeader, SafetensorsError, type TensorEntry } from "../safetensors/read.js";
import type { WeightSource } from "../nn/weights.js";
import { parseUNetConfig } from "../models/unet/config.js";
import { parseVaeConfig } from "../models/vae/config.js";
import { ARCHITECTURES, builtinConfigs, type Architecture, type PipelineConfigs } from "./builtin-configs/index.js";
import { openClipFromSgm, openClipToSgm, unetAttentionDepths, unetPrefixTable, vaePrefixTable, type SgmRef } from "./sgm-names.js";

export class SingleFileError extends Error {}

export const SGM_PREFIXES = {
  unet: "model.diffusion_model.",
  vae: "first_stage_model.",
  textEncoder: "conditioner.embedders.0.transformer.",
  textEncoder2: "conditioner.embedders.1.model.",
} as const;

export type SingleFileComponent = keyof typeof SGM_PREFIXES;

/** Where a refiner file keeps its one text encoder (OpenCLIP bigG), in place of CLIP-L. */
const REFINER_TEXT_ENCODER_2 = "conditioner.embedders.0.model.";

export interface SingleFileCheckpoint {
  file: string;
  /** The built-in architecture the UNet's structure matches; undefined when only a `--config` UNet fits. */
  architecture?: Architecture;
  configs: PipelineConfigs;
  /** Where each config came from: "built-in sdxl" or a config.json path. */
  configSources: Record<keyof PipelineConfigs, string>;
  unet: WeightSource;
  vae: WeightSource;
  /** Absent in a refiner file. */
  textEncoder?: WeightSource;
  textEncoder2: WeightSource;
  /** An SDXL refiner: OpenCLIP alone (as embedders.0), aesthetic-score conditioning. */
  refiner: boolean;
  /**
   * textEncoder2 keys whose tensor is stored transposed: `text_projection.weight` is [hidden, projection]
   * (OpenCLIP multiplies x @ P). The text encoder graph must use it as x·W instead of x·Wᵀ.
   */
  transposedKeys: ReadonlySet<string>;
  /** Tensors outside the four components (EMA copies, denoiser buffers, …): reported, not loaded. */
  unmapped: string[];
  /** tokenizer/ and tokenizer_2/ of the `--config` folder, when it has them (a refiner needs tokenizer_2/ only). */
  tokenizerDirs?: { tokenizer: string; tokenizer2: string };
}

/** Buffers that are not parameters; skipped when listing a component's keys. */
const IGNORED: Record<SingleFileComponent, RegExp[]> = {
  unet: [],
  vae: [],
  textEncoder: [/(^|\.)position_ids$/],
  textEncoder2: [/^logit_scale$/, /^attn_mask$/],
};

export function readSingleFileHeader(file: string): Map<string, TensorEntry> {
  if (/\.(ckpt|pt|pth|bin)$/i.test(file)) {
    throw new SingleFileError(`${file}: pickle checkpoints (.ckpt/.pt/.bin) are not supported; convert it to .safetensors`);
  }
  if (!existsSync(file)) throw new SingleFileError(`single-file checkpoint not found: ${file}`);
  try {
    return readHeader(file).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SingleFileError(`${file}: unreadable single-file checkpoint (truncated or corrupt download?): ${e.message}`);
    throw e;
  }
}

/** True when the file is a safetensors file with an SGM UNet (`model.diffusion_model.*`). */
export function isSingleFileCheckpoint(file: string): boolean {
  try {
    for (const k of readHeader(file).tensors.keys()) if (k.startsWith(SGM_PREFIXES.unet)) return true;
  } catch {
    return false;
  }
  return false;
}

/** Transformer depth per SGM attention module found in the file, and the UNet's base channel count. */
function fileStructure(tensors: Map<string, TensorEntry>): { depths: Map<string, number>; channels?: number } {
  const depths = new Map<string, number>();
  const re = /^model\.diffusion_model\.((?:input_blocks|output_blocks)\.\d+\.1|middle_block\.1)\.transformer_blocks\.(\d+)\./;
  for (const k of tensors.keys()) {
    const m = re.exec(k);
    if (m) depths.set(m[1], Math.max(depths.get(m[1]) ?? 0, Number(m[2]) + 1));
  }
  return { depths, channels: tensors.get(`${SGM_PREFIXES.unet}input_blocks.0.0.weight`)?.shape[0] };
}

function describeDepths(depths: Map<string, number>): string {
  if (depths.size === 0) return "no transformer blocks";
  const order = (k: string) => [k.startsWith("input") ? 0 : k.startsWith("middle") ? 1 : 2, Number(k.split(".")[1] ?? 0)];
  return [...depths].sort(([a], [b]) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || x[1] - y[1];
  }).map(([k, v]) => `${k}:${v}`).join(" ");
}

function sameStructure(a: Map<string, number>, b: Map<string, number>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** Whether a UNet config has the structure found in the file (same attention modules, same depths, same width). */
function unetFits(config: Record<string, any>, found: ReturnType<typeof fileStructure>): boolean {
  const cfg = parseUNetConfig(config);
  return sameStructure(unetAttentionDepths(cfg), found.depths) && (found.channels === undefined || found.channels === cfg.blockOutChannels[0]);
}

/**
 * Recognises SDXL, SSD-1B or Vega from the UNet tensors of a single file (undefined when none fits).
 * They differ in how many transformer blocks each attention holds, which the key names show.
 */
export function detectArchitecture(tensors: Map<string, TensorEntry>): { architecture?: Architecture; structure: string } {
  const found = fileStructure(tensors);
  const architecture = ARCHITECTURES.find((a) => unetFits(builtinConfigs(a).unet, found));
  return { architecture, structure: describeDepths(found.depths) };
}

const CONFIG_FILES: Record<keyof PipelineConfigs, string> = {
  unet: "unet/config.json",
  vae: "vae/config.json",
  textEncoder: "text_encoder/config.json",
  textEncoder2: "text_encoder_2/config.json",
  scheduler: "scheduler/scheduler_config.json",
};

/** The configs a `--config DIR` folder provides: a diffusers pipeline folder, or a lone UNet config folder. */
function readConfigDir(dir: string): { configs: Partial<PipelineConfigs>; sources: Partial<Record<keyof PipelineConfigs, string>> } {
  if (!existsSync(dir)) throw new SingleFileError(`--config folder not found: ${dir}`);
  const configs: Partial<PipelineConfigs> = {};
  const sources: Partial<Record<keyof PipelineConfigs, string>> = {};
  const read = (path: string) => {
    try {
      return JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new SingleFileError(`${path}: not valid JSON (${(e as Error).message})`);
    }
  };
  for (const [name, rel] of Object.entries(CONFIG_FILES) as [keyof PipelineConfigs, string][]) {
    const path = join(dir, rel);
    if (existsSync(path)) { configs[name] = read(path); sources[name] = path; }
  }
  const lone = join(dir, "config.json");
  if (!configs.unet && existsSync(lone)) {
    const c = read(lone);
    if (c._class_name === "UNet2DConditionModel") { configs.unet = c; sources.unet = lone; }
  }
  if (Object.keys(configs).length === 0) {
    throw new SingleFileError(`--config ${dir}: no configs found (expected a diffusers folder with ${Object.values(CONFIG_FILES).join(", ")})`);
  }
  return { configs, sources };
}

/** A sub-range or re-shaped view of a stored tensor, still pointing into the same file. */
function resolveRef(entry: TensorEntry, ref: SgmRef, expected: readonly number[]): TensorEntry {
  if (ref.part) {
    const rows = entry.shape[0];
    const { index, of } = ref.part;
    if (!rows || rows % of !== 0) throw new SingleFileError(`${entry.file}: "${entry.name}" has ${rows} rows, not divisible into ${of} (q, k, v)`);
    const n = rows / of;
    const rowBytes = entry.byteLength / rows;
    return { ...entry, name: `${entry.name}[${index * n}:${(index + 1) * n}]`, shape: [n, ...entry.shape.slice(1)], offset: entry.offset + index * n * rowBytes, byteLength: n * rowBytes };
  }
  const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  if (ref.reshape && entry.shape.length !== expected.length && numel(entry.shape) === numel(expected)) return { ...entry, shape: [...expected] };
  return entry;
}

function componentSource(
  file: string, tensors: Map<string, TensorEntry>, component: SingleFileComponent,
  toSgm: (key: string) => SgmRef | undefined, fromSgm: (key: string) => string[] | undefined, prefix: string = SGM_PREFIXES[component],
): WeightSource {
  let keys: string[] | undefined;
  return {
    description: `${file} (single file: ${component} under "${prefix}")`,
    lookup(key, expectedShape) {
      const ref = toSgm(key);
      const entry = ref && tensors.get(prefix + ref.key);
      return entry ? resolveRef(entry, ref, expectedShape) : undefined;
    },
    keys() {
      // Names we cannot translate stay in SGM form, so `unused()` reports them rather than hiding them.
      keys ??= [...tensors.keys()].filter((k) => k.startsWith(prefix)).flatMap((k) => {
        const rest = k.slice(prefix.length);
        if (IGNORED[component].some((r) => r.test(rest))) return [];
        return fromSgm(rest) ?? [k];
      });
      return keys;
    },
  };
}

/** The LDM index of the decoder's first up block: the highest `decoder.up.N` under the prefix. */
function decoderTop(tensors: Map<string, TensorEntry>, blocks: number, prefix: string): number {
  let top = -1;
  for (const k of tensors.keys()) {
    const m = k.startsWith(prefix) ? /^decoder\.up\.(\d+)\./.exec(k.slice(prefix.length)) : null;
    if (m) top = Math.max(top, Number(m[1]));
  }
  return top < 0 ? blocks - 1 : top;
}

const one = (k: string | undefined) => (k === undefined ? undefined : [k]);

/**
 * An LDM-named AutoencoderKL under `prefix` (a checkpoint's `first_stage_model.`, or "" in a standalone
 * VAE file such as sdxl_vae.safetensors) as diffusers keys; the 1x1-conv attention weights reshaped.
 */
export function ldmVaeSource(file: string, tensors: Map<string, TensorEntry>, vaeConfig: Record<string, any>, prefix: string): WeightSource {
  const cfg = parseVaeConfig(vaeConfig);
  const table = vaePrefixTable(cfg, decoderTop(tensors, cfg.blockOutChannels.length, prefix));
  return componentSource(file, tensors, "vae", (k) => table.toSgm(k), (k) => one(table.fromSgm(k)), prefix);
}

/**
 * Opens an SGM single-file checkpoint: detects the architecture, picks the configs (those of
 * `opts.configDir` first, the built-in ones of the detected architecture for the rest) and returns the
 * four components' weight sources. Throws SingleFileError for unreadable files, non-SDXL checkpoints
 * and UNets that match neither a built-in architecture nor the given config.
 */
export function openSingleFile(file: string, opts: { configDir?: string } = {}): SingleFileCheckpoint {
  const tensors = readSingleFileHeader(file);
  const keys = [...tensors.keys()];
  if (!keys.some((k) => k.startsWith(SGM_PREFIXES.unet))) {
    const hint = keys.some((k) => k.startsWith("down_blocks.") || k.startsWith("text_model."))
      ? " (it looks like one diffusers component: pass the model folder instead)" : "";
    throw new SingleFileError(`${file}: not an SGM single-file checkpoint: no "${SGM_PREFIXES.unet}*" tensors${hint}`);
  }
  if (!keys.some((k) => k.startsWith("conditioner.embedders.")) && keys.some((k) => k.startsWith("cond_stage_model."))) {
    throw new SingleFileError(`${file}: a Stable Diffusion 1.x/2.x checkpoint (cond_stage_model.*); only SDXL-family models (SDXL, SSD-1B, Vega) are supported`);
  }

  const { architecture, structure } = detectArchitecture(tensors);
  const given = opts.configDir ? readConfigDir(opts.configDir) : { configs: {}, sources: {} };
  if (given.configs.unet) {
    if (!unetFits(given.configs.unet, fileStructure(tensors))) {
      throw new SingleFileError(`${file}: the UNet config ${given.sources.unet} does not match the checkpoint (file: ${structure}; config: ${describeDepths(unetAttentionDepths(parseUNetConfig(given.configs.unet)))})`);
    }
  } else if (!architecture) {
    throw new SingleFileError(`${file}: UNet structure (transformer blocks per attention: ${structure}) matches none of ${ARCHITECTURES.join(", ")}; pass --config DIR with the model's diffusers configs`);
  }
  // a refiner's only text encoder is OpenCLIP, stored where base files keep CLIP-L
  const refiner = keys.some((k) => k.startsWith(REFINER_TEXT_ENCODER_2)) && !keys.some((k) => k.startsWith(SGM_PREFIXES.textEncoder));
  const builtin = architecture ? builtinConfigs(architecture) : undefined;
  const configs = {} as PipelineConfigs;
  const configSources = {} as Record<keyof PipelineConfigs, string>;
  for (const name of Object.keys(CONFIG_FILES) as (keyof PipelineConfigs)[]) {
    if (name === "textEncoder" && refiner) continue;
    const c = given.configs[name] ?? builtin?.[name];
    if (!c) throw new SingleFileError(`${file}: no ${name} config: ${opts.configDir} lacks ${CONFIG_FILES[name]} and the UNet matches no built-in architecture`);
    configs[name] = c;
    configSources[name] = given.sources[name] ?? `built-in ${architecture}`;
  }

  const unetTable = unetPrefixTable(parseUNetConfig(configs.unet));
  const plain = (k: string) => (k.startsWith("text_model.") ? { key: k } : undefined);
  const prefixes = refiner ? [SGM_PREFIXES.unet, SGM_PREFIXES.vae, REFINER_TEXT_ENCODER_2] : Object.values(SGM_PREFIXES);
  const tok = opts.configDir && { tokenizer: join(opts.configDir, "tokenizer"), tokenizer2: join(opts.configDir, "tokenizer_2") };
  return {
    file, architecture, configs, configSources, refiner,
    unet: componentSource(file, tensors, "unet", (k) => unetTable.toSgm(k), (k) => one(unetTable.fromSgm(k))),
    vae: ldmVaeSource(file, tensors, configs.vae, SGM_PREFIXES.vae),
    textEncoder: refiner ? undefined : componentSource(file, tensors, "textEncoder", plain, (k) => one(plain(k)?.key)),
    textEncoder2: componentSource(file, tensors, "textEncoder2", openClipToSgm, openClipFromSgm, refiner ? REFINER_TEXT_ENCODER_2 : SGM_PREFIXES.textEncoder2),
    transposedKeys: new Set(["text_projection.weight"]),
    unmapped: keys.filter((k) => !prefixes.some((p) => k.startsWith(p))),
    tokenizerDirs: tok && (refiner || existsSync(tok.tokenizer)) && existsSync(tok.tokenizer2) ? tok : undefined,
  };
}

/** The built-in architecture a diffusers UNet config describes (same attention depths and channels), if any. */
export function architectureOfUnetConfig(config: Record<string, any>): Architecture | undefined {
  let cfg: ReturnType<typeof parseUNetConfig>;
  try {
    cfg = parseUNetConfig(config);
  } catch {
    return undefined;
  }
  const depths = unetAttentionDepths(cfg);
  return ARCHITECTURES.find((a) => {
    const b = parseUNetConfig(builtinConfigs(a).unet);
    return sameStructure(unetAttentionDepths(b), depths) && b.blockOutChannels[0] === cfg.blockOutChannels[0];
  });
}
