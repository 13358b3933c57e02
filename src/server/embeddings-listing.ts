/**
 * The textual inversions a server's runners hold (`--embedding`, `--embeddings-dir`), as A1111's
 * GET /sdapi/v1/embeddings ({ loaded, skipped }: name -> { step, sd_checkpoint, sd_checkpoint_name,
 * shape, vectors }; an SDXL embedding's shape is 768 + 1280) and ComfyUI's GET /embeddings (names)
 * list them.
 */
import type { EmbeddingsFolder } from "../loaders/textual-inversion.js";

export interface EmbeddingsListing {
  /** `vectors` unknown for an --embedding file (read by the runner). */
  loaded: { token: string; file: string; vectors?: number }[];
  skipped: { token: string; file: string; why: string }[];
  folder?: EmbeddingsFolder;
}

/** SDXL's CLIP-L and CLIP-G widths together, what A1111 gives as an SDXL embedding's shape. */
const SDXL_SHAPE = 768 + 1280;

export function a1111Embeddings(listing: EmbeddingsListing | undefined): { loaded: Record<string, unknown>; skipped: Record<string, unknown> } {
  const entry = (vectors: number | null) => ({ step: null, sd_checkpoint: null, sd_checkpoint_name: null, shape: SDXL_SHAPE, vectors });
  return {
    loaded: Object.fromEntries((listing?.loaded ?? []).map((e) => [e.token, entry(e.vectors ?? null)])),
    skipped: Object.fromEntries((listing?.skipped ?? []).map((e) => [e.token, { ...entry(null), shape: null }])),
  };
}

export const comfyEmbeddings = (listing: EmbeddingsListing | undefined): string[] => (listing?.loaded ?? []).map((e) => e.token);
