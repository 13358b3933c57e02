/**
 * A1111's hires fix fields of a txt2img request (enable_hr: true): hr_scale or hr_resize_x / hr_resize_y,
 * hr_upscaler (a latent mode or a name of the server's upscaler library), hr_second_pass_steps,
 * denoising_strength (default 0.7), hr_sampler_name / hr_scheduler, hr_prompt / hr_negative_prompt; older
 * clients' firstphase_width / firstphase_height make width / height the target.
 */
import { invalid } from "./errors.js";
import { Fields, checkSampler, checkSide, checkStrength, type Limits } from "./validation.js";
import type { HiresSpec } from "./job.js";
import { UpscalerLibrary, UpscalerLibraryError } from "./upscaler-library.js";
import { LATENT_MODES, DEFAULT_HIRES_STRENGTH, hiresTargetSize } from "../recipes/hires-fix.js";
import { PipelineInputError } from "../pipelines/errors.js";

const MODEL_FREE = new UpscalerLibrary();

export interface HiresRequest {
  hires: HiresSpec;
  /** The first pass's size (firstphase_* when given). */
  width?: number;
  height?: number;
}

export async function readHires(f: Fields, limits: Limits, steps: number, sides: { width?: number; height?: number }, defaultSize: number | undefined, library?: UpscalerLibrary): Promise<HiresRequest> {
  const fw = f.int("firstphase_width", 0, limits.maxSide) ?? 0, fh = f.int("firstphase_height", 0, limits.maxSide) ?? 0;
  const old = fw > 0 || fh > 0;
  const width = old ? checkSide("firstphase_width", fw || (sides.width ?? defaultSize ?? 1024), limits) : sides.width;
  const height = old ? checkSide("firstphase_height", fh || (sides.height ?? defaultSize ?? 1024), limits) : sides.height;
  const scale = f.number("hr_scale", 0, 16) ?? 2;
  const rx = old ? sides.width ?? 0 : f.int("hr_resize_x", 0, limits.maxSide) ?? 0;
  const ry = old ? sides.height ?? 0 : f.int("hr_resize_y", 0, limits.maxSide) ?? 0;
  const hrSteps = f.int("hr_second_pass_steps", 0, limits.maxSteps) ?? 0;
  const strength = f.number("denoising_strength", 0, 1) ?? DEFAULT_HIRES_STRENGTH;
  checkStrength(strength, hrSteps || steps, "denoising_strength");
  const upscaler = f.string("hr_upscaler", 255)?.trim() || "Latent";
  const spec: HiresSpec = { upscaler, strength, ...(rx || ry ? { width: rx || undefined, height: ry || undefined } : { scale }) };
  if (hrSteps) spec.steps = hrSteps;
  if (Object.hasOwn(LATENT_MODES, upscaler)) {
    if (!LATENT_MODES[upscaler]) throw invalid(`hr_upscaler ${JSON.stringify(upscaler)} is not implemented (antialiased latent modes); use ${Object.keys(LATENT_MODES).filter((k) => LATENT_MODES[k]).join(", ")}`, "invalid_value", "hr_upscaler");
  } else {
    try {
      const entry = await (library ?? MODEL_FREE).get(upscaler);
      if (entry.path) spec.upscalerPath = entry.path;
    } catch (e) {
      if (!(e instanceof UpscalerLibraryError)) throw e;
      const names = [...Object.keys(LATENT_MODES), ...(await (library ?? MODEL_FREE).list()).map((u) => u.name)];
      throw invalid(`unknown hr_upscaler ${JSON.stringify(upscaler)} (valid: ${names.join(", ")})`, "invalid_value", "hr_upscaler");
    }
  }
  // hr_sampler_name "Use same sampler" (or absent): the first pass's
  const hrSampler = f.string("hr_sampler_name");
  if (hrSampler && !/^use same/i.test(hrSampler)) {
    const hrSchedule = f.string("hr_scheduler");
    const s = checkSampler(hrSampler, hrSchedule && !/^use same/i.test(hrSchedule) ? hrSchedule : undefined, "hr_sampler_name", "hr_scheduler");
    if (s.scheduler) spec.scheduler = s.scheduler;
  }
  const prompt = f.string("hr_prompt", limits.maxPromptChars), negative = f.string("hr_negative_prompt", limits.maxPromptChars);
  if (prompt) spec.prompt = prompt;
  if (negative) spec.negativePrompt = negative;
  // the target against the limits now, not after the first pass
  try {
    const size = hiresTargetSize(width ?? defaultSize ?? 1024, height ?? defaultSize ?? 1024, spec);
    for (const [name, v] of [["hires width", size.upscaleWidth], ["hires height", size.upscaleHeight]] as const) {
      if (v > limits.maxSide) throw invalid(`the ${name} ${v} is above the limit of ${limits.maxSide}`, "invalid_size", rx || ry ? "hr_resize_x" : "hr_scale");
    }
  } catch (e) {
    if (e instanceof PipelineInputError) throw invalid(e.message, "invalid_value", "hr_scale");
    throw e;
  }
  return { hires: spec, width, height };
}
