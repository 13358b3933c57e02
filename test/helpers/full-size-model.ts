import { cpSync, copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fixture } from "./fixtures.js";

/**
 * A full-size SSD-1B / SDXL / Vega folder in the diffusers layout with the real configs (UNet, SDXL VAE,
 * CLIP-L, CLIP-G, scheduler) and tokenizers, ready for `ssd1b synth`.
 */
export function fullSizeModelFolder(dir: string, unet: "ssd-1b" | "sdxl" | "vega"): string {
  const put = (from: string, ...to: string[]) => {
    mkdirSync(join(dir, ...to.slice(0, -1)), { recursive: true });
    copyFileSync(from, join(dir, ...to));
  };
  put(fixture("pipeline", "tiny-ssd", "model_index.json"), "model_index.json");
  put(fixture("configs", "sdxl-scheduler.json"), "scheduler", "scheduler_config.json");
  put(fixture("configs", unet, "unet_config.json"), "unet", "config.json");
  put(fixture("configs", "sdxl-vae.json"), "vae", "config.json");
  put(fixture("text_encoder", "clip-l-synth", "config.json"), "text_encoder", "config.json");
  put(fixture("text_encoder", "clip-g-synth", "config.json"), "text_encoder_2", "config.json");
  for (const t of ["tokenizer", "tokenizer_2"]) cpSync(fixture("pipeline", "tiny-ssd", t), join(dir, t), { recursive: true });
  return dir;
}
