/**
 * A1111 settings (`/sdapi/v1/options` and a request's `override_settings`) and the txt2img / img2img
 * fields that ask for features this server lacks. Every key is either honoured, checked against the
 * one value this server can give (a 400 naming the key otherwise), or one of the UI-only keys below
 * that change nothing here; any other key is a 400 that names it, never a silent ignore.
 */
import { invalid } from "./errors.js";
import { servedModels, type ModelInfo } from "./queue.js";
import { findServedModel, notServedMessage } from "./model-catalog.js";
import { Fields } from "./validation.js";
import { A1111_CLIP_SKIP_MAX } from "./clip-skip-request.js";

/**
 * Keys that only steer A1111's own UI or its saving of files on the server (this server saves no
 * files and has no UI settings): accepted with any JSON scalar value, stored by POST options.
 */
export const UI_ONLY_KEYS: readonly string[] = [
  "samples_save", "grid_save", "return_grid", "save_images_add_number", "save_to_dirs", "do_not_show_images",
  "live_previews_enable", "live_preview_content", "show_progress_every_n_steps", "show_progress_type",
  "js_modal_lightbox", "show_progressbar", "live_preview_refresh_period",
];

/** Keys that take exactly one value here, with why. */
const FIXED: Record<string, { value: unknown; why: string }> = {
  samples_format: { value: "png", why: "images are PNG files (with the parameters text); jpg and webp are not written" },
  eta_noise_seed_delta: { value: 0, why: "the noise seed delta (ENSD) is not supported" },
  randn_source: { value: "CPU", why: "noise is always drawn as torch's CPU generator draws it" },
  sd_checkpoint_hash: { value: null, why: "it is read-only" },
  hires_fix_refiner_pass: { value: "second pass", why: "with the hires fix the refiner runs in the second pass here" },
};

/**
 * A1111's UniPC settings and the diffusers UniPCMultistepScheduler option each is: a check returning
 * the value to store, or why it cannot be. They apply to requests whose sampler is UniPC.
 */
const UNIPC: Record<string, { option: string; check: (v: unknown) => string | undefined }> = {
  uni_pc_variant: { option: "solver_type", check: (v) => (v === "bh1" || v === "bh2" ? undefined : v === "vary_coeff" ? "the vary_coeff variant has no diffusers equivalent; use \"bh1\" or \"bh2\"" : "must be \"bh1\" or \"bh2\"") },
  uni_pc_order: { option: "solver_order", check: (v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 3 ? undefined : "must be a whole number in [1, 3]") },
  uni_pc_lower_order_final: { option: "lower_order_final", check: (v) => (typeof v === "boolean" ? undefined : "must be true or false") },
};

/** A1111's clip skip settings (their effect: clip-skip-request.ts), each a check returning why a value cannot be. */
const CLIP_SKIP: Record<string, (v: unknown) => string | undefined> = {
  CLIP_stop_at_last_layers: (v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= A1111_CLIP_SKIP_MAX ? undefined : `must be a whole number in [1, ${A1111_CLIP_SKIP_MAX}]`),
  sdxl_clip_l_skip: (v) => (typeof v === "boolean" ? undefined : "must be true or false"),
};

/** The UniPC scheduler options of checked settings (empty: none given). */
export function unipcOverrides(settings: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(UNIPC).filter(([k]) => k in settings).map(([k, u]) => [u.option, settings[k]]));
}

/** The values GET /sdapi/v1/options starts with (sd_model_checkpoint: the model new jobs get). */
export function defaultOptions(model: ModelInfo): Record<string, unknown> {
  return {
    sd_model_checkpoint: model.name, sd_checkpoint_hash: null, sd_vae: "Automatic", samples_format: "png",
    CLIP_stop_at_last_layers: 1, sdxl_clip_l_skip: false, eta_noise_seed_delta: 0, randn_source: "CPU", live_previews_enable: true,
    show_progress_type: "Approx cheap", hires_fix_refiner_pass: "second pass",
  };
}

export const KNOWN_SETTINGS: readonly string[] = ["sd_model_checkpoint", "sd_vae", ...Object.keys(FIXED), ...Object.keys(UNIPC), ...Object.keys(CLIP_SKIP), ...UI_ONLY_KEYS];

/**
 * One setting checked: returns the value to store (the served name for sd_model_checkpoint), or throws
 * a 400 whose param is `${where}.${key}` ("override_settings.sd_vae").
 */
export function checkSetting(key: string, value: unknown, model: ModelInfo, where: string): unknown {
  const param = where ? `${where}.${key}` : key;
  if (key === "sd_model_checkpoint") {
    const served = typeof value === "string" ? findServedModel(value, servedModels(model)) : undefined;
    if (!served) throw invalid(`${notServedMessage(`${param}:`, value, servedModels(model))} (start it with more --model or a --models-dir to serve others)`, "invalid_value", param);
    return served.name;
  }
  // a --vae-dir file name is looked up when it is used (vae-request.ts)
  if (key === "sd_vae") {
    if (typeof value !== "string") throw invalid(`${param} must be a VAE file name, "Automatic" or "None", got ${JSON.stringify(value)}`, "invalid_type", param);
    return value;
  }
  const check = UNIPC[key]?.check ?? CLIP_SKIP[key];
  if (check) {
    const why = check(value);
    if (why) throw invalid(`${param} ${why}, got ${JSON.stringify(value)}`, "invalid_value", param);
    return value;
  }
  const fixed = FIXED[key];
  if (fixed) {
    if (value !== fixed.value) throw invalid(`${param} must be ${JSON.stringify(fixed.value)}, got ${JSON.stringify(value)}: ${fixed.why}`, "invalid_value", param);
    return value;
  }
  if (UI_ONLY_KEYS.includes(key)) {
    if (value !== null && typeof value === "object") throw invalid(`${param} must be a plain value, got ${Array.isArray(value) ? "an array" : "an object"}`, "invalid_type", param);
    return value;
  }
  throw invalid(`${param}: the setting ${JSON.stringify(key)} is not supported here (known: ${KNOWN_SETTINGS.join(", ")})`, "unsupported_setting", param);
}

/** A settings object (POST options body, where = "", or override_settings) checked key by key. */
export function checkSettings(obj: unknown, model: ModelInfo, where: string): Record<string, unknown> {
  if (obj === undefined || obj === null) return {};
  if (typeof obj !== "object" || Array.isArray(obj)) throw invalid(`${where || "the request body"} must be an object of settings`, "invalid_type", where || undefined);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    // null: "leave it as it is" (what pydantic clients send for an unset field)
    if (v === null) continue;
    out[k] = checkSetting(k, v, model, where);
  }
  return out;
}

/**
 * The txt2img / img2img fields asking for what this server does not do: each a 400 naming the field
 * when it asks for more than the default. (`styles` is served with --styles-file: styles-request.ts.)
 */
export function checkUnsupportedFields(f: Fields): void {
  const refuse = (field: string, message: string) => { throw invalid(message, "unsupported_feature", field); };
  if (f.bool("restore_faces")) refuse("restore_faces", "face restoration (restore_faces) is not supported");
  const script = f.string("script_name");
  if (script !== undefined && script.trim() !== "" && script.toLowerCase() !== "none") refuse("script_name", `scripts are not supported (script_name ${JSON.stringify(script)})`);
  const always = f.raw("alwayson_scripts");
  // sd-webui-controlnet's "controlnet" script is served (controlnet-request.ts); any other script is refused
  const scripts = always !== undefined && typeof always === "object" ? Object.keys(always as object).filter((k) => k.toLowerCase() !== "controlnet") : [];
  if (always !== undefined && (typeof always !== "object" || Array.isArray(always) || scripts.length > 0)) refuse("alwayson_scripts", `extensions' scripts (alwayson_scripts${scripts.length ? ` ${scripts.map((k) => JSON.stringify(k)).join(", ")}` : ""}) are not supported; only "controlnet" is`);
  f.bool("override_settings_restore_afterwards");
}
