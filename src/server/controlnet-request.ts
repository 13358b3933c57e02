/**
 * The ControlNets a request asks for: A1111's sd-webui-controlnet `alwayson_scripts.controlnet.args`
 * (txt2img, img2img) and a `controlnets` field on the other APIs. Every field is checked here, the
 * model names against --controlnet-dir and the images decoded, so that a mistake is a 400 before the
 * job is queued; spec.controlnets and spec.guessMode come out.
 *
 * control_mode: "Balanced" (0) is plain ControlNet. "ControlNet is more important" (2) maps to
 * diffusers' guess_mode: the nets see the conditional half only, down residual k of n scaled by
 * 10^(-1 + k/n) times the weight (the mid residual by the weight), the unconditional half given none. sd-webui-controlnet's mode 2 is the
 * same idea (cond-half injection under CFG) with its own layer scales (0.825^(12 - k) on SD 1.5's 13
 * residuals), so outputs are close in kind, not equal to A1111's. Guess mode is per call in the
 * pipeline: all nets of a request must share it. "My prompt is more important" (1) is A1111's soft
 * weighting of both halves, which the pipeline cannot reproduce: a 400.
 */
import { invalid } from "./errors.js";
import type { AppState } from "./generation.js";
import type { JobSpec } from "./job.js";
import { ControlNetLibraryError, bareModelName } from "./controlnet-library.js";
import { CANNY_DEFAULTS, CONTROLNET_MODULES, CONTROL_MODES, RESIZE_MODES, type ControlNetModule, type ControlNetSpec, type ResizeMode } from "./controlnet-spec.js";
import { Fields, decodeBase64Image } from "./validation.js";

/** Most ControlNets in one request (each runs at every step). */
export const MAX_CONTROLNETS = 4;

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/**
 * Keys of a unit that change nothing here (UI state, memory options, the hires fix's pass choice, the
 * only-masked inpaint crop), accepted with any plain value. save_detected_map is among them: the
 * detected maps are never appended to the answer's images (clients read images[0..n)).
 */
const IGNORED_KEYS = ["low_vram", "is_ui", "save_detected_map", "input_mode", "use_preview_as_input", "generated_image", "loopback", "batch_images", "hr_option", "inpaint_crop_input_image"];

/** A1111's older resize labels. */
const RESIZE_ALIASES: Record<string, ResizeMode> = {
  "Scale to Fit (Inner Fit)": "Crop and Resize", "Inner Fit (Scale to Fit)": "Crop and Resize",
  "Envelope (Outer Fit)": "Resize and Fill", "Outer Fit (Shrink to Fit)": "Resize and Fill",
};

function enumField<T extends string>(v: unknown, values: readonly T[], param: string, aliases: Record<string, T> = {}): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < values.length) return v;
  if (typeof v === "string") {
    const s = aliases[v] ?? v;
    const i = values.findIndex((x) => x.toLowerCase() === s.toLowerCase());
    if (i >= 0) return i;
  }
  throw invalid(`${param} must be one of ${values.map((x, i) => `${JSON.stringify(x)} (${i})`).join(", ")}, got ${JSON.stringify(v)}`, "invalid_value", param);
}

/** An image field: a base64 string (data: URL too) or sd-webui-controlnet's {image, mask} object. */
function imageField(v: unknown, param: string): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "object" && !Array.isArray(v)) {
    const { image, mask } = v as Record<string, unknown>;
    if (mask !== undefined && mask !== null && mask !== "") throw invalid(`${param}.mask: per-unit masks are not supported`, "unsupported_feature", param);
    return imageField(image, `${param}.image`);
  }
  throw invalid(`${param} must be a base64 PNG or JPEG, got ${typeName(v)}`, "invalid_type", param);
}

/** The names a unit uses for each setting: A1111's, or the other APIs' (scale, start, end). */
interface Names { weight: string; start: string; end: string; image: string[]; model: string }
const A1111_NAMES: Names = { weight: "weight", start: "guidance_start", end: "guidance_end", image: ["image", "input_image"], model: "model" };
const FIELD_NAMES: Names = { weight: "scale", start: "start", end: "end", image: ["image"], model: "name" };

const A1111_KEYS = ["enabled", "image", "input_image", "module", "model", "weight", "guidance_start", "guidance_end", "control_mode", "resize_mode", "pixel_perfect", "processor_res", "threshold_a", "threshold_b", "mask", "mask_image", ...IGNORED_KEYS];
const FIELD_KEYS = ["name", "image", "module", "scale", "start", "end", "threshold_a", "threshold_b", "processor_res", "resize_mode", "pixel_perfect"];

/** One unit checked (model not yet looked up); undefined when disabled. */
function readUnit(item: unknown, at: string, state: AppState, names: Names, keys: readonly string[], fallbackImage: string | undefined): ControlNetSpec | undefined {
  if (typeof item !== "object" || item === null || Array.isArray(item)) throw invalid(`${at} must be an object, got ${typeName(item)}`, "invalid_type", at);
  const body = item as Record<string, unknown>;
  for (const k of Object.keys(body)) if (!keys.includes(k)) throw invalid(`${at}.${k}: unknown ControlNet field (known: ${keys.join(", ")})`, "unsupported_feature", `${at}.${k}`);
  const f = new Fields(body);
  const p = (k: string) => `${at}.${k}`;
  const enabled = (() => { try { return f.bool("enabled"); } catch { throw invalid(`${p("enabled")} must be true or false`, "invalid_type", p("enabled")); } })();
  if (enabled === false) return undefined;
  const num = (k: string, min: number, max: number): number | undefined => {
    const v = body[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(`${p(k)} must be a number, got ${typeName(v)}`, "invalid_type", p(k));
    if (v < min || v > max) throw invalid(`${p(k)} must be in [${min}, ${max}], got ${v}`, "invalid_value", p(k));
    return v;
  };
  const model = body[names.model];
  if (typeof model !== "string" || model.trim() === "" || model === "None") throw invalid(`${p(names.model)} must name a ControlNet of GET /controlnet/model_list, got ${JSON.stringify(model ?? null)}`, "missing_field", p(names.model));
  const moduleRaw = body.module ?? "none";
  const module = typeof moduleRaw === "string" ? moduleRaw.toLowerCase() : moduleRaw;
  if (!CONTROLNET_MODULES.includes(module as ControlNetModule)) {
    throw invalid(`${p("module")}: unknown ControlNet module ${JSON.stringify(moduleRaw)} (this server has ${CONTROLNET_MODULES.map((m) => JSON.stringify(m)).join(", ")}; model-based preprocessors such as depth or openpose are not available: send their map with module "none")`, "unknown_module", p("module"));
  }
  for (const k of ["mask", "mask_image"]) if (body[k] !== undefined && body[k] !== null && body[k] !== "") throw invalid(`${p(k)}: per-unit masks are not supported`, "unsupported_feature", p(k));
  for (const k of ["pixel_perfect", "low_vram"]) if (body[k] !== undefined && body[k] !== null && typeof body[k] !== "boolean") throw invalid(`${p(k)} must be true or false`, "invalid_type", p(k));
  let image: string | undefined;
  let imageParam = p(names.image[0]);
  for (const k of names.image) {
    const v = imageField(body[k], p(k));
    if (v !== undefined) { image = v; imageParam = p(k); break; }
  }
  image ??= fallbackImage;
  if (image === undefined) throw invalid(`${p(names.image[0])}: the ControlNet needs a control image (base64 PNG or JPEG)`, "missing_field", imageParam);
  const bytes = image === fallbackImage ? Buffer.from(image, "base64") : decodeBase64Image(image, state.limits, imageParam).bytes;
  const controlMode = body.control_mode === undefined || body.control_mode === null ? 0 : enumField(body.control_mode, CONTROL_MODES, p("control_mode"));
  if (controlMode === 1) throw invalid(`${p("control_mode")}: "My prompt is more important" (A1111's soft weighting of the ControlNet's layers under both halves of CFG) cannot be reproduced here; use "Balanced" or "ControlNet is more important" (guess mode)`, "unsupported_feature", p("control_mode"));
  const resizeMode = RESIZE_MODES[body.resize_mode === undefined || body.resize_mode === null ? 1 : enumField(body.resize_mode, RESIZE_MODES, p("resize_mode"), RESIZE_ALIASES)];
  const start = num(names.start, 0, 1) ?? 0, end = num(names.end, 0, 1) ?? 1;
  if (!(start < end)) throw invalid(`${p(names.start)} ${start} must be below ${p(names.end)} ${end}`, "invalid_value", p(names.start));
  const processorRes = num("processor_res", -1, state.limits.maxSide) ?? -1;
  if (processorRes !== -1 && (!Number.isInteger(processorRes) || processorRes < 1)) throw invalid(`${p("processor_res")} must be -1 (the module's default, 512) or a whole number of pixels, got ${processorRes}`, "invalid_value", p("processor_res"));
  // -1: the module's default, as sd-webui-controlnet
  const ta = num("threshold_a", -1, 255), tb = num("threshold_b", -1, 255);
  return {
    // A1111's "name [hash]" names the net by its name here
    name: bareModelName(model), image: bytes.toString("base64"), module: module as ControlNetModule,
    thresholdA: ta === undefined || ta < 0 ? CANNY_DEFAULTS.low : ta, thresholdB: tb === undefined || tb < 0 ? CANNY_DEFAULTS.high : tb,
    weight: num(names.weight, -10, 10) ?? 1, guidanceStart: start, guidanceEnd: end,
    controlMode: controlMode as 0 | 2, resizeMode, pixelPerfect: body.pixel_perfect === true, processorRes,
  };
}

/** Checks the names against --controlnet-dir and puts the units into the spec (ComfyUI's ControlNet nodes too). */
export async function finish(units: ControlNetSpec[], spec: JobSpec, state: AppState, param: string, guess: boolean): Promise<void> {
  if (units.length === 0) return;
  if (units.length > MAX_CONTROLNETS) throw invalid(`too many ControlNets: ${units.length} (at most ${MAX_CONTROLNETS} per request)`, "too_many_controlnets", param);
  if (!state.controlnets) throw invalid(`this server has no --controlnet-dir, so it cannot run the ControlNet ${JSON.stringify(units[0].name)} (restart \`ssd1b serve\` with --controlnet-dir DIR)`, "no_controlnet_dir", param);
  for (const [i, u] of units.entries()) {
    try {
      await state.controlnets.resolve(u.name);
    } catch (e) {
      if (e instanceof ControlNetLibraryError) throw invalid(`${param}[${i}]: ${e.message}`, "unknown_controlnet", param);
      throw e;
    }
  }
  if (spec.hires) throw invalid("ControlNet with the hires fix (enable_hr) is not supported", "unsupported_feature", param);
  spec.controlnets = units;
  if (guess) spec.guessMode = true;
}

/** A1111: alwayson_scripts.controlnet.args (the script's name in any case). */
export async function readA1111ControlNets(f: Fields, spec: JobSpec, state: AppState): Promise<void> {
  const always = f.raw("alwayson_scripts");
  if (always === undefined || typeof always !== "object" || always === null) return;
  const key = Object.keys(always).find((k) => k.toLowerCase() === "controlnet");
  if (key === undefined) return;
  const param = `alwayson_scripts.${key}.args`;
  const script = (always as Record<string, unknown>)[key];
  const args = typeof script === "object" && script !== null && !Array.isArray(script) ? (script as Record<string, unknown>).args : undefined;
  if (!Array.isArray(args)) throw invalid(`${param} must be an array of ControlNet units ({"args": [{"image": ..., "module": ..., "model": ...}]})`, "invalid_type", param);
  // img2img: a unit without an image takes the init image, as sd-webui-controlnet does
  const units = args.map((a, i) => readUnit(a, `${param}[${i}]`, state, A1111_NAMES, A1111_KEYS, spec.initImage)).filter((u): u is ControlNetSpec => u !== undefined);
  const modes = new Set(units.map((u) => u.controlMode));
  if (modes.size > 1) throw invalid(`${param}: all ControlNets of a request must share their control_mode here (guess mode applies to the whole call)`, "unsupported_feature", param);
  await finish(units, spec, state, param, modes.has(2));
}

/** The other APIs: `controlnets: [{ name, image, module, scale, start, end, threshold_a, threshold_b, processor_res }]`, `guess_mode`. */
export async function readControlNetField(f: Fields, spec: JobSpec, state: AppState, param = "controlnets"): Promise<void> {
  const v = f.raw(param);
  const guess = f.bool("guess_mode") ?? false;
  if (v === undefined) {
    if (guess) throw invalid("guess_mode needs controlnets", "invalid_value", "guess_mode");
    return;
  }
  if (!Array.isArray(v)) throw invalid(`${param} must be an array of {"name": ..., "image": ...} objects, got ${typeName(v)}`, "invalid_type", param);
  const units = v.map((item, i) => readUnit(item, `${param}[${i}]`, state, FIELD_NAMES, FIELD_KEYS, undefined)!);
  await finish(units, spec, state, param, guess);
}
