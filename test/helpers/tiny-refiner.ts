import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModelIn } from "./tiny-model.js";
import { synthComponent } from "../../src/cli/commands/synth.js";
import { saveTensors, TensorStore } from "../../src/safetensors/index.js";
import { openClipToSgm, unetPrefixTable, vaePrefixTable } from "../../src/loaders/sgm-names.js";
import { parseUNetConfig } from "../../src/models/unet/config.js";
import { parseVaeConfig } from "../../src/models/vae/config.js";

/**
 * A tiny SDXL refiner under `tmp`, laid out as stabilityai/stable-diffusion-xl-refiner-1.0: tiny-sdxl's
 * text_encoder_2 (the same synth weights), tokenizer_2, VAE and scheduler, no text_encoder / tokenizer
 * (null in model_index), requires_aesthetics_score, and a UNet laid out as the refiner's (four levels,
 * attention at the middle two) whose cross-attention takes CLIP-G's width alone and whose added
 * embedding takes 5 time ids (72 = 32 + 5 x 8, as diffusers' own test refiner).
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
  // the refiner's block layout: four levels, attention at the middle two only
  Object.assign(unetConfig, {
    cross_attention_dim: 32, projection_class_embeddings_input_dim: 72, block_out_channels: [32, 32, 64, 64], attention_head_dim: [2, 2, 4, 4], transformer_layers_per_block: [1, 2, 2, 1],
    down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"], up_block_types: ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  });
  writeFileSync(join(dir, "unet", "config.json"), JSON.stringify(unetConfig, null, 2));
  synthComponent(join(dir, "unet"), "fp32");
  return dir;
}

/**
 * The tiny refiner as an SGM single file, laid out as sd_xl_refiner_1.0.safetensors: the UNet under
 * model.diffusion_model., the VAE under first_stage_model., OpenCLIP (q, k, v fused, text_projection
 * transposed) under conditioner.embedders.0.model., no CLIP-L.
 */
export function tinyRefinerSingleFile(tmp: string): string {
  const file = join(tmp, "tiny-refiner-sgm.safetensors");
  if (existsSync(file)) return file;
  const dir = tinyRefinerIn(tmp);
  const out: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  const read = (component: string, weights: string) => TensorStore.open(join(dir, component, weights));
  const unet = read("unet", "diffusion_pytorch_model.safetensors"), unetTable = unetPrefixTable(parseUNetConfig(JSON.parse(readFileSync(join(dir, "unet", "config.json"), "utf8"))));
  for (const [k, e] of unet.tensors) out[`model.diffusion_model.${unetTable.toSgm(k)!.key}`] = { dtype: "F32", shape: e.shape, data: unet.float32(k) };
  const vae = read("vae", "diffusion_pytorch_model.safetensors"), vaeTable = vaePrefixTable(parseVaeConfig(JSON.parse(readFileSync(join(dir, "vae", "config.json"), "utf8"))));
  for (const [k, e] of vae.tensors) out[`first_stage_model.${vaeTable.toSgm(k)!.key}`] = { dtype: "F32", shape: e.shape, data: vae.float32(k) };
  const clip = read("text_encoder_2", "model.safetensors");
  const fused = new Map<string, { shape: number[]; parts: Float32Array[] }>();
  for (const [k, e] of clip.tensors) {
    const ref = openClipToSgm(k);
    if (!ref) continue;
    const name = `conditioner.embedders.0.model.${ref.key}`, data = clip.float32(k);
    if (ref.part) {
      const f = fused.get(name) ?? { shape: e.shape, parts: [] };
      f.parts[ref.part.index] = data;
      fused.set(name, f);
    } else if (ref.transposed) {
      const [rows, cols] = e.shape, t = new Float32Array(data.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = data[r * cols + c];
      out[name] = { dtype: "F32", shape: [cols, rows], data: t };
    } else out[name] = { dtype: "F32", shape: e.shape, data };
  }
  for (const [name, f] of fused) {
    const data = new Float32Array(f.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of f.parts) { data.set(p, at); at += p.length; }
    out[name] = { dtype: "F32", shape: [3 * f.shape[0], ...f.shape.slice(1)], data };
  }
  saveTensors(file, out);
  return file;
}
