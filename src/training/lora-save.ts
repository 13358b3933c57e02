/**
 * Writing trained LoRA weights.
 * - diffusers/PEFT form (`pytorch_lora_weights.safetensors`): `unet.<module>.lora_A.weight` [r, in] and
 *   `lora_B.weight` [out, r], `text_encoder.` / `text_encoder_2.` likewise, what
 *   StableDiffusionXLPipeline.save_lora_weights writes and load_lora_weights and our readLora read.
 *   These files carry no alpha (loaders then use scale 1), so alpha/r is folded into B.
 * - kohya form: `lora_unet_<SGM module with _>` (`lora_te1_`, `lora_te2_`) with lora_down / lora_up and
 *   an `alpha` scalar, what AUTOMATIC1111 and ComfyUI read.
 */
import { saveTensors } from "../safetensors/index.js";
import { writeAtomically } from "../util/atomic-write.js";
import { parseUNetConfig } from "../models/unet/config.js";
import { unetPrefixTable } from "../loaders/sgm-names.js";
import type { LoraModule } from "./graph/lora-modules.js";

export type SavedTensors = Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }>;

const f = Math.fround;

export function peftTensors(modules: LoraModule[]): SavedTensors {
  const out: SavedTensors = {};
  for (const m of modules) {
    const scale = f(m.alpha / m.rank);
    const b = scale === 1 ? m.up.value : m.up.value.map((v) => v * scale);
    out[`${m.component}.${m.module}.lora_A.weight`] = { dtype: "F32", shape: [...m.down.tensor.shape], data: m.down.value };
    out[`${m.component}.${m.module}.lora_B.weight`] = { dtype: "F32", shape: [...m.up.tensor.shape], data: b };
  }
  return out;
}

const KOHYA_PREFIX: Record<string, string> = { unet: "lora_unet_", text_encoder: "lora_te1_", text_encoder_2: "lora_te2_" };

export function kohyaTensors(modules: LoraModule[], unetConfig: Record<string, any>): SavedTensors {
  const sgm = unetPrefixTable(parseUNetConfig(unetConfig));
  const out: SavedTensors = {};
  for (const m of modules) {
    let name = m.module;
    if (m.component === "unet") {
      const ref = sgm.toSgm(`${m.module}.weight`);
      if (!ref) throw new Error(`kohya export: no SGM name for UNet module ${m.module}`);
      name = ref.key.slice(0, -".weight".length);
    }
    const base = KOHYA_PREFIX[m.component] + name.replaceAll(".", "_");
    out[`${base}.lora_down.weight`] = { dtype: "F32", shape: [...m.down.tensor.shape], data: m.down.value };
    out[`${base}.lora_up.weight`] = { dtype: "F32", shape: [...m.up.tensor.shape], data: m.up.value };
    out[`${base}.alpha`] = { dtype: "F32", shape: [], data: Float32Array.of(m.alpha) };
  }
  return out;
}

export function saveLora(file: string, tensors: SavedTensors): void {
  writeAtomically(file, (tmp) => saveTensors(tmp, tensors));
}
