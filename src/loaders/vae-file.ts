/**
 * A standalone VAE file, as AUTOMATIC1111 (models/VAE) and ComfyUI (models/vae) keep them:
 * stabilityai's sdxl_vae.safetensors and madebyollin's fp16-fix in LDM names (`decoder.up.0.block.0.*`),
 * a diffusers diffusion_pytorch_model.safetensors taken out of its folder (`decoder.up_blocks.0.*`), or a
 * whole SGM checkpoint whose `first_stage_model.*` is borrowed. Such files carry no config: it is the
 * SDXL VAE's (scaling factor 0.13025) with the widths, depth and channels the tensors show, so any
 * AutoencoderKL of this layout loads; the weights are read in place.
 */
import { readSingleFileHeader, ldmVaeSource } from "./single-file.js";
import { SDXL_VAE } from "./builtin-configs/vae.js";
import { storeSource, type ComponentWeights } from "./component.js";
import { TensorStore } from "../safetensors/index.js";
import type { TensorEntry } from "../safetensors/read.js";

export class VaeFileError extends Error {}

type Layout = { names: "ldm" | "diffusers"; prefix: string };

function layoutOf(file: string, tensors: Map<string, TensorEntry>): Layout {
  const has = (p: string) => { for (const k of tensors.keys()) if (k.startsWith(p)) return true; return false; };
  if (has("decoder.up_blocks.")) return { names: "diffusers", prefix: "" };
  for (const prefix of ["", "first_stage_model."]) if (has(`${prefix}decoder.up.`)) return { names: "ldm", prefix };
  throw new VaeFileError(`${file}: not a VAE file: no decoder.up.* (LDM) or decoder.up_blocks.* (diffusers) tensors${has("model.diffusion_model.") ? " and the checkpoint holds no first_stage_model.*" : ""}`);
}

/** The SDXL VAE config with the sizes read from the tensors. */
function configOf(file: string, tensors: Map<string, TensorEntry>, { names, prefix }: Layout): Record<string, unknown> {
  const shape = (key: string) => {
    const t = tensors.get(prefix + key);
    if (!t) throw new VaeFileError(`${file}: no ${prefix + key} tensor; the VAE is incomplete`);
    return t.shape;
  };
  const down = names === "ldm" ? (i: number) => `encoder.down.${i}.block` : (i: number) => `encoder.down_blocks.${i}.resnets`;
  const count = (re: RegExp) => new Set([...tensors.keys()].flatMap((k) => { const m = re.exec(k.slice(prefix.length)); return k.startsWith(prefix) && m ? [m[1]] : []; })).size;
  const levels = count(names === "ldm" ? /^encoder\.down\.(\d+)\./ : /^encoder\.down_blocks\.(\d+)\./);
  const layers = count(new RegExp(`^${down(0).replace(/\./g, "\\.")}\\.(\\d+)\\.`));
  const widths = Array.from({ length: levels }, (_, i) => shape(`${down(i)}.0.conv2.weight`)[0]);
  return {
    ...SDXL_VAE,
    block_out_channels: widths,
    down_block_types: widths.map(() => "DownEncoderBlock2D"), up_block_types: widths.map(() => "UpDecoderBlock2D"),
    layers_per_block: layers,
    in_channels: shape("encoder.conv_in.weight")[1], out_channels: shape("decoder.conv_out.weight")[0],
    latent_channels: shape("decoder.conv_in.weight")[1],
  };
}

/** Opens a .safetensors VAE file (see the file comment). */
export function openVaeFile(file: string): ComponentWeights {
  if (!/\.safetensors$/i.test(file)) throw new VaeFileError(`${file}: only .safetensors VAE files are read (convert a .pt / .ckpt with safetensors first)`);
  const tensors = readSingleFileHeader(file);
  const layout = layoutOf(file, tensors);
  const config = configOf(file, tensors, layout);
  const where = layout.prefix ? `${file} (VAE under "${layout.prefix}")` : file;
  if (layout.names === "ldm") return { config, source: ldmVaeSource(file, tensors, config, layout.prefix), where };
  return { config, source: storeSource(TensorStore.open(file)), where };
}
