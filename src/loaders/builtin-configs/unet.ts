/** UNet2DConditionModel configs of the SDXL family, as published with each model (unet/config.json). */
// Generated from the reference configs in shared/fixtures (configs/{sdxl,ssd-1b,vega}/unet_config.json); edit only to track upstream.

/** stabilityai/stable-diffusion-xl-base-1.0. */
export const SDXL_UNET: Readonly<Record<string, unknown>> = {
  "_class_name": "UNet2DConditionModel",
  "act_fn": "silu",
  "addition_embed_type": "text_time",
  "addition_time_embed_dim": 256,
  "attention_head_dim": [
    5,
    10,
    20
  ],
  "block_out_channels": [
    320,
    640,
    1280
  ],
  "center_input_sample": false,
  "cross_attention_dim": 2048,
  "down_block_types": [
    "DownBlock2D",
    "CrossAttnDownBlock2D",
    "CrossAttnDownBlock2D"
  ],
  "downsample_padding": 1,
  "flip_sin_to_cos": true,
  "freq_shift": 0,
  "in_channels": 4,
  "layers_per_block": 2,
  "mid_block_scale_factor": 1,
  "mid_block_type": "UNetMidBlock2DCrossAttn",
  "norm_eps": 1e-05,
  "norm_num_groups": 32,
  "out_channels": 4,
  "projection_class_embeddings_input_dim": 2816,
  "sample_size": 128,
  "transformer_layers_per_block": [
    1,
    2,
    10
  ],
  "up_block_types": [
    "CrossAttnUpBlock2D",
    "CrossAttnUpBlock2D",
    "UpBlock2D"
  ],
  "upcast_attention": false,
  "use_linear_projection": true
};

/**
 * segmind/SSD-1B: SDXL with layers removed — fewer transformer blocks per level (asymmetric between the
 * down and up paths) and a mid block that is a single resnet.
 */
export const SSD1B_UNET: Readonly<Record<string, unknown>> = {
  ...SDXL_UNET,
  "mid_block_type": "UNetMidBlock2D",
  "reverse_transformer_layers_per_block": [[4, 4, 10], [2, 1, 1], [1, 1, 1]],
  "transformer_layers_per_block": [1, 2, 4],
};

/** segmind/Segmind-Vega: SSD-1B's recipe taken further. */
export const VEGA_UNET: Readonly<Record<string, unknown>> = {
  ...SDXL_UNET,
  "mid_block_type": "UNetMidBlock2D",
  "reverse_transformer_layers_per_block": [[2, 2, 2], [1, 1, 1], [1, 1, 1]],
  "transformer_layers_per_block": [1, 1, 2],
};

/**
 * stabilityai/stable-diffusion-xl-refiner-1.0 (sd_xl_refiner.yaml: 384 base channels x [1, 2, 4, 4], attention
 * with 4 transformer blocks at the two middle levels and in the mid block, 64-channel heads, CLIP-G's
 * 1280-wide context, 2560 = 1280 + 5 time ids x 256 added embedding).
 */
export const SDXL_REFINER_UNET: Readonly<Record<string, unknown>> = {
  ...SDXL_UNET,
  "attention_head_dim": [6, 12, 24, 24],
  "block_out_channels": [384, 768, 1536, 1536],
  "cross_attention_dim": 1280,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "projection_class_embeddings_input_dim": 2560,
  "transformer_layers_per_block": 4,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
};
