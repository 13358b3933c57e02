/**
 * SDXL textual inversions (embeddings): a .safetensors file with `clip_l` [n, 768] and `clip_g`
 * [n, 1280], n vectors for each text encoder, as A1111 and ComfyUI read them from their embeddings
 * folder and diffusers' load_textual_inversion takes them (one call per encoder). The token is the
 * file's name without extension unless given. Files of other models (SD 1.x `emb_params`,
 * `string_to_param`) are refused naming what they hold.
 */
import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { readFloat32, readHeader, SafetensorsError } from "../safetensors/index.js";

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

/** Reads and checks one SDXL embedding file; `dims`, when given, are the encoders' widths [CLIP-L, CLIP-G] (SDXL's 768 and 1280). */
export function readTextualInversion(file: string, opts: { token?: string; dims?: readonly [number, number] } = {}): TextualInversion {
  const dims = opts.dims;
  let tensors;
  try {
    tensors = readHeader(file).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError || (e as NodeJS.ErrnoException).code === "ENOENT") throw new TextualInversionError(`${file}: ${(e as Error).message}`);
    throw e;
  }
  const l = tensors.get("clip_l"), g = tensors.get("clip_g");
  if (!l || !g) {
    const keys = [...tensors.keys()].slice(0, 5).join(", ");
    const sd1 = tensors.has("emb_params") || [...tensors.keys()].some((k) => k.startsWith("string_to_param"));
    throw new TextualInversionError(`${file} is not an SDXL embedding (it needs clip_l and clip_g tensors; it holds ${keys || "nothing"})${sd1 ? ": an SD 1.x embedding does not fit SDXL's text encoders" : ""}`);
  }
  const vectors = l.shape[0];
  for (const [entry, d, name] of [[l, dims?.[0], "clip_l"], [g, dims?.[1], "clip_g"]] as const) {
    if (entry.shape.length !== 2 || (d !== undefined && entry.shape[1] !== d)) throw new TextualInversionError(`${file}: ${name} is [${entry.shape}], the text encoder takes [n, ${d ?? "width"}]`);
    if (entry.shape[0] !== vectors) throw new TextualInversionError(`${file}: clip_l has ${vectors} vectors but clip_g ${entry.shape[0]}`);
  }
  if (vectors < 1 || vectors > MAX_TI_VECTORS) throw new TextualInversionError(`${file}: ${vectors} vectors; an embedding has 1 to ${MAX_TI_VECTORS}`);
  const token = opts.token ?? tokenOfFile(file);
  if (!/^\S+$/.test(token)) throw new TextualInversionError(`the embedding token ${JSON.stringify(token)} must be one word (no spaces)`);
  const clipL = readFloat32(l).slice(), clipG = readFloat32(g).slice();
  if (!clipL.every(Number.isFinite) || !clipG.every(Number.isFinite)) throw new TextualInversionError(`${file}: the vectors hold NaN or infinite values`);
  return { token, file, vectors, clipL, clipG };
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

/** The .safetensors embeddings under `dir` (sub-folders too), as A1111 loads its embeddings folder. */
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
    const file = join(dir, name), token = tokenOfFile(file);
    try {
      const ti = readTextualInversion(file);
      const taken = out.loaded.find((e) => e.token === token);
      if (taken) out.skipped.push({ token, file, why: `the name is taken by ${taken.file}` });
      else out.loaded.push({ token, file, vectors: ti.vectors });
    } catch (e) {
      if (!(e instanceof TextualInversionError)) throw e;
      out.skipped.push({ token, file, why: e.message });
    }
  }
  return out;
}
