/**
 * A txt2img / img2img request's `styles: ["NAME", ...]`: the --styles-file styles put onto the prompt,
 * the negative prompt and the hires fix's prompts before the job is queued (so workers need no
 * styles file, and the infotext carries the styled prompt, as A1111's does). A1111 passes over a
 * name it does not know; here it is a 400 naming it, with the known ones.
 */
import { invalid } from "./errors.js";
import type { JobSpec } from "./job.js";
import { applyStyles, type PromptStyle, type PromptStyles } from "./prompt-styles.js";
import type { Fields } from "./validation.js";

/** Most style names in one request (A1111's UI offers a handful at once). */
export const MAX_REQUEST_STYLES = 64;
/** Names listed in an unknown-style error before "and N more". */
const LISTED = 40;

const quoted = (names: readonly string[]) => names.map((n) => JSON.stringify(n)).join(", ");

function knownList(library: PromptStyles): string {
  const names = library.names();
  if (names.length === 0) return "the styles file has none";
  const more = names.length > LISTED ? ` and ${names.length - LISTED} more (GET /sdapi/v1/prompt-styles)` : "";
  return `known: ${quoted(names.slice(0, LISTED))}${more}`;
}

/** The request's styles, each one the server has; an empty or absent field is none. */
export function readStyles(f: Fields, library: PromptStyles | undefined, param = "styles"): PromptStyle[] {
  const names = f.stringArray(param) ?? [];
  if (names.length === 0) return [];
  if (!library) throw invalid(`this server has no styles file, so it cannot apply the styles ${quoted(names)} (restart \`ssd1b serve\` with --styles-file FILE.csv, A1111's styles.csv)`, "no_styles_file", param);
  if (names.length > MAX_REQUEST_STYLES) throw invalid(`${param}: ${names.length} styles, at most ${MAX_REQUEST_STYLES} per request`, "invalid_value", param);
  const unknown = [...new Set(names.filter((n) => library.get(n) === undefined))];
  if (unknown.length) throw invalid(`unknown style${unknown.length > 1 ? "s" : ""} ${quoted(unknown)} (${knownList(library)})`, "unknown_style", param);
  return names.map((n) => library.get(n)!);
}

/** The styles onto the spec's prompts (A1111's order: the first named is applied first); 400 when a prompt grows past maxChars. */
export function applyRequestStyles(spec: JobSpec, styles: readonly PromptStyle[], maxChars: number, param = "styles"): void {
  if (styles.length === 0) return;
  const styled = (text: string, negative: boolean, what: string): string => {
    const out = applyStyles(text, styles.map((s) => (negative ? s.negative_prompt : s.prompt)), maxChars);
    if (out === undefined) throw invalid(`the ${what} with the styles ${quoted(styles.map((s) => s.name))} is longer than ${maxChars} characters`, "prompt_too_long", param);
    return out;
  };
  spec.prompt = styled(spec.prompt, false, "prompt");
  spec.negativePrompt = styled(spec.negativePrompt ?? "", true, "negative prompt");
  // an absent hr_prompt is the (styled) first-pass prompt; A1111 styles a given one too
  if (spec.hires?.prompt) spec.hires.prompt = styled(spec.hires.prompt, false, "hr_prompt");
  if (spec.hires?.negativePrompt) spec.hires.negativePrompt = styled(spec.hires.negativePrompt, true, "hr_negative_prompt");
}
