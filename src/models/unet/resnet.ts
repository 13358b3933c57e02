/** ResnetBlock2D, Downsample2D and Upsample2D live in models/shared (shared with the VAE); the old path stays here. */
export { Downsample2D, ResnetBlock2D, Upsample2D } from "../shared/resnet.js";
