/** UNet2DConditionModel config.json, resolved the way diffusers resolves it, with unsupported values rejected. */
import { withoutDefaultedKeys } from "../config-defaults.js";

export class ConfigError extends Error {}

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  downBlockTypes: ("DownBlock2D" | "CrossAttnDownBlock2D")[];
  upBlockTypes: ("UpBlock2D" | "CrossAttnUpBlock2D")[];
  midBlockType: "UNetMidBlock2DCrossAttn" | "UNetMidBlock2D" | null;
  layersPerBlock: number[];
  /** Transformer layers per attention, per down block. */
  transformerLayersPerBlock: number[];
  /** Per up block, per attention: the transformer layers (SSD-1B's asymmetric list, or the reverse of the down list). */
  reverseTransformerLayersPerBlock: number[][];
  midTransformerLayers: number;
  numAttentionHeads: number[];
  crossAttentionDim: number[];
  normNumGroups: number;
  normEps: number;
  useLinearProjection: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  additionEmbedType: "text_time" | null;
  additionTimeEmbedDim: number;
  projectionClassEmbeddingsInputDim: number;
  timeCondProjDim: number | null;
  sampleSize: number;
  actFn: string;
}

function perBlock<T>(value: T | T[], n: number, name: string): T[] {
  if (Array.isArray(value)) {
    if (value.length !== n) throw new ConfigError(`unet config: ${name} has ${value.length} entries for ${n} blocks`);
    return value;
  }
  return Array(n).fill(value);
}

function requireValue(raw: Record<string, any>, key: string, allowed: unknown[], dflt: unknown): void {
  const v = raw[key] ?? dflt;
  if (!allowed.some((a) => a === v)) throw new ConfigError(`unet config: unsupported ${key} = ${JSON.stringify(v)} (supported: ${allowed.map((a) => JSON.stringify(a)).join(", ")})`);
}

export function parseUNetConfig(file: Record<string, any>): UNetConfig {
  // Keys listed in _use_default_values take the class defaults, as in diffusers' from_config.
  const raw = withoutDefaultedKeys(file);
  if (raw._class_name && raw._class_name !== "UNet2DConditionModel") {
    throw new ConfigError(`unet config: _class_name ${raw._class_name} is not UNet2DConditionModel`);
  }
  const blockOutChannels: number[] = raw.block_out_channels ?? [320, 640, 1280, 1280];
  const n = blockOutChannels.length;
  const downBlockTypes = raw.down_block_types ?? ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];
  const upBlockTypes = raw.up_block_types ?? ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"];
  for (const t of downBlockTypes) if (t !== "DownBlock2D" && t !== "CrossAttnDownBlock2D") throw new ConfigError(`unet config: unsupported down block type "${t}" (supported: DownBlock2D, CrossAttnDownBlock2D)`);
  for (const t of upBlockTypes) if (t !== "UpBlock2D" && t !== "CrossAttnUpBlock2D") throw new ConfigError(`unet config: unsupported up block type "${t}" (supported: UpBlock2D, CrossAttnUpBlock2D)`);
  if (downBlockTypes.length !== n || upBlockTypes.length !== n) throw new ConfigError(`unet config: ${downBlockTypes.length} down and ${upBlockTypes.length} up block types for ${n} block_out_channels`);
  const midBlockType = raw.mid_block_type === undefined ? "UNetMidBlock2DCrossAttn" : raw.mid_block_type;
  if (![null, "UNetMidBlock2DCrossAttn", "UNetMidBlock2D"].includes(midBlockType)) throw new ConfigError(`unet config: unsupported mid_block_type "${midBlockType}" (supported: UNetMidBlock2DCrossAttn, UNetMidBlock2D, null)`);

  requireValue(raw, "class_embed_type", [null], null);
  requireValue(raw, "encoder_hid_dim_type", [null], null);
  requireValue(raw, "attention_type", ["default"], "default");
  requireValue(raw, "dual_cross_attention", [false], false);
  requireValue(raw, "only_cross_attention", [false], false);
  requireValue(raw, "resnet_time_scale_shift", ["default"], "default");
  requireValue(raw, "time_embedding_type", ["positional"], "positional");
  requireValue(raw, "conv_in_kernel", [3], 3);
  requireValue(raw, "conv_out_kernel", [3], 3);
  requireValue(raw, "center_input_sample", [false], false);
  requireValue(raw, "addition_embed_type", [null, "text_time"], null);
  requireValue(raw, "mid_block_scale_factor", [1], 1);
  requireValue(raw, "resnet_out_scale_factor", [1], 1);
  requireValue(raw, "time_embedding_act_fn", [null], null);
  requireValue(raw, "timestep_post_act", [null], null);
  requireValue(raw, "resnet_skip_time_act", [false], false);
  requireValue(raw, "act_fn", ["silu"], "silu");
  requireValue(raw, "time_embedding_dim", [null], null);

  // diffusers' naming quirk: attention_head_dim holds the number of heads when num_attention_heads is unset.
  const heads = perBlock<number>(raw.num_attention_heads ?? raw.attention_head_dim ?? 8, n, "num_attention_heads");
  const tlpb = perBlock<number>(raw.transformer_layers_per_block ?? 1, n, "transformer_layers_per_block");
  const layersPerBlock = perBlock<number>(raw.layers_per_block ?? 2, n, "layers_per_block");
  let reverse: number[][];
  if (raw.reverse_transformer_layers_per_block) {
    reverse = raw.reverse_transformer_layers_per_block;
    if (reverse.length !== n) throw new ConfigError(`unet config: reverse_transformer_layers_per_block has ${reverse.length} entries for ${n} blocks`);
    reverse.forEach((r, i) => {
      if (!Array.isArray(r) || r.length !== [...layersPerBlock].reverse()[i] + 1) {
        throw new ConfigError(`unet config: reverse_transformer_layers_per_block[${i}] must list ${[...layersPerBlock].reverse()[i] + 1} layer counts`);
      }
    });
  } else {
    const rl = [...layersPerBlock].reverse();
    reverse = [...tlpb].reverse().map((t, i) => Array(rl[i] + 1).fill(t));
  }
  const config: UNetConfig = {
    inChannels: raw.in_channels ?? 4,
    outChannels: raw.out_channels ?? 4,
    blockOutChannels, downBlockTypes, upBlockTypes, midBlockType, layersPerBlock,
    transformerLayersPerBlock: tlpb,
    reverseTransformerLayersPerBlock: reverse,
    midTransformerLayers: tlpb[n - 1],
    numAttentionHeads: heads,
    crossAttentionDim: perBlock<number>(raw.cross_attention_dim ?? 1280, n, "cross_attention_dim"),
    normNumGroups: raw.norm_num_groups ?? 32,
    normEps: raw.norm_eps ?? 1e-5,
    useLinearProjection: raw.use_linear_projection ?? false,
    flipSinToCos: raw.flip_sin_to_cos ?? true,
    freqShift: raw.freq_shift ?? 0,
    additionEmbedType: raw.addition_embed_type ?? null,
    additionTimeEmbedDim: raw.addition_time_embed_dim ?? 256,
    projectionClassEmbeddingsInputDim: raw.projection_class_embeddings_input_dim ?? 0,
    timeCondProjDim: raw.time_cond_proj_dim ?? null,
    sampleSize: raw.sample_size ?? 128,
    actFn: raw.act_fn ?? "silu",
  };
  for (const c of blockOutChannels) {
    if (c % config.normNumGroups !== 0) throw new ConfigError(`unet config: block_out_channels ${c} not divisible by norm_num_groups ${config.normNumGroups}`);
  }
  return config;
}
