/**
 * The fast preset per request (`ssd1b serve --fast`): a `preset: "fast"` field in every API. Such a
 * job runs the model's LCM-LoRA (weight 1, on top of the request's LoRAs) with the LCM scheduler, 4
 * steps, guidance 1 (no CFG batch) and TAESD decoding. Which request fields still count differs:
 * A1111 and Segmind clients always send steps, guidance and a sampler (their UIs' defaults), so there
 * the preset replaces them; in the native and OpenAI APIs those fields are extensions nobody sends by
 * habit, so an explicit one wins (as `ssd1b generate --fast --steps 6`).
 */
import { FAST_CALL_DEFAULTS } from "../pipelines/presets.js";
import { invalid } from "./errors.js";
import type { AppState } from "./generation.js";
import type { Fields } from "./validation.js";

/** What a fast job runs with. */
export const FAST_JOB = { scheduler: FAST_CALL_DEFAULTS.scheduler, steps: FAST_CALL_DEFAULTS.numInferenceSteps, guidanceScale: FAST_CALL_DEFAULTS.guidanceScale } as const;

export const PRESETS = ["fast"] as const;

/** The `preset` field: true for "fast" (a 400 when this server has no --fast), false when absent. */
export function readPreset(f: Fields, state: AppState): boolean {
  const preset = f.oneOf("preset", PRESETS);
  if (preset === undefined) return false;
  if (!state.fast) throw invalid(`this server was not started with --fast, so it cannot run preset "fast" (restart \`ssd1b serve\` with --fast)`, "no_fast_preset", "preset");
  return true;
}
