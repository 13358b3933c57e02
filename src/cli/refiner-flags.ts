/**
 * `--refiner M` and `--refiner-switch-at F` of generate, img2img and inpaint: diffusers' ensemble of
 * expert denoisers (A1111's Refiner) over recipes/refiner.ts. Checked before any model loads; the
 * refiner opens low-memory on the base's device, and the base's UNet is released at the switch (one
 * UNet in memory at a time).
 */
import { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { PipelineInputError } from "../pipelines/errors.js";
import type { RefinerSwitch } from "../recipes/refiner.js";
import { servedModelName } from "../server/model-catalog.js";
import { resolveDevice } from "../runtime/device.js";
import { numberFlag, stringFlag, type ParsedCommon, type Values } from "./commands/generate.js";
import { UsageError } from "./usage-error.js";

export const REFINER_OPTIONS = { refiner: { type: "string" }, "refiner-switch-at": { type: "string" } } as const;

export const REFINER_HELP = `  --refiner M          base + refiner (diffusers' ensemble of expert denoisers, A1111's Refiner): --model runs
                       the noisy start of the schedule, M (e.g. stabilityai/stable-diffusion-xl-refiner-1.0, or
                       any SDXL-family folder, file or repo id) the rest from its latents, with the same steps
  --refiner-switch-at F  the fraction of the schedule the base runs, in (0, 1) (default 0.8)`;

export interface RefinerFlags { model: string; switchAt: number }

/** --refiner and --refiner-switch-at (default 0.8, A1111's), checked before the model loads. */
export function parseRefiner(values: Values, parsed: ParsedCommon): RefinerFlags | undefined {
  const model = stringFlag(values, "refiner"), switchAt = numberFlag(values, "refiner-switch-at");
  if (model === undefined) {
    if (switchAt !== undefined) throw new UsageError("--refiner-switch-at needs --refiner");
    return undefined;
  }
  if (switchAt !== undefined && !(switchAt > 0 && switchAt < 1)) throw new UsageError(`--refiner-switch-at must be in (0, 1), got ${switchAt}`);
  if (parsed.controlnets.groups.length) throw new UsageError("--refiner is not combined with --controlnet here");
  return { model, switchAt: switchAt ?? 0.8 };
}

/** The infotext fields A1111 writes for a refiner. */
export function refinerInfo(r: RefinerFlags): Record<string, string | number> {
  return { Refiner: servedModelName(r.model), "Refiner switch at": r.switchAt };
}

/** Opens the refiner, runs `fn` with it and the switch (which frees the base's UNet), then releases it. */
export async function withRefiner<T>(r: RefinerFlags, parsed: ParsedCommon, base: StableDiffusionXLPipeline, fn: (refiner: StableDiffusionXLPipeline, at: RefinerSwitch) => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const device = await resolveDevice(parsed.device, () => {});
  const refiner = await StableDiffusionXLPipeline.fromPretrained(r.model, {
    lowMemory: true, hub: parsed.load.hub, variant: parsed.variant, session: { device }, onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
  }).catch((e) => { throw e instanceof PipelineInputError ? new UsageError(`--refiner: ${e.message}`) : e; });
  process.stderr.write(`refiner ${refiner.model.dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  try {
    return await fn(refiner, { switchAt: r.switchAt, onSwitch: () => base.unet.release() });
  } finally {
    await refiner.release();
  }
}
