/**
 * Bounds on what a prompt may cost. Parsing is linear, but each 75-token chunk is one text-encoder run
 * and widens the UNet's cross-attention, so a 10 KB prompt of BREAKs would be 1,666 chunks.
 */
import { PromptSyntaxError } from "./errors.js";

/** 75-token chunks per prompt: 2,400 tokens, far above any real prompt. */
export const MAX_PROMPT_CHUNKS = 32;
/** Characters per prompt (either syntax): room for MAX_PROMPT_CHUNKS of text with emphasis. */
export const MAX_PROMPT_CHARS = 20_000;

export function checkPromptLength(prompt: string, max = MAX_PROMPT_CHARS): void {
  if (prompt.length > max) throw new PromptSyntaxError(`the prompt has ${prompt.length} characters, over the limit of ${max}`);
}
