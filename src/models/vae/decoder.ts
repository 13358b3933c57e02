/** AutoencoderKL's post_quant_conv followed by diffusers vae.Decoder (group norm). */
import * as F from "../../ir/functional.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { UNetMidBlock2D, UpDecoderBlock2D } from "../shared/autoencoder-blocks.js";
import { type VaeConfig, VAE_EPS } from "./config.js";

export class VaeDecoder {
  private readonly convIn: Conv2d;
  private readonly mid: UNetMidBlock2D;
  private readonly blocks: UpDecoderBlock2D[] = [];
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  constructor(vb: WeightBuilder, cfg: VaeConfig) {
    const rev = [...cfg.blockOutChannels].reverse(), g = cfg.normNumGroups;
    const s = { groups: g, act: cfg.actFn, eps: VAE_EPS };
    this.convIn = new Conv2d(vb.pp("conv_in"), cfg.latentChannels, rev[0], 3, { padding: 1 });
    this.mid = new UNetMidBlock2D(vb.pp("mid_block"), rev[0], cfg.midBlockAddAttention, s);
    let ch = rev[0];
    rev.forEach((out, i) => {
      this.blocks.push(new UpDecoderBlock2D(vb.pp("up_blocks").pp(i), ch, out, cfg.layersPerBlock + 1, i < rev.length - 1, s));
      ch = out;
    });
    this.normOut = new GroupNorm(vb.pp("conv_norm_out"), g, ch, VAE_EPS);
    this.convOut = new Conv2d(vb.pp("conv_out"), ch, cfg.outChannels, 3, { padding: 1 });
  }
  forward(z: Tensor): Tensor {
    let h = this.mid.forward(this.convIn.forward(z));
    for (const b of this.blocks) h = b.forward(h);
    return this.convOut.forward(F.silu(this.normOut.forward(h))); // conv_act is always SiLU
  }
}

export interface VaeDecoderOutputs {
  /** float32 [B, latent_channels, h, w] graph input named "latent" (already divided by scaling_factor). */
  latent: Tensor;
  /** [B, out_channels, h·f, w·f], nominally in [-1, 1]. */
  decoded: Tensor;
}

/** AutoencoderKL.decode (no tiling/slicing): post_quant_conv then the decoder. `vb` is the VAE root. */
export function buildVaeDecoder(vb: WeightBuilder, cfg: VaeConfig, latentShape: readonly number[]): VaeDecoderOutputs {
  if (latentShape.length !== 4 || latentShape[1] !== cfg.latentChannels) {
    throw new ShapeError(`VAE decoder: latent shape [${latentShape}] must be [B, ${cfg.latentChannels}, h, w]`);
  }
  const lc = cfg.latentChannels;
  const postQuant = cfg.usePostQuantConv ? new Conv2d(vb.pp("post_quant_conv"), lc, lc, 1) : undefined;
  const decoder = new VaeDecoder(vb.pp("decoder"), cfg);
  const latent = vb.graph.input("latent", latentShape);
  const decoded = decoder.forward(postQuant ? postQuant.forward(latent) : latent);
  return { latent, decoded };
}
