/**
 * POST /sdapi/v1/png-info: the text chunks of a PNG (ours or A1111's), with the A1111 "parameters"
 * text as `info` and read into fields as A1111 does (Prompt, Negative prompt, Steps, Sampler, ...).
 * An image that is no PNG, or has no such text, gives an empty info (as A1111 answers for one without).
 */
import { decodePng } from "../image/png.js";
import { invalid } from "./errors.js";
import type { Limits } from "./validation.js";

export interface PngInfo {
  info: string;
  items: Record<string, string>;
  parameters: Record<string, string>;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function readPngInfo(data: string, limits: Limits): PngInfo {
  const base64 = data.replace(/^data:[^;,]*;base64,/, "").replace(/\s+/g, "");
  if (base64.length === 0 || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64)) throw invalid("image must be a base64-encoded image", "invalid_image", "image");
  const bytes = Buffer.from(base64, "base64");
  if (bytes.length < 8 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return { info: "", items: {}, parameters: {} };
  let text: Record<string, string>;
  try {
    text = decodePng(bytes, { maxPixels: limits.maxSide * limits.maxSide * 4 }).text;
  } catch (e) {
    throw invalid(`image: ${(e as Error).message}`, "invalid_image", "image");
  }
  const { parameters: info = "", ...items } = text;
  return { info, items, parameters: info ? parseInfotext(info) : {} };
}

/**
 * An A1111 parameters text as fields: the prompt lines, "Negative prompt: ..." lines, and the last
 * line's "Key: value" pairs (a value in double quotes may hold commas).
 */
export function parseInfotext(text: string): Record<string, string> {
  const lines = text.trim().split("\n");
  let last = lines.at(-1) ?? "";
  const pairs = /\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
  // a last line without at least three pairs is part of the prompt (A1111's rule)
  if ([...last.matchAll(pairs)].length < 3) last = "";
  else lines.pop();
  const out: Record<string, string> = {};
  const prompt: string[] = [], negative: string[] = [];
  let inNegative = false;
  for (const line of lines) {
    if (line.startsWith("Negative prompt:")) { inNegative = true; negative.push(line.slice("Negative prompt:".length).trim()); }
    else (inNegative ? negative : prompt).push(line);
  }
  out.Prompt = prompt.join("\n");
  out["Negative prompt"] = negative.join("\n");
  for (const m of last.matchAll(pairs)) {
    const value = m[2].trim();
    out[m[1].trim()] = unquote(value);
  }
  const size = /^(\d+)x(\d+)$/.exec(out.Size ?? "");
  if (size) { out["Size-1"] = size[1]; out["Size-2"] = size[2]; }
  return out;
}

/** A1111 quotes a value with json.dumps when it holds a comma, colon or quote. */
function unquote(value: string): string {
  if (!(value.length > 1 && value.startsWith("\"") && value.endsWith("\""))) return value;
  try {
    const v: unknown = JSON.parse(value);
    return typeof v === "string" ? v : value;
  } catch {
    return value;
  }
}
