/**
 * A1111's sd_vae (a request's override_settings, or POST /sdapi/v1/options for the requests after):
 * "Automatic" and "None" are the model's own VAE (A1111's Automatic would look for a VAE named after
 * the checkpoint; there is none to find here), any other value a file of --vae-dir by name.
 */
import { invalid } from "./errors.js";
import type { AppState } from "./generation.js";
import type { JobSpec } from "./job.js";
import { VaeLibraryError } from "./vae-library.js";

/** sd_vae values that mean the model's own VAE. */
export const MODEL_VAE_VALUES: readonly string[] = ["Automatic", "None"];

/** The --vae-dir file an sd_vae value names; undefined for the model's own VAE. */
export async function resolveSdVae(value: unknown, state: Pick<AppState, "vaes">, param: string): Promise<JobSpec["vae"]> {
  if (typeof value !== "string") throw invalid(`${param} must be a VAE file name, "Automatic" or "None", got ${JSON.stringify(value)}`, "invalid_type", param);
  if (MODEL_VAE_VALUES.includes(value)) return undefined;
  const own = MODEL_VAE_VALUES.map((v) => JSON.stringify(v)).join(" or ");
  if (!state.vaes) throw invalid(`${param}: ${JSON.stringify(value)} is not available; this server has no --vae-dir, so only the model's own VAE is (${own})`, "invalid_value", param);
  try {
    const entry = await state.vaes.get(value);
    return { name: entry.name, path: entry.path };
  } catch (e) {
    if (e instanceof VaeLibraryError) throw invalid(`${param}: ${e.message}; or ${own} for the model's own VAE`, "invalid_value", param);
    throw e;
  }
}
