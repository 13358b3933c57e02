/** The --controlnet-dir and --controlnet-cache flags of serve and worker. */
import { ControlNetLibrary, ControlNetLibraryError, DEFAULT_CONTROLNET_CACHE } from "../server/controlnet-library.js";
import { UsageError, asUsageError } from "./usage-error.js";

export const CONTROLNET_DIR_OPTIONS = {
  "controlnet-dir": { type: "string" },
  "controlnet-cache": { type: "string", default: String(DEFAULT_CONTROLNET_CACHE) },
} as const;

export const CONTROLNET_DIR_HELP = `  --controlnet-dir DIR ControlNets that requests may name (A1111 alwayson_scripts.controlnet, a "controlnets"
                       field): each sub-folder with a config.json (a diffusers ControlNetModel) or NAME.safetensors
                       with NAME.json beside it; GET /controlnet/model_list lists them. With --queue, give the
                       workers the same folder
  --controlnet-cache N ControlNets kept open between jobs (default ${DEFAULT_CONTROLNET_CACHE})`;

/** --controlnet-dir opened (a usage error when it is no folder) and --controlnet-cache checked. */
export function parseControlNetDir(values: { "controlnet-dir"?: string; "controlnet-cache"?: string }): { controlnets?: ControlNetLibrary; controlnetCache: number } {
  const raw = values["controlnet-cache"] ?? String(DEFAULT_CONTROLNET_CACHE);
  const controlnetCache = Number(raw);
  if (!/^\d+$/.test(raw) || controlnetCache < 1) throw new UsageError(`--controlnet-cache must be a whole number >= 1, got "${raw}"`);
  const dir = values["controlnet-dir"];
  if (dir === undefined) return { controlnetCache };
  return { controlnets: asUsageError(() => new ControlNetLibrary(dir), ControlNetLibraryError), controlnetCache };
}
