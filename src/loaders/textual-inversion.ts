/**
 * SDXL textual inversions (embeddings), in the two layouts people have:
 * - one .safetensors file with `clip_l` [n, 768] and `clip_g` [n, 1280], n vectors for each text
 *   encoder, as A1111 and ComfyUI read them from their embeddings folder and diffusers'
 *   load_textual_inversion takes them (one call per encoder); the token is the file's name without
 *   extension unless given;
 * - the pair diffusers' textual_inversion_sdxl.py saves, `learned_embeds.safetensors` (text_encoder)
 *   and `learned_embeds_2.safetensors` (text_encoder_2) with a `-steps-N` suffix for checkpoints, each
 *   holding one tensor [n, width] (or [width]) named by the placeholder token, the token unless given;
 *   named by either file or by their folder.
 * Files of other models (SD 1.x `emb_params`, `string_to_param`) are refused naming what they hold.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { readFloat32, readHeader, SafetensorsError, type TensorEntry } from "../safetensors/index.js";

export class TextualInversionError extends Error {}

/** More vectors than fit a 75-token chunk cannot be placed in a prompt. */
export const MAX_TI_VECTORS = 75;

/** Vectors of all embeddings together: each is a row the text encoders' graphs hold (4096 x 1280 floats: 21 MB for CLIP-G). */
export const MAX_TI_TOTAL_VECTORS = 4096;

export interface TextualInversion {
  /** The token the prompt names it by. */
  token: string;
  file: string;
  /** Vectors per encoder. */
  vectors: number;
  /** [vectors, 768] for text_encoder (CLIP-L) and [vectors, 1280] for text_encoder_2 (CLIP-G). */
  clipL: Float32Array;
  clipG: Float32Array;
}

/** The token a file is named by: its file name without `.safetensors`. */
export const tokenOfFile = (file: string): string => basename(file).replace(/\.safetensors$/i, "");

/** The token an embedding is named by unless given (a diffusers pair's placeholder token, else the file's name); the file's name when it cannot be read. */
export function embeddingTokenOf(file: string): string {
  try { return readTextualInversion(file).token; } catch (e) { if (e instanceof TextualInversionError) return tokenOfFile(file); throw e; }
}

/** The two files of a diffusers-trained embedding named by `path` (either file, or their folder); undefined for other names. */
export function diffusersEmbeddingPair(path: string): { clipL: string; clipG: string } | undefined {
  if (isFolder(path)) return { clipL: join(path, "learned_embeds.safetensors"), clipG: join(path, "learned_embeds_2.safetensors") };
  const dir = dirname(path), name = basename(path);
  const second = /^learned_embeds_2(.*\.safetensors)$/i.exec(name);
  if (second) return { clipL: join(dir, `learned_embeds${second[1]}`), clipG: path };
  const first = /^learned_embeds(?!_2)(.*\.safetensors)$/i.exec(name);
  if (first) return { clipL: path, clipG: join(dir, `learned_embeds_2${first[1]}`) };
  return undefined;
}

const isFolder = (path: string): boolean => { try { return statSync(path).isDirectory(); } catch { return false; } };

function tensorsOf(file: string): Map<string, TensorEntry> {
  try {
    return readHeader(file).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError || (e as NodeJS.ErrnoException).code === "ENOENT") throw new TextualInversionError(`${file}: ${(e as Error).message}`);
    throw e;
  }
}

/** Reads and checks one SDXL embedding (a file, or a diffusers pair by either file or its folder); `dims`, when given, are the encoders' widths [CLIP-L, CLIP-G] (SDXL's 768 and 1280). */
export function readTextualInversion(file: string, opts: { token?: string; dims?: readonly [number, number] } = {}): TextualInversion {
  const dims = opts.dims;
  const pair = diffusersEmbeddingPair(file);
  const own = pair && isFolder(file) ? undefined : tensorsOf(file);
  // A file of the A1111 layout keeps its meaning whatever its name.
  const a1111 = own && own.has("clip_l") && own.has("clip_g");
  let l: TensorEntry, g: TensorEntry, token: string;
  if (pair && !a1111) {
    const lt = pairTensor(pair.clipL, pair, "text_encoder"), gt = pairTensor(pair.clipG, pair, "text_encoder_2");
    if (lt.name !== gt.name) throw new TextualInversionError(`${pair.clipL} names its token "${lt.name}" but ${pair.clipG} "${gt.name}"`);
    [l, g, token] = [lt.entry, gt.entry, opts.token ?? lt.name];
  } else {
    const tensors = own ?? tensorsOf(file);
    const found = [tensors.get("clip_l"), tensors.get("clip_g")];
    if (!found[0] || !found[1]) {
      const keys = [...tensors.keys()].slice(0, 5).join(", ");
      const sd1 = tensors.has("emb_params") || [...tensors.keys()].some((k) => k.startsWith("string_to_param"));
      throw new TextualInversionError(`${file} is not an SDXL embedding (it needs clip_l and clip_g tensors; it holds ${keys || "nothing"})${sd1 ? ": an SD 1.x embedding does not fit SDXL's text encoders" : ""}`);
    }
    [l, g, token] = [found[0], found[1], opts.token ?? tokenOfFile(file)];
  }
  const vectorsOf = (e: TensorEntry) => (e.shape.length === 1 ? 1 : e.shape[0]);
  const widthOf = (e: TensorEntry) => e.shape[e.shape.length - 1];
  const vectors = vectorsOf(l);
  for (const [entry, d, name] of [[l, dims?.[0], "clip_l"], [g, dims?.[1], "clip_g"]] as const) {
    if (entry.shape.length < 1 || entry.shape.length > 2 || (d !== undefined && widthOf(entry) !== d)) throw new TextualInversionError(`${file}: ${name} is [${entry.shape}], the text encoder takes [n, ${d ?? "width"}]`);
    if (vectorsOf(entry) !== vectors) throw new TextualInversionError(`${file}: clip_l has ${vectors} vectors but clip_g ${vectorsOf(entry)}`);
  }
  if (vectors < 1 || vectors > MAX_TI_VECTORS) throw new TextualInversionError(`${file}: ${vectors} vectors; an embedding has 1 to ${MAX_TI_VECTORS}`);
  if (!/^\S+$/.test(token)) throw new TextualInversionError(`the embedding token ${JSON.stringify(token)} must be one word (no spaces)`);
  const clipL = readFloat32(l).slice(), clipG = readFloat32(g).slice();
  if (!clipL.every(Number.isFinite) || !clipG.every(Number.isFinite)) throw new TextualInversionError(`${file}: the vectors hold NaN or infinite values`);
  return { token, file, vectors, clipL, clipG };
}

/** The one tensor of a diffusers embedding file and its name (the placeholder token). */
function pairTensor(file: string, pair: { clipL: string; clipG: string }, encoder: string): { name: string; entry: TensorEntry } {
  if (!existsSync(file)) throw new TextualInversionError(`${file} not found: a diffusers-trained embedding is the pair ${basename(pair.clipL)} and ${basename(pair.clipG)} in one folder, this one ${encoder}'s vectors`);
  const tensors = tensorsOf(file);
  if (tensors.size !== 1) throw new TextualInversionError(`${file} holds ${tensors.size} tensors; a diffusers embedding file holds one, named by its token`);
  const [name, entry] = [...tensors][0];
  return { name, entry };
}

/** An embedding as a folder listing shows it (A1111's /sdapi/v1/embeddings, ComfyUI's /embeddings). */
export interface EmbeddingInfo { token: string; file: string; vectors: number }

export interface EmbeddingsFolder {
  dir: string;
  /** The SDXL embeddings, in name order (the first of two files of one name). */
  loaded: EmbeddingInfo[];
  /** The other .safetensors files and why (an SD 1.x embedding, a name taken, a bad file). */
  skipped: { token: string; file: string; why: string }[];
}

/** Files read from one embeddings folder at most (A1111's folders hold tens). */
export const MAX_EMBEDDING_FILES = 1000;

/** The .safetensors embeddings under `dir` (sub-folders too), as A1111 loads its embeddings folder; diffusers pairs named by their token. */
export function scanEmbeddingsFolder(dir: string): EmbeddingsFolder {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new TextualInversionError(`${dir} is not a folder`);
    names = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((n) => /\.safetensors$/i.test(n)).sort();
  } catch (e) {
    if (e instanceof TextualInversionError) throw e;
    throw new TextualInversionError(`${dir}: ${(e as Error).message}`);
  }
  if (names.length > MAX_EMBEDDING_FILES) throw new TextualInversionError(`${dir} holds ${names.length} .safetensors files; at most ${MAX_EMBEDDING_FILES} are read as embeddings`);
  const out: EmbeddingsFolder = { dir, loaded: [], skipped: [] };
  for (const name of names) {
    const file = join(dir, name);
    // A diffusers pair is read (and listed) by its first file.
    const pair = diffusersEmbeddingPair(file);
    if (pair && pair.clipG === file && existsSync(pair.clipL)) continue;
    try {
      const ti = readTextualInversion(file);
      const taken = out.loaded.find((e) => e.token === ti.token);
      if (taken) out.skipped.push({ token: ti.token, file, why: `the name is taken by ${taken.file}` });
      else out.loaded.push({ token: ti.token, file, vectors: ti.vectors });
    } catch (e) {
      if (!(e instanceof TextualInversionError)) throw e;
      out.skipped.push({ token: tokenOfFile(file), file, why: e.message });
    }
  }
  return out;
}
