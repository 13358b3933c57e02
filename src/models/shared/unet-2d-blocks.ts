/**
 * diffusers unet_2d_blocks.py, the blocks with a time embedding (UNet, and the coming ControlNet):
 * CrossAttnDownBlock2D / DownBlock2D, CrossAttnUpBlock2D / UpBlock2D, UNetMidBlock2DCrossAttn. The
 * plain blocks are the cross-attention ones without transformers: one loop, one graph for both.
 */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { Downsample2D, ResnetBlock2D, Upsample2D } from "./resnet.js";
import { Transformer2DModel, type SelfAttentionVariant } from "./transformer-2d.js";

export interface BlockSettings {
  tembChannels: number;
  groups: number;
  eps: number;
  heads: number;
  crossAttentionDim: number;
  useLinearProjection: boolean;
  /** Self-attention layers changed by name (PAG). */
  selfAttention?: SelfAttentionVariant;
}

const transformer = (vb: WeightBuilder, channels: number, layers: number, s: BlockSettings) =>
  new Transformer2DModel(vb, channels, s.heads, layers, s.crossAttentionDim, s.groups, s.useLinearProjection, s.selfAttention);

/** CrossAttnDownBlock2D: resnets each followed by a transformer (none when `transformerLayers` is null), then a downsampler. */
export class CrossAttnDownBlock2D {
  private readonly resnets: ResnetBlock2D[] = [];
  private readonly attentions: Transformer2DModel[] = [];
  private readonly downsampler?: Downsample2D;
  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, transformerLayers: number | null, addDownsample: boolean, s: BlockSettings) {
    for (let i = 0; i < layers; i++) {
      this.resnets.push(new ResnetBlock2D(vb.pp("resnets").pp(i), i === 0 ? inChannels : outChannels, outChannels, s.tembChannels, s.groups, s.eps));
      if (transformerLayers !== null) this.attentions.push(transformer(vb.pp("attentions").pp(i), outChannels, transformerLayers, s));
    }
    if (addDownsample) this.downsampler = new Downsample2D(vb.pp("downsamplers").pp(0), outChannels);
  }
  /** Returns the block output and the skip states it contributes. */
  forward(x: Tensor, temb: Tensor, context: Tensor): { out: Tensor; skips: Tensor[] } {
    const skips: Tensor[] = [];
    this.resnets.forEach((resnet, i) => {
      x = resnet.forward(x, temb);
      if (this.attentions[i]) x = this.attentions[i].forward(x, context);
      skips.push(x);
    });
    if (this.downsampler) { x = this.downsampler.forward(x); skips.push(x); }
    return { out: x, skips };
  }
}

/** DownBlock2D: resnets, then a downsampler. */
export class DownBlock2D extends CrossAttnDownBlock2D {
  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, layers: number, addDownsample: boolean, s: BlockSettings) {
    super(vb, inChannels, outChannels, layers, null, addDownsample, s);
  }
}

/** CrossAttnUpBlock2D: each resnet eats one skip state; `transformerLayers[i]` per attention (SSD-1B varies it), null for none. */
export class CrossAttnUpBlock2D {
  private readonly resnets: ResnetBlock2D[] = [];
  private readonly attentions: Transformer2DModel[] = [];
  private readonly upsampler?: Upsample2D;
  constructor(
    vb: WeightBuilder, inChannels: number, prevOutputChannels: number, outChannels: number, layers: number,
    transformerLayers: number[] | null, addUpsample: boolean, s: BlockSettings,
  ) {
    for (let i = 0; i < layers; i++) {
      const skipChannels = i === layers - 1 ? inChannels : outChannels;
      const resnetIn = i === 0 ? prevOutputChannels : outChannels;
      this.resnets.push(new ResnetBlock2D(vb.pp("resnets").pp(i), resnetIn + skipChannels, outChannels, s.tembChannels, s.groups, s.eps));
      if (transformerLayers) this.attentions.push(transformer(vb.pp("attentions").pp(i), outChannels, transformerLayers[i], s));
    }
    if (addUpsample) this.upsampler = new Upsample2D(vb.pp("upsamplers").pp(0), outChannels);
  }
  /** Consumes skip states from the end of `skips`; `beforeConcat` may change resnet i's input and skip state (FreeU). */
  forward(x: Tensor, skips: Tensor[], temb: Tensor, context: Tensor, upsampleSize?: [number, number], beforeConcat?: (i: number, x: Tensor, skip: Tensor) => [Tensor, Tensor]): Tensor {
    this.resnets.forEach((resnet, i) => {
      let skip = skips.pop()!;
      if (beforeConcat) [x, skip] = beforeConcat(i, x, skip);
      x = resnet.forward(F.concat([x, skip], 1), temb);
      if (this.attentions[i]) x = this.attentions[i].forward(x, context);
    });
    return this.upsampler ? this.upsampler.forward(x, upsampleSize) : x;
  }
}

/** UpBlock2D: resnets eating skip states, then an upsampler. */
export class UpBlock2D extends CrossAttnUpBlock2D {
  constructor(vb: WeightBuilder, inChannels: number, prevOutputChannels: number, outChannels: number, layers: number, addUpsample: boolean, s: BlockSettings) {
    super(vb, inChannels, prevOutputChannels, outChannels, layers, null, addUpsample, s);
  }
}

/** UNetMidBlock2DCrossAttn (resnet, then transformer+resnet) or, with `transformerLayers` null, SSD-1B's mid block (a single resnet). */
export class UNetMidBlock2DCrossAttn {
  private readonly resnets: ResnetBlock2D[] = [];
  private readonly attentions: Transformer2DModel[] = [];
  constructor(vb: WeightBuilder, channels: number, transformerLayers: number | null, s: BlockSettings) {
    this.resnets.push(new ResnetBlock2D(vb.pp("resnets").pp(0), channels, channels, s.tembChannels, s.groups, s.eps));
    if (transformerLayers !== null) {
      this.attentions.push(transformer(vb.pp("attentions").pp(0), channels, transformerLayers, s));
      this.resnets.push(new ResnetBlock2D(vb.pp("resnets").pp(1), channels, channels, s.tembChannels, s.groups, s.eps));
    }
  }
  forward(x: Tensor, temb: Tensor, context: Tensor): Tensor {
    x = this.resnets[0].forward(x, temb);
    this.attentions.forEach((attn, i) => { x = this.resnets[i + 1].forward(attn.forward(x, context), temb); });
    return x;
  }
}
