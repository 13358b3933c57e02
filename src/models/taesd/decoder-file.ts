/**
 * The standalone TAESD decoder file ComfyUI and AUTOMATIC1111 users have (taesdxl_decoder.safetensors,
 * from madebyollin/taesd): the state dict of one nn.Sequential whose entry 0 is the soft clamp, so its
 * keys are `N.weight`, `N.bias` (convs) and `N.conv.K.weight` (blocks) with N one more than in
 * diffusers' `decoder.layers.N`. The config is read off the tensors' shapes and positions.
 */
import type { TensorEntry } from "../../safetensors/read.js";
import type { WeightSource } from "../../nn/weights.js";
import { TaesdConfigError } from "./config.js";

const CONV = /^(\d+)\.(weight|bias)$/;
const BLOCK = /^(\d+)\.(conv\.[024]\.(weight|bias)|skip\.weight)$/;

/** A decoder file's key for a diffusers key (`decoder.layers.5.conv.0.weight` -> `6.conv.0.weight`), or undefined. */
export function decoderFileKey(diffusersKey: string): string | undefined {
  const m = /^decoder\.layers\.(\d+)\.(.+)$/.exec(diffusersKey);
  return m ? `${Number(m[1]) + 1}.${m[2]}` : undefined;
}

/** The diffusers key of a decoder file's key (`1.weight` -> `decoder.layers.0.weight`), or undefined. */
export function diffusersDecoderKey(fileKey: string): string | undefined {
  const m = /^(\d+)\.(.+)$/.exec(fileKey);
  return m && Number(m[1]) >= 1 ? `decoder.layers.${Number(m[1]) - 1}.${m[2]}` : undefined;
}

/** The file's tensors under their diffusers names. */
export function decoderFileSource(tensors: ReadonlyMap<string, TensorEntry>, where: string): WeightSource {
  return {
    description: `${where} (TAESD decoder file)`,
    lookup: (key) => {
      const k = decoderFileKey(key);
      return k === undefined ? undefined : tensors.get(k);
    },
    // Keys that map to nothing keep their name, so leftovers are reported as they are in the file.
    keys: () => [...tensors.keys()].map((k) => diffusersDecoderKey(k) ?? k),
  };
}

/**
 * The AutoencoderTiny config of a decoder file: latent and output channels, widths and blocks per
 * stage from the conv positions (a stage ends at each conv after the first). Upsampling by 2 and
 * ReLU are fixed by the file format. Throws, saying why, for anything else.
 */
export function decoderFileConfig(tensors: ReadonlyMap<string, TensorEntry>, where: string): Record<string, unknown> {
  const fail = (why: string) => new TaesdConfigError(`${where}: not a TAESD decoder file: ${why}`);
  const keys = [...tensors.keys()];
  if (keys.some((k) => k.startsWith("decoder.") || k.startsWith("encoder."))) {
    throw fail(`its keys are diffusers AutoencoderTiny names (decoder.layers...); pass the folder holding it and its config.json instead`);
  }
  const convs = new Map<number, TensorEntry>(), blocks = new Set<number>();
  for (const k of keys) {
    const c = CONV.exec(k), b = BLOCK.exec(k);
    if (c) { if (c[2] === "weight") convs.set(Number(c[1]), tensors.get(k)!); }
    else if (b) blocks.add(Number(b[1]));
    else throw fail(`unexpected tensor "${k}" (expected N.weight, N.bias, N.conv.K.weight, N.conv.K.bias)`);
  }
  if (convs.has(0)) {
    throw fail(`entry 0 is a conv, as in a TAESD encoder (taesd*_encoder.safetensors); --taesd takes the decoder file`);
  }
  const first = convs.get(1);
  if (!first || first.shape.length !== 4) throw fail(`no first conv "1.weight" [channels, latent_channels, 3, 3]`);
  const convAt = [...convs.keys()].sort((a, b) => a - b);
  const numBlocks: number[] = [], widths: number[] = [];
  let from = 1;
  for (const at of convAt.slice(1)) {
    numBlocks.push([...blocks].filter((i) => i > from && i < at).length);
    widths.push(convs.get(at)!.shape[1]);
    from = at;
  }
  if (numBlocks.length === 0) throw fail(`only one conv`);
  if ([...blocks].some((i) => i > from)) throw fail(`blocks after the last conv`);
  const last = convs.get(from)!;
  return {
    _class_name: "AutoencoderTiny",
    act_fn: "relu",
    latent_channels: first.shape[1],
    out_channels: last.shape[0],
    decoder_block_out_channels: widths,
    num_decoder_blocks: numBlocks,
    upsampling_scaling_factor: 2,
    scaling_factor: 1.0,
  };
}
