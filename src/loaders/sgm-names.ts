/**
 * Parameter names of the original Stability layout (SGM / LDM, what AUTOMATIC1111, ComfyUI and kohya
 * use) versus the diffusers/transformers names our models ask for. The UNet and VAE tables are derived
 * from the config, not hard-coded for SDXL: SGM numbers `input_blocks` / `output_blocks` consecutively
 * over every resnet(+attention) layer and every down/upsampler, so the numbering depends on
 * layers_per_block and on which blocks have attentions (SSD-1B and Vega differ from SDXL only in the
 * transformer depth, but a custom config may differ more).
 */
import type { UNetConfig } from "../models/unet/config.js";
import type { VaeConfig } from "../models/vae/config.js";

/** Where a diffusers parameter lives in an SGM file (relative to the component's prefix). */
export interface SgmRef {
  key: string;
  /** One of `of` equal row ranges along dim 0: OpenCLIP's fused in_proj holds q, k, v. */
  part?: { index: number; of: number };
  /** Stored as the transpose of the diffusers weight (OpenCLIP's text_projection). */
  transposed?: boolean;
  /** Same elements in another shape: LDM stores the VAE attention projections as 1x1 convs. */
  reshape?: boolean;
}

/** [diffusers name, SGM name] of a sub-module inside a renamed module. */
type Leaf = readonly [string, string];

interface PrefixPair {
  d: string;
  s: string;
  /** When set, the name right after the prefix must be one of these (and is renamed). */
  leaves?: readonly Leaf[];
  reshape?: boolean;
  /** SGM attention prefix: the transformer depth the config gives it (for architecture detection). */
  depth?: number;
}

const UNET_RESNET: readonly Leaf[] = [
  ["norm1", "in_layers.0"], ["conv1", "in_layers.2"], ["time_emb_proj", "emb_layers.1"],
  ["norm2", "out_layers.0"], ["conv2", "out_layers.3"], ["conv_shortcut", "skip_connection"],
];
const VAE_RESNET: readonly Leaf[] = [["norm1", "norm1"], ["conv1", "conv1"], ["norm2", "norm2"], ["conv2", "conv2"], ["conv_shortcut", "nin_shortcut"]];
const VAE_ATTENTION: readonly Leaf[] = [["group_norm", "norm"], ["to_q", "q"], ["to_k", "k"], ["to_v", "v"], ["to_out.0", "proj_out"]];

/** Prefix renames in both directions; the longest matching prefix wins. */
export class PrefixTable {
  private readonly byD: PrefixPair[];
  private readonly byS: PrefixPair[];

  constructor(readonly pairs: readonly PrefixPair[]) {
    this.byD = [...pairs].sort((a, b) => b.d.length - a.d.length);
    this.byS = [...pairs].sort((a, b) => b.s.length - a.s.length);
  }

  toSgm(key: string): SgmRef | undefined {
    return rename(key, this.byD, 0);
  }

  fromSgm(key: string): string | undefined {
    return rename(key, this.byS, 1)?.key;
  }
}

function rename(key: string, pairs: readonly PrefixPair[], from: 0 | 1): SgmRef | undefined {
  const to = 1 - from;
  for (const p of pairs) {
    const [src, dst] = from === 0 ? [p.d, p.s] : [p.s, p.d];
    if (!key.startsWith(src)) continue;
    let rest = key.slice(src.length);
    if (p.leaves) {
      const leaf = p.leaves.find((l) => rest.startsWith(`${l[from]}.`));
      if (!leaf) return undefined;
      rest = leaf[to] + rest.slice(leaf[from].length);
    }
    return { key: dst + rest, reshape: p.reshape };
  }
  return undefined;
}

/** The UNet's diffusers <-> SGM module table for a config. */
export function unetPrefixTable(cfg: UNetConfig): PrefixTable {
  const pairs: PrefixPair[] = [
    { d: "conv_in.", s: "input_blocks.0.0." },
    { d: "time_embedding.linear_1.", s: "time_embed.0." },
    { d: "time_embedding.linear_2.", s: "time_embed.2." },
    { d: "add_embedding.linear_1.", s: "label_emb.0.0." },
    { d: "add_embedding.linear_2.", s: "label_emb.0.2." },
    { d: "conv_norm_out.", s: "out.0." },
    { d: "conv_out.", s: "out.2." },
  ];
  const n = cfg.blockOutChannels.length;
  let k = 1; // input_blocks.0 is conv_in
  for (let b = 0; b < n; b++) {
    const attn = cfg.downBlockTypes[b] === "CrossAttnDownBlock2D";
    for (let j = 0; j < cfg.layersPerBlock[b]; j++, k++) {
      pairs.push({ d: `down_blocks.${b}.resnets.${j}.`, s: `input_blocks.${k}.0.`, leaves: UNET_RESNET });
      if (attn) pairs.push({ d: `down_blocks.${b}.attentions.${j}.`, s: `input_blocks.${k}.1.`, depth: cfg.transformerLayersPerBlock[b] });
    }
    if (b < n - 1) pairs.push({ d: `down_blocks.${b}.downsamplers.0.conv.`, s: `input_blocks.${k++}.0.op.` });
  }
  if (cfg.midBlockType !== null) {
    pairs.push({ d: "mid_block.resnets.0.", s: "middle_block.0.", leaves: UNET_RESNET });
    if (cfg.midBlockType === "UNetMidBlock2DCrossAttn") {
      pairs.push({ d: "mid_block.attentions.0.", s: "middle_block.1.", depth: cfg.midTransformerLayers });
      pairs.push({ d: "mid_block.resnets.1.", s: "middle_block.2.", leaves: UNET_RESNET });
    }
  }
  const upLayers = [...cfg.layersPerBlock].reverse();
  k = 0;
  for (let u = 0; u < n; u++) {
    const attn = cfg.upBlockTypes[u] === "CrossAttnUpBlock2D";
    for (let j = 0; j <= upLayers[u]; j++, k++) {
      pairs.push({ d: `up_blocks.${u}.resnets.${j}.`, s: `output_blocks.${k}.0.`, leaves: UNET_RESNET });
      if (attn) pairs.push({ d: `up_blocks.${u}.attentions.${j}.`, s: `output_blocks.${k}.1.`, depth: cfg.reverseTransformerLayersPerBlock[u][j] });
      // The upsampler sits after the last layer's resnet (and attention, when the block has them).
      if (j === upLayers[u] && u < n - 1) pairs.push({ d: `up_blocks.${u}.upsamplers.0.conv.`, s: `output_blocks.${k}.${attn ? 2 : 1}.conv.` });
    }
  }
  return new PrefixTable(pairs);
}

/**
 * Transformer depth per SGM attention module ("input_blocks.4.1" -> 2) that a config implies: what
 * tells SDXL, SSD-1B and Vega apart in a file that carries no config.
 */
export function unetAttentionDepths(cfg: UNetConfig): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of unetPrefixTable(cfg).pairs) if (p.depth !== undefined) out.set(p.s.slice(0, -1), p.depth);
  return out;
}

/**
 * The VAE's table. `decoderTop` is the LDM index of the decoder's first up block (LDM numbers them in
 * reverse): blocks - 1 in real checkpoints; diffusers' conversion script always writes 3 - i, which
 * differs for VAEs with other than 4 levels, so the caller reads it from the file.
 */
export function vaePrefixTable(cfg: VaeConfig, decoderTop = cfg.blockOutChannels.length - 1): PrefixTable {
  const n = cfg.blockOutChannels.length;
  const pairs: PrefixPair[] = [
    { d: "quant_conv.", s: "quant_conv." },
    { d: "post_quant_conv.", s: "post_quant_conv." },
  ];
  for (const part of ["encoder", "decoder"]) {
    pairs.push(
      { d: `${part}.conv_in.`, s: `${part}.conv_in.` },
      { d: `${part}.conv_out.`, s: `${part}.conv_out.` },
      { d: `${part}.conv_norm_out.`, s: `${part}.norm_out.` },
      { d: `${part}.mid_block.resnets.0.`, s: `${part}.mid.block_1.`, leaves: VAE_RESNET },
      { d: `${part}.mid_block.resnets.1.`, s: `${part}.mid.block_2.`, leaves: VAE_RESNET },
      { d: `${part}.mid_block.attentions.0.`, s: `${part}.mid.attn_1.`, leaves: VAE_ATTENTION, reshape: true },
    );
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < cfg.layersPerBlock; j++) pairs.push({ d: `encoder.down_blocks.${i}.resnets.${j}.`, s: `encoder.down.${i}.block.${j}.`, leaves: VAE_RESNET });
    if (i < n - 1) pairs.push({ d: `encoder.down_blocks.${i}.downsamplers.0.`, s: `encoder.down.${i}.downsample.` });
    const up = decoderTop - i;
    for (let j = 0; j <= cfg.layersPerBlock; j++) pairs.push({ d: `decoder.up_blocks.${i}.resnets.${j}.`, s: `decoder.up.${up}.block.${j}.`, leaves: VAE_RESNET });
    if (i < n - 1) pairs.push({ d: `decoder.up_blocks.${i}.upsamplers.0.`, s: `decoder.up.${up}.upsample.` });
  }
  return new PrefixTable(pairs);
}

/** OpenCLIP text tower (SDXL's second text encoder, `conditioner.embedders.1.model.`) <-> transformers names. */
const OPENCLIP_FIXED: readonly Leaf[] = [
  ["text_model.embeddings.token_embedding.weight", "token_embedding.weight"],
  ["text_model.embeddings.position_embedding.weight", "positional_embedding"],
  ["text_model.final_layer_norm.weight", "ln_final.weight"],
  ["text_model.final_layer_norm.bias", "ln_final.bias"],
];
const OPENCLIP_LAYER: readonly Leaf[] = [
  ["layer_norm1.", "ln_1."], ["layer_norm2.", "ln_2."], ["mlp.fc1.", "mlp.c_fc."], ["mlp.fc2.", "mlp.c_proj."], ["self_attn.out_proj.", "attn.out_proj."],
];
const QKV = "qkv";

export function openClipToSgm(key: string): SgmRef | undefined {
  const fixed = OPENCLIP_FIXED.find(([d]) => d === key);
  if (fixed) return { key: fixed[1] };
  if (key === "text_projection.weight") return { key: "text_projection", transposed: true };
  const m = /^text_model\.encoder\.layers\.(\d+)\.(.+)$/.exec(key);
  if (!m) return undefined;
  const [, layer, rest] = m;
  const qkv = /^self_attn\.([qkv])_proj\.(weight|bias)$/.exec(rest);
  if (qkv) return { key: `transformer.resblocks.${layer}.attn.in_proj_${qkv[2]}`, part: { index: QKV.indexOf(qkv[1]), of: 3 } };
  const leaf = OPENCLIP_LAYER.find(([d]) => rest.startsWith(d));
  return leaf ? { key: `transformer.resblocks.${layer}.${leaf[1]}${rest.slice(leaf[0].length)}` } : undefined;
}

/** The transformers names held by one OpenCLIP tensor (three for a fused in_proj). */
export function openClipFromSgm(key: string): string[] | undefined {
  const fixed = OPENCLIP_FIXED.find(([, s]) => s === key);
  if (fixed) return [fixed[0]];
  if (key === "text_projection") return ["text_projection.weight"];
  const m = /^transformer\.resblocks\.(\d+)\.(.+)$/.exec(key);
  if (!m) return undefined;
  const [, layer, rest] = m;
  const base = `text_model.encoder.layers.${layer}.`;
  const fused = /^attn\.in_proj_(weight|bias)$/.exec(rest);
  if (fused) return [...QKV].map((c) => `${base}self_attn.${c}_proj.${fused[1]}`);
  const leaf = OPENCLIP_LAYER.find(([, s]) => rest.startsWith(s));
  return leaf ? [`${base}${leaf[0]}${rest.slice(leaf[1].length)}`] : undefined;
}
