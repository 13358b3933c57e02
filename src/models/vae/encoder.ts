/** diffusers vae.Encoder (double_z) followed by AutoencoderKL's quant_conv and the posterior split. */
import * as F from "../../ir/functional.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { DownEncoderBlock2D, UNetMidBlock2D } from "../shared/autoencoder-blocks.js";
import { type VaeConfig, VAE_EPS, vaeDownscale } from "./config.js";

export class VaeEncoder {
  private readonly convIn: Conv2d;
  private readonly blocks: DownEncoderBlock2D[] = [];
  private readonly mid: UNetMidBlock2D;
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  constructor(vb: WeightBuilder, cfg: VaeConfig) {
    const boc = cfg.blockOutChannels, g = cfg.normNumGroups;
    const s = { groups: g, act: cfg.actFn, eps: VAE_EPS };
    this.convIn = new Conv2d(vb.pp("conv_in"), cfg.inChannels, boc[0], 3, { padding: 1 });
    let ch = boc[0];
    boc.forEach((out, i) => {
      this.blocks.push(new DownEncoderBlock2D(vb.pp("down_blocks").pp(i), ch, out, cfg.layersPerBlock, i < boc.length - 1, s));
      ch = out;
    });
    this.mid = new UNetMidBlock2D(vb.pp("mid_block"), ch, cfg.midBlockAddAttention, s);
    this.normOut = new GroupNorm(vb.pp("conv_norm_out"), g, ch, VAE_EPS);
    this.convOut = new Conv2d(vb.pp("conv_out"), ch, 2 * cfg.latentChannels, 3, { padding: 1 });
  }
  forward(x: Tensor): Tensor {
    let h = this.convIn.forward(x);
    for (const b of this.blocks) h = b.forward(h);
    h = this.mid.forward(h);
    return this.convOut.forward(F.silu(this.normOut.forward(h))); // conv_act is always SiLU
  }
}

export interface VaeEncoderOutputs {
  /** float32 [B, in_channels, H, W] graph input named "image", values in [-1, 1]. */
  image: Tensor;
  /** [B, latent_channels, H/f, W/f]: the posterior mean. */
  mean: Tensor;
  /** [B, latent_channels, H/f, W/f]: the posterior log-variance, clamped to [-30, 20]. */
  logvar: Tensor;
  /** The log-variance before the clamp: what diffusers' tiled encode blends (the clamp comes after). */
  rawLogvar: Tensor;
}

/** AutoencoderKL.encode: encoder, quant_conv, chunk into mean / logvar, clamp logvar. `vb` is the VAE root. */
export function buildVaeEncoder(vb: WeightBuilder, cfg: VaeConfig, imageShape: readonly number[]): VaeEncoderOutputs {
  const f = vaeDownscale(cfg);
  if (imageShape.length !== 4 || imageShape[1] !== cfg.inChannels || imageShape[2] % f !== 0 || imageShape[3] % f !== 0) {
    throw new ShapeError(`VAE encoder: image shape [${imageShape}] must be [B, ${cfg.inChannels}, H, W] with H and W multiples of ${f}`);
  }
  const encoder = new VaeEncoder(vb.pp("encoder"), cfg);
  const lc = cfg.latentChannels;
  const quant = cfg.useQuantConv ? new Conv2d(vb.pp("quant_conv"), 2 * lc, 2 * lc, 1) : undefined;
  const image = vb.graph.input("image", imageShape);
  let moments = encoder.forward(image);
  if (quant) moments = quant.forward(moments);
  const [mean, rawLogvar] = F.chunk(moments, 2, 1);
  return { image, mean, logvar: F.clamp(rawLogvar, -30, 20), rawLogvar };
}
