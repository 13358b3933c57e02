/**
 * AUTOMATIC1111's prompt editing in the pipeline (A1111 syntax): every prompt field is scheduled over
 * the steps (prompts/prompt-editing.ts), each distinct combination of texts is encoded once, all at one
 * chunk count (so one UNet session serves every step), and model call i of the loop takes the
 * combination A1111's reconstruct_cond_batch picks for its step counter i: the first entry ending at
 * or after i (the first entry past the last, as A1111 does when a two-call sampler outruns the steps).
 */
import { promptSchedule, scheduledAt, type ScheduledText } from "../../prompts/prompt-editing.js";
import type { EncodePromptOptions, PromptEmbeddings, PromptEncoder } from "../prompt-encoding.js";
import { PipelineInputError } from "../errors.js";

/** The embeddings of one schedule entry: they hold for model calls up to `endAt`. */
export interface ScheduledEmbeddings { endAt: number; embeds: PromptEmbeddings }

/**
 * Distinct schedule entries times their 75-token chunks, at most: each entry's embeddings are kept for
 * the whole run (256 chunks of SDXL's [77, 2048] are 161 MB, doubled under guidance).
 */
export const MAX_SCHEDULED_CHUNKS = 256;

const FIELDS = ["prompt", "prompt2", "negativePrompt", "negativePrompt2"] as const;
type Field = (typeof FIELDS)[number];

/**
 * The prompts' embeddings, and with prompt editing in any field (A1111 syntax only) their schedule over
 * `steps` (`baseSteps`: a hires fix's second pass, A1111's hires offsets).
 */
export async function encodeEdited(encoder: PromptEncoder, opts: EncodePromptOptions, steps: number, baseSteps?: number): Promise<{ embeds: PromptEmbeddings; schedule?: ScheduledEmbeddings[] }> {
  const syntax = opts.promptSyntax ?? encoder.promptSyntax;
  if (syntax !== "a1111") return { embeds: await encoder.encode(opts) };
  const texts = (f: Field) => { const v = opts[f]; return v === undefined ? [] : typeof v === "string" ? [v] : v; };
  // each text parsed once: it edits itself when its schedule is more than the text as it is
  const hires = baseSteps === undefined ? undefined : { baseSteps };
  const schedules = new Map<string, ScheduledText[]>();
  for (const f of FIELDS) for (const t of texts(f)) if (!schedules.has(t)) schedules.set(t, promptSchedule(t, steps, hires));
  if (![...schedules].some(([t, s]) => s.length > 1 || s[0].text !== t)) return { embeds: await encoder.encode(opts) };
  const scheduleOf = (text: string) => schedules.get(text)!;
  const ends = new Set<number>();
  for (const s of schedules.values()) for (const e of s) ends.add(e.endAt);
  // each field's value at a step, as a call's options
  const at = (step: number): EncodePromptOptions => {
    const o: EncodePromptOptions = { ...opts };
    for (const f of FIELDS) {
      const v = opts[f];
      if (v === undefined) continue;
      const pick = (t: string) => scheduledAt(scheduleOf(t), step).text;
      (o as Record<Field, string | string[]>)[f] = typeof v === "string" ? pick(v) : v.map(pick);
    }
    return o;
  };
  const entries = [...ends].sort((a, b) => a - b).map((endAt) => ({ endAt, opts: at(endAt) }));
  const key = (o: EncodePromptOptions) => JSON.stringify(FIELDS.map((f) => o[f]));
  const distinct = new Map(entries.map((e) => [key(e.opts), e.opts]));
  const chunks = Math.max(...[...distinct.values()].map((o) => encoder.chunkCount(o)));
  if (distinct.size * chunks > MAX_SCHEDULED_CHUNKS) {
    throw new PipelineInputError(`the prompt editing makes ${distinct.size} distinct prompts of ${chunks} chunks of 75 tokens over the steps; at most ${MAX_SCHEDULED_CHUNKS} chunks in all are encoded (fewer alternations, shorter prompts or fewer steps)`);
  }
  const encoded = new Map<string, PromptEmbeddings>();
  for (const [k, o] of distinct) encoded.set(k, await encoder.encode(o, { minChunks: chunks }));
  const schedule = entries.map((e) => ({ endAt: e.endAt, embeds: encoded.get(key(e.opts))! }));
  return { embeds: schedule[0].embeds, schedule };
}

/** The entry model call `call` (0-based, A1111's step counter) takes. */
export function embedsAt(schedule: readonly ScheduledEmbeddings[], call: number): ScheduledEmbeddings {
  return scheduledAt(schedule, call);
}
