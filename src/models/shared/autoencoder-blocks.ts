/**
 * diffusers unet_2d_blocks.py, the blocks without a time embedding that the VAE (AutoencoderKL)
 * builds: DownEncoderBlock2D, UpDecoderBlock2D and UNetMidBlock2D (resnet, attention, resnet).
 */
import type { Tensor } from "../../ir/tensor.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { Attention } from "./attention.js";
import { Downsample2D, ResnetBlock2D, Upsample2D } from "./resnet.js";

/** What every block of one autoencoder shares: resnet_groups, resnet_act_fn, resnet_eps. */
export interface AutoencoderBlockSettings {
  groups: number;
  act: string;
  eps: number;
}

function resnets(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, s: AutoencoderBlockSettings): ResnetBlock2D[] {
  return Array.from({ length: layers }, (_, j) =>
    new ResnetBlock2D(vb.pp("resnets").pp(j), j === 0 ? inChannels : outChannels, outChannels, null, s.groups, s.eps, s.act));
}

/** Resnets, then a resampler or none: all that DownEncoderBlock2D and UpDecoderBlock2D do. */
class ResnetsThenResample {
  constructor(private readonly resnets: ResnetBlock2D[], private readonly resample?: Downsample2D | Upsample2D) {}
  forward(x: Tensor): Tensor {
    for (const r of this.resnets) x = r.forward(x);
    return this.resample ? this.resample.forward(x) : x;
  }
}

/** DownEncoderBlock2D: resnets, then a downsampler padded right and bottom (downsample_padding 0). */
export class DownEncoderBlock2D extends ResnetsThenResample {
  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, addDownsample: boolean, s: AutoencoderBlockSettings) {
    super(resnets(vb, inChannels, outChannels, layers, s), addDownsample ? new Downsample2D(vb.pp("downsamplers").pp(0), outChannels, 0) : undefined);
  }
}

/** UpDecoderBlock2D: resnets, then a 2x upsampler. */
export class UpDecoderBlock2D extends ResnetsThenResample {
  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, addUpsample: boolean, s: AutoencoderBlockSettings) {
    super(resnets(vb, inChannels, outChannels, layers, s), addUpsample ? new Upsample2D(vb.pp("upsamplers").pp(0), outChannels) : undefined);
  }
}

/** UNetMidBlock2D (one layer) as the VAE uses it: resnet, (attention with one head of size C), resnet. */
export class UNetMidBlock2D {
  private readonly resnets: ResnetBlock2D[];
  private readonly attn?: Attention;
  constructor(vb: WeightBuilder, channels: number, addAttention: boolean, s: AutoencoderBlockSettings) {
    this.resnets = [0, 1].map((i) => new ResnetBlock2D(vb.pp("resnets").pp(i), channels, channels, null, s.groups, s.eps, s.act));
    if (addAttention) this.attn = new Attention(vb.pp("attentions").pp(0), channels, { heads: 1, bias: true, groupNorm: { groups: s.groups, eps: s.eps } });
  }
  forward(x: Tensor): Tensor {
    let h = this.resnets[0].forward(x);
    if (this.attn) h = this.attn.forward(h);
    return this.resnets[1].forward(h);
  }
}
