/** The SDXL AutoencoderKL config (vae/config.json), shared by SDXL, SSD-1B and Vega. */
// Generated from the reference configs in shared/fixtures (configs/sdxl-vae.json); edit only to track upstream.

export const SDXL_VAE: Readonly<Record<string, unknown>> = {
  "_class_name": "AutoencoderKL",
  "act_fn": "silu",
  "block_out_channels": [
    128,
    256,
    512,
    512
  ],
  "down_block_types": [
    "DownEncoderBlock2D",
    "DownEncoderBlock2D",
    "DownEncoderBlock2D",
    "DownEncoderBlock2D"
  ],
  "force_upcast": true,
  "in_channels": 3,
  "latent_channels": 4,
  "layers_per_block": 2,
  "norm_num_groups": 32,
  "out_channels": 3,
  "sample_size": 1024,
  "scaling_factor": 0.13025,
  "up_block_types": [
    "UpDecoderBlock2D",
    "UpDecoderBlock2D",
    "UpDecoderBlock2D",
    "UpDecoderBlock2D"
  ]
};
