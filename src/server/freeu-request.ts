/**
 * The native API's `freeu` field: true for the FreeU authors' SDXL values (FREEU_SDXL), or
 * { b1, b2, s1, s2, variant } with the others taken from those; checked as the pipeline checks it.
 */
import { checkFreeU, FREEU_SDXL, type FreeUOptions } from "../pipelines/freeu.js";
import { PipelineInputError } from "../pipelines/errors.js";
import type { JobSpec } from "./job.js";
import { invalid } from "./errors.js";
import type { Fields } from "./validation.js";

export function readNativeFreeU(f: Fields, spec: JobSpec): void {
  const raw = f.raw("freeu");
  if (raw === undefined || raw === false) return;
  if (raw !== true && (typeof raw !== "object" || Array.isArray(raw))) throw invalid("freeu must be true or an object {b1, b2, s1, s2, variant}", "invalid_type", "freeu");
  const given = raw === true ? {} : (raw as Record<string, unknown>);
  const unknown = Object.keys(given).filter((k) => !["b1", "b2", "s1", "s2", "variant"].includes(k));
  if (unknown.length) throw invalid(`freeu has no field ${unknown.map((k) => JSON.stringify(k)).join(", ")} (it takes b1, b2, s1, s2, variant)`, "invalid_value", "freeu");
  const freeu = { ...FREEU_SDXL, ...given } as FreeUOptions;
  try {
    if (checkFreeU(freeu)) spec.freeu = freeu;
  } catch (e) {
    if (e instanceof PipelineInputError) throw invalid(e.message, "invalid_value", "freeu");
    throw e;
  }
}
