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

/** DownEncoderBlock2D: resnets, then a downsampler padded right and bottom (downsample_padding 0). */
export class DownEncoderBlock2D {
  private readonly resnets: ResnetBlock2D[];
  private readonly downsampler?: Downsample2D;
  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, addDownsample: boolean, s: AutoencoderBlockSettings) {
    this.resnets = resnets(vb, inChannels, outChannels, layers, s);
    if (addDownsample) this.downsampler = new Downsample2D(vb.pp("downsamplers").pp(0), outChannels, 0);
  }
  forward(x: Tensor): Tensor {
    for (const r of this.resnets) x = r.forward(x);
    return this.downsampler ? this.downsampler.forward(x) : x;
  }
}

/** UpDecoderBlock2D: resnets, then a 2x upsampler. */
export class UpDecoderBlock2D {
  private readonly resnets: ResnetBlock2D[];
  private readonly upsampler?: Upsample2D;
  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, addUpsample: boolean, s: AutoencoderBlockSettings) {
    this.resnets = resnets(vb, inChannels, outChannels, layers, s);
    if (addUpsample) this.upsampler = new Upsample2D(vb.pp("upsamplers").pp(0), outChannels);
  }
  forward(x: Tensor): Tensor {
    for (const r of this.resnets) x = r.forward(x);
    return this.upsampler ? this.upsampler.forward(x) : x;
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
