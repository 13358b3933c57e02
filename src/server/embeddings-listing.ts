/**
 * The textual inversions a server's runners hold (`--embedding`, `--embeddings-dir`), as A1111's
 * GET /sdapi/v1/embeddings ({ loaded, skipped }: name -> { step, sd_checkpoint, sd_checkpoint_name,
 * shape, vectors }; an SDXL embedding's shape is 768 + 1280) and ComfyUI's GET /embeddings (names)
 * list them.
 */
import type { EmbeddingsFolder } from "../loaders/textual-inversion.js";
import { EmbeddingVocabulary } from "../prompts/embeddings.js";
import { parseComfyWeights } from "../prompts/comfyui.js";
import { PromptError } from "./comfyui/graph.js";
import type { JobSpec } from "./job.js";

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

/** A ComfyUI prompt's embedding:NAME words checked against the loaded embeddings before it is queued (the runner's rule, prompts/embeddings.ts). */
export function checkEmbeddingNames(spec: JobSpec, listing: EmbeddingsListing | undefined): void {
  const vocabulary = new EmbeddingVocabulary((listing?.loaded ?? []).map((e) => ({ token: e.token, vectors: e.vectors ?? 1 })));
  for (const text of [spec.prompt, spec.negativePrompt, spec.prompt2, spec.negativePrompt2]) {
    if (!text?.includes("embedding:")) continue;
    try {
      for (const [piece] of parseComfyWeights(text)) vocabulary.comfyPieces(piece);
    } catch (e) {
      throw new PromptError("prompt_outputs_failed_validation", (e as Error).message);
    }
  }
}
