/**
 * SDXL textual inversions (embeddings): a .safetensors file with `clip_l` [n, 768] and `clip_g`
 * [n, 1280], n vectors for each text encoder, as A1111 and ComfyUI read them from their embeddings
 * folder and diffusers' load_textual_inversion takes them (one call per encoder). The token is the
 * file's name without extension unless given. Files of other models (SD 1.x `emb_params`,
 * `string_to_param`) are refused naming what they hold.
 */
import { basename } from "node:path";
import { readFloat32, readHeader, SafetensorsError } from "../safetensors/index.js";

export class TextualInversionError extends Error {}

/** More vectors than fit a 75-token chunk cannot be placed in a prompt. */
export const MAX_TI_VECTORS = 75;

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
