/**
 * --fast and --fast-lora of serve and worker: requests may then ask for preset "fast". At startup
 * the TAESD (madebyollin/taesdxl unless --taesd) loads with the model, and the model's LCM-LoRA (or
 * --fast-lora's) is resolved, downloaded if needed and checked against the model, so that a
 * missing or mismatched file stops the command instead of failing every fast job.
 */
import { existsSync } from "node:fs";
import type { PipelineLoadOptions, StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { lcmLoraFor } from "../pipelines/sdxl/index.js";
import { FAST_TAESD } from "../pipelines/presets.js";
import { PipelineInputError } from "../pipelines/errors.js";
import { LoraError } from "../loaders/lora.js";
import { ensureLocal, parseRepoSpec } from "../hub/index.js";
import { UsageError } from "./usage-error.js";

export const FAST_OPTIONS = {
  fast: { type: "boolean" },
  "fast-lora": { type: "string" },
} as const;

export const FAST_HELP = `  --fast               requests may ask for the fast preset ("preset": "fast"): the model's LCM-LoRA
                       (latent-consistency/lcm-lora-ssd-1b for SSD-1B), LCM, 4 steps, guidance 1 and
                       TAESD decoding; the LoRA and madebyollin/taesdxl (unless --taesd) download at startup
  --fast-lora L        the LCM-LoRA for --fast (repo id, REPO/FILE.safetensors or a file), for models
                       that are not SSD-1B, SDXL or Vega`;

interface FastValues { fast?: boolean; "fast-lora"?: string }

/** Checks the flags before anything loads; true when --fast is on. */
export function parseFast(values: FastValues): boolean {
  const lora = values["fast-lora"];
  if (lora !== undefined && values.fast !== true) throw new UsageError("--fast-lora needs --fast");
  if (lora !== undefined && !existsSync(lora) && !parseRepoSpec(lora)) throw new UsageError(`--fast-lora ${lora}: file not found`);
  return values.fast === true;
}

/** The load options with --fast's TAESD (--taesd, if given, stays). */
export function withFastTaesd<T extends Pick<PipelineLoadOptions, "taesd">>(load: T, fast: boolean): T {
  return fast && load.taesd === undefined ? { ...load, taesd: FAST_TAESD } : load;
}

/** The local LCM-LoRA file for --fast on this pipeline (downloaded if needed), read once against the model. */
export async function resolveFastLora(values: FastValues, pipe: StableDiffusionXLPipeline, hub: PipelineLoadOptions["hub"], log: (m: string) => void): Promise<string> {
  let file: string;
  try {
    const spec = values["fast-lora"] ?? lcmLoraFor(pipe.source, "name one with --fast-lora REPO_OR_FILE");
    file = await ensureLocal(spec, "lora", { ...hub, notes: log });
    // withLoras reads and matches the file (the UNet compiles only on first use); a mismatch is the user's to fix
    await (await pipe.withLoras([{ file, weight: 1 }])).release();
  } catch (e) {
    if (e instanceof PipelineInputError || e instanceof LoraError) throw new UsageError(`--fast: ${e.message}`);
    throw e;
  }
  log(`fast preset: LCM-LoRA ${file}, TAESD ${pipe.taesd?.taesd.where ?? "?"}`);
  return file;
}
