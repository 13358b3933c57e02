/**
 * The largest inputs the pipeline accepts, checked before anything is allocated, so that
 * `--width 100000` or `steps: 1e9` is a clear error and not an allocation that runs until killed.
 * The CLI checks them before it loads the model, the pipeline again on each call; the server has
 * tighter limits of its own (src/server/validation.ts).
 */
import { PipelineInputError } from "./errors.js";

export const PIPELINE_LIMITS = {
  /** Largest width or height: 4096 is 4x SDXL's trained size (a 4096x4096 VAE decode alone needs tens of GiB). */
  maxSide: 4096,
  /** Most denoising steps (diffusers' schedules have 1000 training timesteps). */
  maxSteps: 1000,
  /** Most images made in one call (prompts x images per prompt). */
  maxImages: 64,
} as const;

type Checked = { width?: number; height?: number; steps?: number; images?: number };

const NAMES: Record<keyof Checked, string> = { width: "the image width", height: "the image height", steps: "the number of steps", images: "the number of images (prompts x images per prompt)" };

/** Throws a PipelineInputError naming the value (`names`: how the caller calls it, e.g. "--width") and its limit; absent values pass. */
export function checkPipelineLimits(o: Checked, names: Partial<Record<keyof Checked, string>> = {}): void {
  const L = PIPELINE_LIMITS;
  const max: Record<keyof Checked, number> = { width: L.maxSide, height: L.maxSide, steps: L.maxSteps, images: L.maxImages };
  for (const key of Object.keys(max) as (keyof Checked)[]) {
    const v = o[key];
    if (v !== undefined && v > max[key]) throw new PipelineInputError(`${names[key] ?? NAMES[key]} ${v} is above the limit of ${max[key]}`);
  }
}
