/**
 * Validation images during training, as the scripts log them: the pipeline (the base model with the
 * LoRA being trained, or the model folder just saved) draws each validation prompt with a fixed seed,
 * written to <output>/validation/step-<N>-<i>.png.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { encodePng } from "../image/png.js";
import { toRgb8 } from "../image/image.js";
import type { Variant } from "../loaders/component.js";

export interface ValidationOptions {
  /** The model folder to draw with. */
  model: string;
  variant?: Variant;
  /** A LoRA file added to it. */
  lora?: string;
  prompts: string[];
  imagesPerPrompt: number;
  steps: number;
  guidance: number;
  resolution: number;
  seed: number;
}

export async function validationImages(o: ValidationOptions, outDir: string, step: number): Promise<string[]> {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(o.model, { variant: o.variant, ...(o.lora ? { loras: [{ file: o.lora, weight: 1 }] } : {}) });
  const written: string[] = [];
  try {
    mkdirSync(outDir, { recursive: true });
    let i = 0;
    for (const prompt of o.prompts) {
      for (let k = 0; k < o.imagesPerPrompt; k++, i++) {
        const out = await pipe.generate({ prompt, seed: o.seed + i, numInferenceSteps: o.steps, guidanceScale: o.guidance, width: o.resolution, height: o.resolution });
        const file = join(outDir, `step-${step}-${i}.png`);
        writeFileSync(file, encodePng(toRgb8(out.images, 0), { parameters: `${prompt}\nSteps: ${o.steps}, CFG scale: ${o.guidance}, Seed: ${o.seed + i}, Size: ${o.resolution}x${o.resolution}, Training step: ${step}` }));
        written.push(file);
      }
    }
  } finally {
    await pipe.release();
  }
  return written;
}
