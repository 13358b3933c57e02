/**
 * DreamBooth prior preservation: class images drawn by the model itself, as
 * train_dreambooth_lora_sdxl.py does when the class folder holds fewer than num_class_images
 * (the missing ones are generated from the class prompt and saved beside the others).
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import { encodePng } from "../image/png.js";
import { toRgb8 } from "../image/image.js";
import type { Variant } from "../loaders/component.js";

export async function ensureClassImages(o: { model: string; variant?: Variant; dir: string; prompt: string; count: number; resolution: number; steps: number; seed: number; log: (m: string) => void }): Promise<void> {
  mkdirSync(o.dir, { recursive: true });
  const have = readdirSync(o.dir).filter((n) => /\.png$/i.test(n)).length;
  if (have >= o.count) return;
  o.log(`generating ${o.count - have} class image(s) for "${o.prompt}" in ${o.dir}`);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(o.model, { variant: o.variant });
  try {
    for (let i = have; i < o.count; i++) {
      const out = await pipe.generate({ prompt: o.prompt, seed: o.seed + i, numInferenceSteps: o.steps, width: o.resolution, height: o.resolution });
      let name = join(o.dir, `class-${i}.png`);
      for (let k = 0; existsSync(name); k++) name = join(o.dir, `class-${i}-${k}.png`);
      writeFileSync(name, encodePng(toRgb8(out.images, 0)));
    }
  } finally {
    await pipe.release();
  }
}
