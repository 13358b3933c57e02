/**
 * One view of a model whatever form it comes in: a component is a config + a WeightSource (read in
 * place), whether from a diffusers folder (`unet/config.json` + `diffusion_pytorch_model.safetensors`,
 * also via the Hugging Face cache) or from an original single-file checkpoint (SGM / AUTOMATIC1111 /
 * ComfyUI `.safetensors`, configs built in or from `--config DIR`). The pipeline only sees this.
 *
 *   const m = openModelSource("model.safetensors", { config: "path/to/diffusers-folder" });
 *   m.unet.config; m.unet.source.lookup("conv_in.weight", [320, 4, 3, 3]);
 *
 * A VAE override (`vae`: a diffusers AutoencoderKL folder or its repo id in the cache, such as
 * madebyollin/sdxl-vae-fp16-fix) replaces the model's own VAE; its latent channels must fit the UNet.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { CLIPTokenizer } from "../tokenizer/index.js";
import { loadSchedulerConfig } from "../schedulers/index.js";
import { detectComponentKind, type ComponentKind } from "../models/components.js";
import { ModelFolderError, folderComponent, type ComponentWeights, type Variant } from "./component.js";
import { hubSnapshot, repoCacheDir, resolveModelFolder, type ModelFolder } from "./model-folder.js";
import { SingleFileError, openSingleFile, type SingleFileCheckpoint } from "./single-file.js";
import { VaeFileError, openVaeFile } from "./vae-file.js";
import { readHeader } from "../safetensors/read.js";
import { decoderFileConfig, decoderFileSource } from "../models/taesd/autoencoder-tiny.js";
import { SDXL_TOKENIZER, SDXL_TOKENIZER_2, type TokenizerSpecials } from "./builtin-configs/index.js";

export class ModelSourceError extends Error {}
/** A single-file checkpoint whose tokenizers were found nowhere (the pipeline may fetch them and retry). */
export class MissingTokenizersError extends ModelSourceError {}

export { folderComponent, type ComponentWeights } from "./component.js";

export interface ModelSource {
  format: "diffusers" | "single-file";
  /** dir: the diffusers folder, or for a single file the file itself; name: what PNG infotexts call the model. */
  model: ModelFolder;
  /** model_index.json (empty when absent, and for single files). */
  modelIndex: Record<string, unknown>;
  schedulerConfig: Record<string, unknown>;
  unet: ComponentWeights;
  vae: ComponentWeights;
  /** Absent for an SDXL refiner (model_index text_encoder null): it has text_encoder_2 only. */
  textEncoder?: ComponentWeights;
  textEncoder2: ComponentWeights;
  /** tokenizer (absent with text_encoder) and tokenizer_2. */
  tokenizers: readonly [CLIPTokenizer | undefined, CLIPTokenizer];
  /** Single files: the built-in architecture recognised ("sdxl", "ssd-1b", "vega"), when one fits. */
  architecture?: string;
  /** Single files: the folder whose tokenizer/ and tokenizer_2/ were used. */
  tokenizersFrom?: string;
  /** Warnings worth telling the user (tensors of a single file that were not loaded, an ignored variant). */
  notes: string[];
}

export interface OpenModelOptions {
  /** Diffusers folders: "fp16" for *.fp16.safetensors, "fp32"; default fp32 if present, else fp16. */
  variant?: Variant;
  /** Single files: a diffusers folder whose configs (and tokenizer/, tokenizer_2/) describe the checkpoint. */
  config?: string;
  /** A diffusers AutoencoderKL folder (or repo id in the HF cache) used instead of the model's VAE. */
  vae?: string;
  env?: NodeJS.ProcessEnv;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

/** A single-file checkpoint is named as a file: an existing file, or a path ending in a checkpoint extension. */
export function looksLikeSingleFile(spec: string): boolean {
  return isFile(resolve(spec)) || /\.(safetensors|ckpt|pt|pth|bin)$/i.test(spec);
}

/** Opens a diffusers folder / HF cache repo id, or a single-file checkpoint, with an optional VAE override. */
export function openModelSource(spec: string, opts: OpenModelOptions = {}): ModelSource {
  const m = looksLikeSingleFile(spec) ? openSingleFileSource(spec, opts) : openFolderSource(spec, opts);
  checkLatentChannels(m.unet, m.vae);
  return m;
}

function checkLatentChannels(unet: ComponentWeights, vae: ComponentWeights): void {
  const latent = Number(vae.config.latent_channels ?? 4);
  const inC = Number(unet.config.in_channels ?? 4), outC = Number(unet.config.out_channels ?? inC);
  // an inpainting UNet also takes the mask and the masked image's latents: 2 * latent + 1 channels
  if ((latent !== inC && inC !== 2 * latent + 1) || latent !== outC) {
    throw new ModelSourceError(
      `the VAE ${vae.where} has latent_channels ${latent}, but the UNet ${unet.where} works on ${inC}-channel latents (in_channels ${inC}, out_channels ${outC}); use a VAE made for this model family (SDXL VAEs have 4)`);
  }
}

/** model_index.json as an object; a malformed one is an error that names the file. */
function readModelIndex(file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ModelSourceError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ModelSourceError(`${file}: must hold a JSON object`);
  return v as Record<string, unknown>;
}

function openFolderSource(spec: string, opts: OpenModelOptions): ModelSource {
  const model = resolveModelFolder(spec, opts.env);
  if (opts.config) {
    throw new ModelSourceError(`--config / config applies to single-file checkpoints; ${model.dir} is a diffusers folder with its own configs`);
  }
  const indexFile = join(model.dir, "model_index.json");
  const modelIndex = existsSync(indexFile) ? readModelIndex(indexFile) : {};
  const schedulerConfig = loadSchedulerConfig(model.dir);
  const comp = (name: string) => folderComponent(join(model.dir, name), opts.variant);
  // an SDXL refiner's model_index declares text_encoder and tokenizer null (CLIP-G alone conditions it)
  const declaredNull = (name: string) => name in modelIndex && (modelIndex[name] === null || (Array.isArray(modelIndex[name]) && (modelIndex[name] as unknown[])[0] === null));
  const firstEncoder = !declaredNull("text_encoder");
  if (firstEncoder === declaredNull("tokenizer")) {
    throw new ModelSourceError(`${indexFile}: text_encoder and tokenizer must both be present or both null`);
  }
  return {
    format: "diffusers", model, modelIndex, schedulerConfig,
    unet: comp("unet"),
    // The model's own VAE folder is not opened when an override replaces it.
    vae: opts.vae ? openVaeOverride(opts.vae, opts.variant, opts.env) : comp("vae"),
    textEncoder: firstEncoder ? comp("text_encoder") : undefined,
    textEncoder2: comp("text_encoder_2"),
    tokenizers: [firstEncoder ? CLIPTokenizer.fromDirectory(join(model.dir, "tokenizer")) : undefined, CLIPTokenizer.fromDirectory(join(model.dir, "tokenizer_2"))],
    notes: [],
  };
}

function openSingleFileSource(spec: string, opts: OpenModelOptions): ModelSource {
  const file = resolve(spec);
  const sf: SingleFileCheckpoint = openSingleFile(file, { configDir: opts.config });
  const notes: string[] = [];
  if (opts.variant) notes.push(`${file}: variant "${opts.variant}" is ignored for a single-file checkpoint (its tensors are read as stored)`);
  if (sf.unmapped.length) {
    notes.push(`${file}: ${sf.unmapped.length} tensor(s) outside the UNet, VAE and text encoders were not loaded (e.g. ${sf.unmapped.slice(0, 3).join(", ")})`);
  }
  if (!opts.vae && [...sf.vae.keys()].length === 0) {
    throw new ModelSourceError(`${file}: the checkpoint holds no VAE (no first_stage_model.* tensors); pass --vae DIR (library: { vae }) with a diffusers AutoencoderKL folder, e.g. madebyollin/sdxl-vae-fp16-fix`);
  }
  const tok = findTokenizers(file, sf, opts.env);
  const part = (name: "unet" | "vae" | "textEncoder2"): ComponentWeights => ({
    config: sf.configs[name], source: sf[name], where: `${file} (${name})`,
    transposedKeys: name === "textEncoder2" ? sf.transposedKeys : undefined,
  });
  const textEncoder = sf.textEncoder && sf.configs.textEncoder ? { config: sf.configs.textEncoder, source: sf.textEncoder, where: `${file} (textEncoder)` } : undefined;
  return {
    format: "single-file",
    model: { dir: file, name: basename(file).replace(/\.[^.]+$/, "") },
    // what a refiner's model_index.json says (diffusers' single-file loader sets the same)
    modelIndex: sf.refiner ? { requires_aesthetics_score: true, force_zeros_for_empty_prompt: false } : {},
    schedulerConfig: sf.configs.scheduler,
    unet: part("unet"),
    vae: opts.vae ? openVaeOverride(opts.vae, undefined, opts.env) : part("vae"),
    textEncoder, textEncoder2: part("textEncoder2"),
    tokenizers: tok.tokenizers,
    tokenizersFrom: tok.where,
    architecture: sf.architecture,
    notes,
  };
}

/** Repos in the HF cache whose tokenizer/ and tokenizer_2/ a single SDXL-family file can use. */
export const TOKENIZER_REPOS = ["segmind/SSD-1B", "stabilityai/stable-diffusion-xl-base-1.0", "stabilityai/stable-diffusion-xl-refiner-1.0"] as const;

const hasBpe = (dir: string) => existsSync(join(dir, "vocab.json")) && existsSync(join(dir, "merges.txt"));


function parseMerges(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.length === 0 || (i === 0 && line.startsWith("#version"))) return;
    const parts = line.split(" ");
    if (parts.length === 2) out.push([parts[0], parts[1]]);
  });
  return out;
}

/** A tokenizer folder; without tokenizer_config.json, SDXL's special tokens for that tokenizer. */
function loadTokenizer(dir: string, specials: TokenizerSpecials): CLIPTokenizer {
  if (existsSync(join(dir, "tokenizer_config.json"))) return CLIPTokenizer.fromDirectory(dir);
  return new CLIPTokenizer({
    vocab: JSON.parse(readFileSync(join(dir, "vocab.json"), "utf8")) as Record<string, number>,
    merges: parseMerges(readFileSync(join(dir, "merges.txt"), "utf8")),
    ...specials,
  });
}

/**
 * Single files carry no tokenizer: the `--config` folder's tokenizer/ and tokenizer_2/, else those of a
 * diffusers folder next to the file, else an SDXL/SSD-1B snapshot in the HF cache.
 */
function findTokenizers(file: string, sf: SingleFileCheckpoint, env: NodeJS.ProcessEnv | undefined): { tokenizers: readonly [CLIPTokenizer | undefined, CLIPTokenizer]; where: string } {
  const candidates: string[] = [];
  if (sf.tokenizerDirs) candidates.push(dirname(sf.tokenizerDirs.tokenizer));
  candidates.push(dirname(file));
  const looked = [...candidates];
  for (const repo of TOKENIZER_REPOS) {
    const snap = hubSnapshot(repo, env);
    if (snap) candidates.push(snap);
    looked.push(snap ?? `${repoCacheDir(repo, env)} (${repo}, not in the cache)`);
  }
  for (const dir of candidates) {
    const t1 = join(dir, "tokenizer"), t2 = join(dir, "tokenizer_2");
    // a refiner (CLIP-G alone) needs tokenizer_2 only, as its diffusers folder has
    if (hasBpe(t2) && (sf.refiner || hasBpe(t1))) {
      return { tokenizers: [sf.refiner ? undefined : loadTokenizer(t1, SDXL_TOKENIZER), loadTokenizer(t2, SDXL_TOKENIZER_2)], where: dir };
    }
  }
  throw new MissingTokenizersError(
    `${file}: a single-file checkpoint has no tokenizer; found no tokenizer/ and tokenizer_2/ folders (vocab.json, merges.txt) in ${looked.join(", ")}. ` +
    `Pass --config DIR with a diffusers SDXL folder that has them, or run once online (generate and fromPretrained then fetch ` +
    `segmind/SSD-1B's tokenizer/ and tokenizer_2/, 3 MB, into the Hugging Face cache)`);
}

/**
 * A VAE override: a diffusers AutoencoderKL folder (config.json + weights), a model folder with vae/,
 * or a repo id in the HF cache (e.g. madebyollin/sdxl-vae-fp16-fix). The pipeline's variant is tried
 * first, then whatever weights the folder has.
 */
export function openVaeOverride(spec: string, variant: Variant, env?: NodeJS.ProcessEnv): ComponentWeights {
  const pick = (dir: string) => (existsSync(join(dir, "config.json")) ? dir : existsSync(join(dir, "vae", "config.json")) ? join(dir, "vae") : undefined);
  const asPath = resolve(spec);
  let dir: string | undefined;
  let looked: string;
  if (isDir(asPath)) {
    dir = pick(asPath);
    looked = `${asPath} (no config.json and no vae/config.json)`;
  } else if (isFile(asPath)) {
    try {
      return openVaeFile(asPath);
    } catch (e) {
      if (e instanceof VaeFileError || e instanceof SingleFileError) throw new ModelSourceError(`--vae ${spec}: ${e.message}`);
      throw e;
    }
  } else if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(spec) && !spec.startsWith(".")) {
    const snap = hubSnapshot(spec, env);
    dir = snap && pick(snap);
    looked = snap ? `${snap} (no config.json)` : `${repoCacheDir(spec, env)} (not in the Hugging Face cache; download it with: npx ssd1b download --vae ${spec})`;
  } else {
    looked = `${asPath} (not there)`;
  }
  if (!dir) throw new ModelSourceError(`VAE "${spec}" not found: looked at ${looked}`);
  return componentFolderOfKind(dir, "vae", variant);
}

const CLASS_OF_KIND: Record<ComponentKind, string> = {
  "unet": "UNet2DConditionModel", "vae": "AutoencoderKL", "clip-text": "CLIPTextModel",
  "clip-text-projection": "CLIPTextModelWithProjection", "autoencoder-tiny": "AutoencoderTiny", "controlnet": "ControlNetModel",
};

/**
 * The weights of a --vae / --taesd folder, after checking that its config.json describes that kind
 * of model (and pointing to the other flag when it is the other autoencoder). A missing variant
 * falls back to the folder's default weights.
 */
function componentFolderOfKind(dir: string, want: "vae" | "autoencoder-tiny", variant: Variant): ComponentWeights {
  const flag = want === "vae" ? "--vae" : "--taesd";
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, any>;
  let kind: ComponentKind;
  try {
    kind = detectComponentKind(config, basename(dir));
  } catch (e) {
    throw new ModelSourceError(`${flag} ${dir}: ${(e as Error).message}`);
  }
  if (kind !== want) {
    const hint = kind === "autoencoder-tiny" ? " (a TAESD: pass it with --taesd, library { taesd })"
      : kind === "vae" ? " (a full VAE: pass it with --vae)" : "";
    const article = kind === "vae" || kind === "autoencoder-tiny" ? "an" : "a";
    throw new ModelSourceError(`${flag} ${dir}: config.json describes ${article} ${CLASS_OF_KIND[kind]}, not an ${want === "vae" ? "AutoencoderKL" : "AutoencoderTiny (TAESD)"}${hint}`);
  }
  try {
    return folderComponent(dir, variant);
  } catch (e) {
    if (variant && e instanceof ModelFolderError) return folderComponent(dir, undefined);
    throw e;
  }
}

/**
 * A TAESD (diffusers AutoencoderTiny) for previews and fast decoding: its folder (config.json +
 * diffusion_pytorch_model[.fp16].safetensors), a repo id in the HF cache (madebyollin/taesdxl), or
 * the standalone decoder file of ComfyUI / AUTOMATIC1111 (taesdxl_decoder.safetensors).
 */
export function openTaesdSource(spec: string, variant: Variant, env?: NodeJS.ProcessEnv): ComponentWeights {
  const asPath = resolve(spec);
  if (isFile(asPath)) {
    if (!/\.safetensors$/i.test(asPath)) {
      throw new ModelSourceError(`--taesd ${spec}: only .safetensors decoder files are read (convert a .pth with safetensors' torch save_file, or use the diffusers folder madebyollin/taesdxl)`);
    }
    try {
      const tensors = readHeader(asPath).tensors;
      return { config: decoderFileConfig(tensors, asPath), source: decoderFileSource(tensors, asPath), where: asPath, decoderOnly: true };
    } catch (e) {
      throw new ModelSourceError((e as Error).message);
    }
  }
  let dir: string | undefined;
  if (isDir(asPath)) {
    if (!existsSync(join(asPath, "config.json"))) throw new ModelSourceError(`--taesd ${asPath}: no config.json (expected a diffusers AutoencoderTiny folder such as madebyollin/taesdxl, or a taesdxl_decoder.safetensors file)`);
    dir = asPath;
  } else if (/^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(spec) && !spec.startsWith(".")) {
    const snap = hubSnapshot(spec, env);
    if (!snap || !existsSync(join(snap, "config.json"))) {
      const looked = snap ? `${snap} (no config.json)` : `${repoCacheDir(spec, env)} (not in the Hugging Face cache; download it with: npx ssd1b download --taesd ${spec})`;
      throw new ModelSourceError(`TAESD "${spec}" not found: looked at ${looked}`);
    }
    dir = snap;
  } else {
    throw new ModelSourceError(`TAESD "${spec}" not found: ${asPath} is neither a folder nor a file`);
  }
  return componentFolderOfKind(dir, "autoencoder-tiny", variant);
}
