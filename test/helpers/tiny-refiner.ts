import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModelIn } from "./tiny-model.js";
import { synthComponent } from "../../src/cli/commands/synth.js";

/**
 * A tiny SDXL refiner under `tmp`, laid out as stabilityai/stable-diffusion-xl-refiner-1.0: tiny-sdxl's
 * text_encoder_2 (the same synth weights), tokenizer_2, VAE and scheduler, no text_encoder / tokenizer
 * (null in model_index), requires_aesthetics_score, and a UNet whose cross-attention takes CLIP-G's
 * width alone and whose added embedding takes 5 time ids (72 = 32 + 5 x 8, as diffusers' own test refiner).
 */
export function tinyRefinerIn(tmp: string): string {
  const dir = join(tmp, "tiny-refiner");
  if (existsSync(join(dir, "unet", "diffusion_pytorch_model.safetensors"))) return dir;
  cpSync(tinyModelIn(tmp, "tiny-sdxl"), dir, { recursive: true });
  for (const d of ["text_encoder", "tokenizer"]) rmSync(join(dir, d), { recursive: true, force: true });
  const index = JSON.parse(readFileSync(join(dir, "model_index.json"), "utf8"));
  Object.assign(index, { _class_name: "StableDiffusionXLImg2ImgPipeline", text_encoder: [null, null], tokenizer: [null, null], requires_aesthetics_score: true, force_zeros_for_empty_prompt: false });
  writeFileSync(join(dir, "model_index.json"), JSON.stringify(index, null, 2));
  const unetConfig = JSON.parse(readFileSync(join(dir, "unet", "config.json"), "utf8"));
  Object.assign(unetConfig, { cross_attention_dim: 32, projection_class_embeddings_input_dim: 72 });
  writeFileSync(join(dir, "unet", "config.json"), JSON.stringify(unetConfig, null, 2));
  synthComponent(join(dir, "unet"), "fp32");
  return dir;
}
