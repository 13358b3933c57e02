import type { Diff } from "./fixtures.js";

/** What helpers/webgpu-cases.ts prints per case (kept apart so the test file does not load the runner). */
export interface CaseResult { case: string; ms: number; diffs?: Record<string, Diff>; verdict?: { unfused: boolean; relL2: number }; kernels?: Record<string, number>; warnings: string[]; error?: string }

export const CASE_NAMES = [
  "attention-check", "groupnorm-epsilons", "unet-tiny-ssd", "unet-tiny-sdxl", "vae-tiny", "clip-l", "clip-g",
  "pipeline-tiny-ssd-basic", "pipeline-tiny-ssd-img2img", "pipeline-tiny-sdxl-basic",
  "unet-tiny-ssd-fp16", "pipeline-tiny-ssd-basic-fp16", "unet-tiny-ssd-q8",
] as const;
