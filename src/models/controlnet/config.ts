/**
 * diffusers ControlNetModel config.json. Its encoder keys (block_out_channels, down blocks,
 * transformer_layers_per_block, attention heads, embeddings, mid block) mean what they mean in a
 * UNet2DConditionModel config, so they are resolved by the UNet's parser; the ControlNet's own keys
 * are read here.
 */
import { withoutDefaultedKeys } from "../config-defaults.js";
import { ConfigError, parseUNetConfig, type UNetConfig } from "../unet/index.js";

export interface ControlNetConfig {
  /** The UNet half the ControlNet copies (its up-block fields are placeholders and unused). */
  encoder: UNetConfig;
  /** Channels of the control image (3). */
  conditioningChannels: number;
  /** ControlNetConditioningEmbedding's conv widths: [16, 32, 96, 256] for SD ControlNets. */
  conditioningEmbeddingOutChannels: number[];
  /** "bgr": the control image's channels are flipped before the embedding (old SD 1.x nets). */
  channelOrder: "rgb" | "bgr";
  /** Residuals are averaged over height and width (shuffle-style nets). */
  globalPoolConditions: boolean;
}

/** Keys only a ControlNetModel has; the rest go to the UNet parser. */
const CONTROLNET_KEYS = [
  "conditioning_channels", "conditioning_embedding_out_channels", "controlnet_conditioning_channel_order",
  "global_pool_conditions", "downsample_padding", "addition_embed_type_num_heads",
];

function fail(msg: string): never { throw new ConfigError(`controlnet config: ${msg}`); }

export function parseControlNetConfig(file: Record<string, any>): ControlNetConfig {
  const raw = withoutDefaultedKeys(file);
  if (raw._class_name !== undefined && raw._class_name !== "ControlNetModel") fail(`_class_name ${raw._class_name} is not ControlNetModel`);
  const unetRaw: Record<string, any> = {};
  for (const [k, v] of Object.entries(raw)) if (!CONTROLNET_KEYS.includes(k) && k !== "_class_name" && k !== "_use_default_values") unetRaw[k] = v;
  // A ControlNet has no up blocks; give the UNet parser a mirror of the down blocks so its count checks hold.
  const downTypes: string[] = raw.down_block_types ?? ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"];
  unetRaw.up_block_types = [...downTypes].reverse().map((t) => (t === "CrossAttnDownBlock2D" ? "CrossAttnUpBlock2D" : "UpBlock2D"));
  unetRaw.down_block_types = downTypes;
  delete unetRaw.reverse_transformer_layers_per_block;
  // ControlNetModel's time embedding has no cond_proj (its __init__ takes no time_cond_proj_dim).
  delete unetRaw.time_cond_proj_dim;
  let encoder: UNetConfig;
  try {
    encoder = parseUNetConfig(unetRaw);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message.replace(/^unet config: /, ""));
    throw e;
  }
  if ((raw.downsample_padding ?? 1) !== 1) fail(`unsupported downsample_padding = ${raw.downsample_padding} (supported: 1)`);
  if (raw.num_class_embeds != null) fail("num_class_embeds is not supported");
  const order = raw.controlnet_conditioning_channel_order ?? "rgb";
  if (order !== "rgb" && order !== "bgr") fail(`controlnet_conditioning_channel_order must be "rgb" or "bgr", got ${JSON.stringify(order)}`);
  const emb: number[] = raw.conditioning_embedding_out_channels ?? [16, 32, 96, 256];
  if (!Array.isArray(emb) || emb.length === 0 || !emb.every((c) => Number.isInteger(c) && c > 0)) fail("conditioning_embedding_out_channels must be a non-empty list of channel counts");
  return {
    encoder,
    conditioningChannels: raw.conditioning_channels ?? 3,
    conditioningEmbeddingOutChannels: emb,
    channelOrder: order,
    globalPoolConditions: raw.global_pool_conditions ?? false,
  };
}

/** Pixels of control image per latent pixel: each embedding stage after the first halves the size. */
export function conditioningDownscale(c: ControlNetConfig): number {
  return 2 ** (c.conditioningEmbeddingOutChannels.length - 1);
}
