/**
 * Clip skip as each API asks for it. The native API takes diffusers' clip_skip (both text encoders,
 * layers before SDXL's penultimate one). A1111's CLIP_stop_at_last_layers N (also SD.Next's
 * `clip_skip` field, which SillyTavern sends) counts from the last layer, and A1111 applies it to an
 * SDXL model only with its sdxl_clip_l_skip setting, and then to CLIP-L alone (CLIP-G keeps the
 * penultimate layer): hidden_states[-N] of text_encoder. Without that setting A1111 still writes
 * "Clip skip: N" in the infotext and changes nothing; so does this server, to give A1111's image.
 */
import type { JobSpec } from "./job.js";
import type { ModelInfo } from "./queue.js";
import { invalid } from "./errors.js";
import type { Fields } from "./validation.js";

/** A1111's slider range for CLIP_stop_at_last_layers. */
export const A1111_CLIP_SKIP_MAX = 12;

/** The native `clip_skip` field (diffusers' meaning) into the job, checked against the model's text encoders. */
export function readNativeClipSkip(f: Fields, spec: JobSpec, model: ModelInfo): void {
  const layers = model.textEncoderLayers;
  const max = layers ? Math.min(...layers) - 1 : 24;
  const k = f.int("clip_skip", 0, max);
  if (k) Object.assign(spec, { clipSkip: k, clipSkipInfo: k + 2 });
}

/**
 * A1111's clip skip of one request into the job: `clip_skip` (SD.Next's field), else the request's
 * override_settings, else the server's options; sdxl_clip_l_skip likewise.
 */
export function readA1111ClipSkip(f: Fields, spec: JobSpec, settings: Record<string, unknown>, options: Record<string, unknown>, model: ModelInfo): void {
  const field = f.int("clip_skip", 0, A1111_CLIP_SKIP_MAX);
  const n = (field || undefined) ?? (settings.CLIP_stop_at_last_layers as number | undefined) ?? (options.CLIP_stop_at_last_layers as number | undefined) ?? 1;
  const clipL = (settings.sdxl_clip_l_skip ?? options.sdxl_clip_l_skip ?? false) === true;
  const layers = model.textEncoderLayers?.[0];
  if (clipL && layers !== undefined && n > layers + 1) {
    const param = field ? "clip_skip" : "CLIP_stop_at_last_layers";
    throw invalid(`${param} ${n} goes below the first layer: text_encoder has ${layers} layers (at most ${layers + 1})`, "invalid_value", param);
  }
  if (n > 1) spec.clipSkipInfo = n;
  // hidden_states[-n] is diffusers' skip n - 2 (-1: the last layer's output)
  if (clipL && n !== 2) spec.clipSkip = { textEncoder: n - 2 };
}
