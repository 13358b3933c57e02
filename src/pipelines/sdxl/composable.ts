/**
 * A1111's composable diffusion in the pipeline (A1111 syntax): each positive prompt split at AND
 * (prompts/composable.ts) becomes k positive blocks of the UNet batch, [negative x B, sub-prompt 1 x B,
 * ..., sub-prompt k x B], guided as A1111's combine_denoised: uncond + cfg·Σ w·(cond_i - uncond).
 * The prompts of one call must split alike (the same count and weights), as one batch layout serves them.
 */
import { isComposable, splitComposable } from "../../prompts/composable.js";
import type { EncodePromptOptions, PromptEmbeddings } from "../prompt-encoding.js";
import { PipelineInputError } from "../errors.js";

/** Sub-prompts per prompt, at most: each is a UNet batch block. */
export const MAX_SUB_PROMPTS = 8;

const asList = (p: string | string[]) => (typeof p === "string" ? [p] : p);

/**
 * The encode options with the positive prompts as k blocks (sub-prompt j of every prompt, j = 1..k)
 * and the negatives repeated to match, and the k weights; undefined when no prompt composes.
 */
export function expandComposable(opts: EncodePromptOptions & { subPrompts?: readonly SubPromptOption[] }, syntax: string): { opts: EncodePromptOptions; weights: number[] } | undefined {
  if (opts.subPrompts) return explicitSubPrompts(opts, opts.subPrompts);
  if (syntax !== "a1111") return undefined;
  const prompts = asList(opts.prompt);
  if (!prompts.some(isComposable)) return undefined;
  if (opts.prompt2 !== undefined) throw new PipelineInputError("prompt2 is not combined with AND here (A1111 has one prompt)");
  const subs = prompts.map(splitComposable);
  const k = subs[0].length, weights = subs[0].map((s) => s.weight);
  if (k > MAX_SUB_PROMPTS) throw new PipelineInputError(`the prompt has ${k} sub-prompts (AND); at most ${MAX_SUB_PROMPTS} here`);
  if (subs.some((s) => s.length !== k || s.some((x, j) => x.weight !== weights[j]))) {
    throw new PipelineInputError("the prompts of one call must split alike at AND (as many sub-prompts, the same weights): each is a block of the UNet batch");
  }
  if (weights.some((w) => !Number.isFinite(w))) throw new PipelineInputError("an AND weight must be a finite number");
  const repeat = (v: string | string[] | undefined) => (v === undefined || typeof v === "string" ? v : Array.from({ length: k }, () => v).flat());
  return {
    opts: { ...opts, prompt: Array.from({ length: k }, (_, j) => subs.map((s) => s[j].text)).flat(), negativePrompt: repeat(opts.negativePrompt), negativePrompt2: repeat(opts.negativePrompt2) },
    weights,
  };
}

/** A sub-prompt given as such (ComfyUI's ConditioningCombine, any syntax): its texts and weight. */
export interface SubPromptOption { prompt: string; prompt2?: string; weight: number }

/** The call's subPrompts in place of its prompt: one block each (one image prompt; negatives as given). */
function explicitSubPrompts(opts: EncodePromptOptions, subs: readonly SubPromptOption[]): { opts: EncodePromptOptions; weights: number[] } {
  if (subs.length < 1 || subs.length > MAX_SUB_PROMPTS) throw new PipelineInputError(`subPrompts takes 1 to ${MAX_SUB_PROMPTS} sub-prompts, got ${subs.length}`);
  if (Array.isArray(opts.negativePrompt) || Array.isArray(opts.negativePrompt2)) throw new PipelineInputError("subPrompts take one negative prompt (a string)");
  for (const s of subs) {
    if (typeof s.prompt !== "string" || (s.prompt2 !== undefined && typeof s.prompt2 !== "string")) throw new PipelineInputError("a sub-prompt's prompt and prompt2 must be strings");
    if (!Number.isFinite(s.weight)) throw new PipelineInputError(`a sub-prompt's weight must be a finite number, got ${s.weight}`);
  }
  const withSecond = subs.some((s) => s.prompt2 !== undefined);
  return {
    opts: { ...opts, prompt: subs.map((s) => s.prompt), ...(withSecond ? { prompt2: subs.map((s) => s.prompt2 ?? s.prompt) } : { prompt2: undefined }) },
    weights: subs.map((s) => s.weight),
  };
}

/** The embeddings with the negatives of the first block only (every block's are the same), memoized per object. */
export function firstBlockNegatives(k: number): (e: PromptEmbeddings) => PromptEmbeddings {
  const done = new Map<PromptEmbeddings, PromptEmbeddings>();
  return (e) => {
    let out = done.get(e);
    if (out) return out;
    const rows = e.promptEmbeds.shape[0] / k;
    const cut = (t: PromptEmbeddings["promptEmbeds"] | undefined) => t && { data: t.data.subarray(0, (t.data.length / t.shape[0]) * rows), shape: [rows, ...t.shape.slice(1)] };
    out = { ...e, negativePromptEmbeds: cut(e.negativePromptEmbeds), negativePooledPromptEmbeds: cut(e.negativePooledPromptEmbeds) };
    done.set(e, out);
    return out;
  };
}
