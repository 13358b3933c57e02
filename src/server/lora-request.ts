/**
 * The LoRAs a request asks for, in every API: A1111 `<lora:NAME:WEIGHT>` tags in the prompt and
 * negative prompt, and a JSON field `loras: [{ name, weight }]` (weight default 1). Names are checked
 * against the server's --lora-dir here, so that a mistake is a 400 before the job is queued; the
 * runner resolves them again. The set goes into spec.loras; LoRAs from the field are appended to the
 * prompt as tags, so that the PNG's parameters text names every LoRA used, as A1111's does.
 */
import { LoraTagError, checkLoraNames, extractLoraTags, formatLoraTag, loraTag, mergeLoraTags, type LoraTag } from "../prompts/lora-tags.js";
import { invalid } from "./errors.js";
import type { AppState } from "./generation.js";
import type { JobSpec } from "./job.js";
import { LoraLibraryError } from "./lora-library.js";
import type { Fields } from "./validation.js";
import { quantizeLoras } from "./lora-pipelines.js";

/** Most different LoRAs in one request (each one adds to the UNet compile time). */
export const MAX_LORAS = 8;
/** Largest |weight| of a LoRA (A1111's are mostly within [-2, 2]); bounds the distinct compiled sets too. */
export const MAX_LORA_WEIGHT = 10;

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** The `loras` field: [{ name, weight?, text_encoder_weight? }] (the last: the text encoders' own, default weight), each checked; names not yet looked up. */
function readLoraField(f: Fields, param: string): LoraTag[] {
  const v = f.raw(param);
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw invalid(`${param} must be an array of {"name": "...", "weight": 0.8} objects, got ${typeName(v)}`, "invalid_type", param);
  return v.map((item: unknown, i) => {
    const at = `${param}[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw invalid(`${at} must be an object {"name": "...", "weight": 0.8}, got ${typeName(item)}`, "invalid_type", param);
    const { name, weight, text_encoder_weight: te } = item as Record<string, unknown>;
    if (typeof name !== "string" || name.trim() === "") throw invalid(`${at}.name must be the name of a LoRA (see GET /sdapi/v1/loras), got ${JSON.stringify(name ?? null)}`, "invalid_type", param);
    for (const [key, v] of [["weight", weight], ["text_encoder_weight", te]] as const) {
      if (v !== undefined && v !== null && (typeof v !== "number" || !Number.isFinite(v))) throw invalid(`${at}.${key} must be a finite number, got ${JSON.stringify(v)}`, "invalid_type", param);
    }
    const w = typeof weight === "number" ? weight : 1;
    return loraTag(name.trim(), w, typeof te === "number" ? te : w);
  });
}

/** The tags of one prompt field, or a 400 naming the field. */
function tagsOf(text: string | undefined, param: string): LoraTag[] {
  if (!text) return [];
  try {
    return extractLoraTags(text).tags;
  } catch (e) {
    if (e instanceof LoraTagError) throw invalid(`${param}: ${e.message}`, "invalid_lora", param);
    throw e;
  }
}

/** A prompt with tags after it, one space apart (an empty prompt: the tags alone). */
export const appendTags = (prompt: string, tags: readonly string[]): string => [prompt, ...tags].filter((s) => s !== "").join(" ");

/**
 * Reads the request's LoRAs into spec.loras (and the field's ones into the prompt as tags); 400 for
 * any problem. Weights are rounded to LORA_WEIGHT_STEP (see lora-pipelines.ts): spec.loras holds
 * the weights applied; the prompt text keeps the tags as written. Returns the tags added to the prompt.
 */
export async function readLoras(f: Fields, spec: JobSpec, state: AppState, param = "loras"): Promise<string[]> {
  const fromField = readLoraField(f, param);
  const asked: [LoraTag, string][] = [
    ...tagsOf(spec.prompt, "prompt").map((t) => [t, "prompt"] as [LoraTag, string]),
    ...tagsOf(spec.negativePrompt, "negative_prompt").map((t) => [t, "negative_prompt"] as [LoraTag, string]),
    ...fromField.map((t) => [t, param] as [LoraTag, string]),
  ];
  if (asked.length === 0) return [];
  const library = state.loras;
  if (!library) {
    throw invalid(`this server has no --lora-dir, so it cannot apply ${asked.map(([t]) => formatLoraTag(t)).join(" ")} (restart \`ssd1b serve\` with --lora-dir DIR)`, "no_lora_dir", asked[0][1]);
  }
  for (const [t, where] of asked) {
    try {
      if (!(await library.has(t.name))) checkLoraNames([t], await library.names());
    } catch (e) {
      if (e instanceof LoraLibraryError || e instanceof LoraTagError) throw invalid(`${where}: ${e.message}`, "unknown_lora", where);
      throw e;
    }
  }
  for (const [t, where] of asked) {
    if (Math.abs(t.weight) > MAX_LORA_WEIGHT || Math.abs(t.textEncoderWeight ?? 0) > MAX_LORA_WEIGHT) throw invalid(`${where}: the weight of ${formatLoraTag(t)} is outside [-${MAX_LORA_WEIGHT}, ${MAX_LORA_WEIGHT}]`, "invalid_lora", where);
  }
  const loras = quantizeLoras(mergeLoraTags(asked.map(([t]) => t)));
  if (loras.length > MAX_LORAS) throw invalid(`too many LoRAs: ${loras.length} (at most ${MAX_LORAS} per request)`, "too_many_loras", asked[0][1]);
  const added = fromField.map(formatLoraTag);
  spec.prompt = appendTags(spec.prompt, added);
  if (loras.length) spec.loras = loras;
  return added;
}
