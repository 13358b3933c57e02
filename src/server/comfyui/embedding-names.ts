/** A ComfyUI prompt's `embedding:NAME` words checked before the prompt is queued, by the rule the runner applies (prompts/embeddings.ts). */
import { EmbeddingVocabulary } from "../../prompts/embeddings.js";
import { parseComfyWeights } from "../../prompts/comfyui.js";
import { PromptError } from "./graph.js";
import type { EmbeddingsListing } from "../embeddings-listing.js";
import type { JobSpec } from "../job.js";

/** Each embedding:NAME of the job's prompts must name a loaded embedding (a PromptError naming the loaded ones). */
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
