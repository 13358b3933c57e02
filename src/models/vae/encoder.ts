/** diffusers vae.Encoder (double_z) followed by AutoencoderKL's quant_conv and the posterior split. */
import * as F from "../../ir/functional.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { type VaeConfig, vaeDownscale } from "./config.js";
import { Downsample2D, ResnetBlock2D, VAE_EPS, VaeMidBlock } from "./resnet.js";

export class VaeEncoder {
  private readonly convIn: Conv2d;
  private readonly blocks: { resnets: ResnetBlock2D[]; down?: Downsample2D }[] = [];
  private readonly mid: VaeMidBlock;
  private readonly normOut: GroupNorm;
  private readonly convOut: Conv2d;
  constructor(vb: WeightBuilder, cfg: VaeConfig) {
    const boc = cfg.blockOutChannels, g = cfg.normNumGroups;
    this.convIn = new Conv2d(vb.pp("conv_in"), cfg.inChannels, boc[0], 3, { padding: 1 });
    let ch = boc[0];
    boc.forEach((out, i) => {
      const bv = vb.pp("down_blocks").pp(i);
      const resnets = Array.from({ length: cfg.layersPerBlock }, (_, j) =>
        new ResnetBlock2D(bv.pp("resnets").pp(j), j === 0 ? ch : out, out, g, cfg.actFn));
      const down = i < boc.length - 1 ? new Downsample2D(bv.pp("downsamplers").pp(0), out) : undefined;
      this.blocks.push({ resnets, down });
      ch = out;
    });
    this.mid = new VaeMidBlock(vb.pp("mid_block"), ch, g, cfg.actFn, cfg.midBlockAddAttention);
    this.normOut = new GroupNorm(vb.pp("conv_norm_out"), g, ch, VAE_EPS);
    this.convOut = new Conv2d(vb.pp("conv_out"), ch, 2 * cfg.latentChannels, 3, { padding: 1 });
  }
  forward(x: Tensor): Tensor {
    let h = this.convIn.forward(x);
    for (const b of this.blocks) {
      for (const r of b.resnets) h = r.forward(h);
      if (b.down) h = b.down.forward(h);
    }
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
  return { image, mean, logvar: F.clamp(rawLogvar, -30, 20) };
}
