/**
 * Request checking: typed readers for JSON body fields (null counts as absent), the limits of the
 * server, and the checks every API shares (size, image count, prompt length, scheduler, seed,
 * init image) that turn a request into a JobSpec or a 400 that names the field.
 */
import { randomInt } from "node:crypto";
import { createScheduler, isA1111Name, resolveA1111 } from "../schedulers/index.js";
import type { RgbImage } from "../image/png.js";
import { decodeImage } from "../image/image.js";
import { invalid } from "./errors.js";
import type { JobSpec } from "./job.js";

export interface Limits {
  /** Largest width or height in pixels. */
  maxSide: number;
  /** Most images in one request. */
  maxImages: number;
  /** Longest prompt (and negative prompt), in characters. */
  maxPromptChars: number;
  maxSteps: number;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
}

export const DEFAULT_LIMITS: Limits = { maxSide: 2048, maxImages: 8, maxPromptChars: 10000, maxSteps: 1000, maxBodyBytes: 64 << 20 };

/** What an absent field means (the CLI's defaults, so that a request equals `ssd1b generate` with the same flags). */
export const DEFAULTS = { steps: 25, guidanceScale: 5, strength: 0.3 } as const;

/** Multiple of which width and height must be (the SDXL VAE's scale factor). */
export const SIZE_MULTIPLE = 8;

type Json = Record<string, unknown>;

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** Typed access to the fields of a JSON object body; each error names the field. */
export class Fields {
  constructor(readonly body: Json) {}

  static of(body: unknown): Fields {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw invalid(`the request body must be a JSON object, got ${typeName(body)}`, "invalid_json");
    }
    return new Fields(body as Json);
  }

  has(name: string): boolean { return this.body[name] !== undefined && this.body[name] !== null; }

  raw(name: string): unknown { return this.has(name) ? this.body[name] : undefined; }

  string(name: string, maxLength?: number): string | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw invalid(`${name} must be a string, got ${typeName(v)}`, "invalid_type", name);
    if (maxLength !== undefined && v.length > maxLength) {
      throw invalid(`${name} is too long: ${v.length} characters (at most ${maxLength})`, "prompt_too_long", name);
    }
    return v;
  }

  requiredString(name: string, maxLength?: number): string {
    const v = this.string(name, maxLength);
    if (v === undefined) throw invalid(`${name} is required`, "missing_field", name);
    return v;
  }

  int(name: string, min: number, max: number): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isSafeInteger(v)) throw invalid(`${name} must be an integer, got ${typeName(v) === "number" ? v : typeName(v)}`, "invalid_type", name);
    if (v < min || v > max) throw invalid(`${name} must be in [${min}, ${max}], got ${v}`, "invalid_value", name);
    return v;
  }

  number(name: string, min: number, max: number): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(`${name} must be a number, got ${typeName(v)}`, "invalid_type", name);
    if (v < min || v > max) throw invalid(`${name} must be in [${min}, ${max}], got ${v}`, "invalid_value", name);
    return v;
  }

  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw invalid(`${name} must be true or false, got ${typeName(v)}`, "invalid_type", name);
    return v;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!values.includes(v as T)) throw invalid(`${name} must be one of ${values.map((x) => JSON.stringify(x)).join(", ")}, got ${JSON.stringify(v)}`, "invalid_value", name);
    return v as T;
  }

  stringArray(name: string): string[] | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw invalid(`${name} must be an array of strings`, "invalid_type", name);
    return v as string[];
  }
}

/** The seed field: -1 or absent draws one (always reported back). */
export function readSeed(f: Fields, name = "seed"): number {
  const v = f.int(name, -1, Number.MAX_SAFE_INTEGER - 1000);
  return v === undefined || v === -1 ? randomInt(0, 2 ** 32 - 1) : v;
}

/** A width or height: a multiple of 8 within the limit. */
export function checkSide(name: string, v: number, limits: Limits, param = name): number {
  if (!Number.isSafeInteger(v) || v < SIZE_MULTIPLE) throw invalid(`${name} must be a whole number of at least ${SIZE_MULTIPLE}, got ${v}`, "invalid_size", param);
  if (v % SIZE_MULTIPLE !== 0) {
    throw invalid(`${name} ${v} is not a multiple of ${SIZE_MULTIPLE} (try ${Math.max(SIZE_MULTIPLE, Math.round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE)})`, "invalid_size", param);
  }
  if (v > limits.maxSide) throw invalid(`${name} ${v} is above the limit of ${limits.maxSide}`, "invalid_size", param);
  return v;
}

/** Width and height fields (integers; absent: the model's default). */
export function readSides(f: Fields, limits: Limits, wName = "width", hName = "height"): { width?: number; height?: number } {
  const w = f.int(wName, -(2 ** 31), 2 ** 31), h = f.int(hName, -(2 ** 31), 2 ** 31);
  return { width: w === undefined ? undefined : checkSide(wName, w, limits), height: h === undefined ? undefined : checkSide(hName, h, limits) };
}

/** OpenAI's size "WxH" ("auto" or absent: the model's default). */
export function parseSize(f: Fields, limits: Limits, name = "size"): { width?: number; height?: number } {
  const s = f.string(name);
  if (s === undefined || s === "auto") return {};
  const m = /^\s*(\d{1,6})\s*[xX×]\s*(\d{1,6})\s*$/.exec(s);
  if (!m) throw invalid(`${name} must be "WIDTHxHEIGHT" like "1024x1024", got ${JSON.stringify(s)}`, "invalid_size", name);
  return { width: checkSide("width", Number(m[1]), limits, name), height: checkSide("height", Number(m[2]), limits, name) };
}

/** An A1111 sampler name or diffusers class the library knows, or a 400 listing them. */
export function checkScheduler(name: string | undefined, param: string): string | undefined {
  if (name === undefined || name.trim() === "") return undefined;
  try {
    createScheduler(name);
  } catch (e) {
    throw invalid((e as Error).message, "unknown_scheduler", param);
  }
  return name;
}

/**
 * An A1111 sampler_name (optionally carrying its schedule, "DPM++ 2M Karras") with A1111 1.9's separate
 * schedule type (name or label, "sgm_uniform" / "SGM Uniform"): the scheduler name for the job (one that
 * createScheduler resolves to the pair), with the canonical sampler and schedule to echo back. A 400
 * names the valid choices. No sampler and no schedule: the model's scheduler; a schedule alone applies to Euler.
 */
export function checkSampler(
  sampler: string | undefined, schedule: string | undefined, samplerParam: string, scheduleParam: string,
): { scheduler?: string; sampler?: string; schedule?: string } {
  const s = sampler?.trim() || undefined, sch = schedule?.trim() || undefined;
  const automatic = sch === undefined || /^automatic$/i.test(sch);
  if (s === undefined && automatic) return {};
  // a diffusers class name (or fixture id) takes no schedule type
  if (s !== undefined && !isA1111Name(s)) {
    const name = checkScheduler(s, samplerParam);
    if (!automatic) throw invalid(`schedule types apply to A1111 sampler names, not to ${JSON.stringify(s)}`, "invalid_value", scheduleParam);
    return { scheduler: name, sampler: name, schedule: "Automatic" };
  }
  try {
    const r = resolveA1111(s ?? "Euler", sch);
    return { scheduler: r.name, sampler: r.sampler, schedule: r.schedule };
  } catch (e) {
    const message = (e as Error).message;
    const aboutSampler = /^(unknown sampler|sampler ")/.test(message);
    throw invalid(message, aboutSampler ? "unknown_scheduler" : "invalid_value", aboutSampler ? samplerParam : scheduleParam);
  }
}

export function checkImageCount(n: number, limits: Limits, param: string): void {
  if (n > limits.maxImages) throw invalid(`at most ${limits.maxImages} images per request, asked for ${n}`, "too_many_images", param);
}

/** A base64 PNG or JPEG (data: URL prefix allowed) of at most maxSide² pixels, decoded; and its bytes. */
export function decodeBase64Image(data: string, limits: Limits, param: string): { bytes: Buffer; image: RgbImage } {
  const base64 = data.replace(/^data:[^;,]*;base64,/, "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64) || base64.length === 0) throw invalid(`${param} must be a base64-encoded PNG or JPEG`, "invalid_image", param);
  const bytes = Buffer.from(base64, "base64");
  try {
    // the header's size is checked before decoding: an image larger than any output is refused without inflating it
    return { bytes, image: decodeImage(bytes, param, { maxPixels: limits.maxSide * limits.maxSide }) };
  } catch (e) {
    throw invalid((e as Error).message, "invalid_image", param);
  }
}

/** An init image: decoded as above, each side checked; returns the bare base64 too. */
export function readInitImage(data: string, limits: Limits, param: string): { base64: string; image: RgbImage } {
  const { bytes, image } = decodeBase64Image(data, limits, param);
  checkSide("the init image width", image.width, limits, param);
  checkSide("the init image height", image.height, limits, param);
  return { base64: bytes.toString("base64"), image };
}

/** Checks strength against the steps: img2img runs floor(steps * strength) steps, at least one. */
export function checkStrength(strength: number, steps: number, param: string): void {
  if (!(strength > 0 && strength <= 1)) throw invalid(`${param} must be in (0, 1], got ${strength}`, "invalid_value", param);
  if (Math.floor(steps * strength) < 1) {
    throw invalid(`${param} ${strength} x ${steps} steps leaves no denoising step; raise the steps or the strength`, "invalid_value", param);
  }
}

/** The checks of a whole spec that no single field can do. */
export function finishSpec(spec: JobSpec, limits: Limits): JobSpec {
  checkImageCount(spec.batchSize * spec.iterations, limits, "n");
  if (spec.negativePrompt === "") delete spec.negativePrompt;
  if (spec.scheduler === undefined) delete spec.scheduler;
  if (spec.width === undefined) delete spec.width;
  if (spec.height === undefined) delete spec.height;
  return spec;
}
