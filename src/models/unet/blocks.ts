/** The UNet's blocks live in models/shared (shared with the VAE and ControlNet); the old names stay here. */
export {
  CrossAttnDownBlock2D as DownBlock, CrossAttnUpBlock2D as UpBlock, UNetMidBlock2DCrossAttn as MidBlock, type BlockSettings,
} from "../shared/unet-2d-blocks.js";
