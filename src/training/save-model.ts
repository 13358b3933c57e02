/**
 * A trained UNet as a diffusers folder the pipeline loads: unet/config.json +
 * unet/diffusion_pytorch_model.safetensors (float32, or fp16 as *.fp16.safetensors), with the other
 * components (VAE, text encoders, tokenizers, scheduler, model_index.json) taken from the base model
 * (hard links where the file system allows, copies otherwise).
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { f32ToF16, writeSafetensors } from "../safetensors/index.js";

function linkOrCopy(from: string, to: string): void {
  if (statSync(from).isDirectory()) {
    mkdirSync(to, { recursive: true });
    for (const n of readdirSync(from)) linkOrCopy(join(from, n), join(to, n));
    return;
  }
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

const OTHER_PARTS = ["model_index.json", "scheduler", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"];

/** The base model's other components (not unet/) into `outDir`. */
export function copyOtherComponents(baseDir: string, outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  for (const n of OTHER_PARTS) {
    if (existsSync(join(baseDir, n)) && !existsSync(join(outDir, n))) linkOrCopy(join(baseDir, n), join(outDir, n));
  }
}

export function saveUNet(dir: string, config: Record<string, unknown>, weights: { key: string; shape: readonly number[]; value: Float32Array }[], dtype: "fp32" | "fp16" = "fp32"): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({ _class_name: "UNet2DConditionModel", ...config }, null, 2));
  const file = join(dir, `diffusion_pytorch_model${dtype === "fp16" ? ".fp16" : ""}.safetensors`);
  const byKey = new Map(weights.map((w) => [w.key, w]));
  const sorted = [...byKey.keys()].sort();
  writeSafetensors(file, sorted.map((k) => ({ name: k, dtype: dtype === "fp16" ? "F16" : "F32", shape: [...byKey.get(k)!.shape] })),
    (s) => (dtype === "fp16" ? f32ToF16(byKey.get(s.name)!.value) : byKey.get(s.name)!.value));
  return file;
}
