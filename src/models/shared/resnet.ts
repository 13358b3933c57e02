/**
 * diffusers' resnet.py, downsampling.py and upsampling.py blocks, shared by the UNet and the VAE
 * (and the coming ControlNet): ResnetBlock2D (with or without a time embedding), Downsample2D and
 * Upsample2D. Each builds exactly the graph its old per-model copy built.
 */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm, Linear, activation } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";

/**
 * ResnetBlock2D (time_embedding_norm "default", output_scale_factor 1). `tembChannels` null: no
 * `time_emb_proj` (temb_channels=None, the VAE's blocks).
 */
export class ResnetBlock2D {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly timeEmbProj?: Linear;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly convShortcut?: Conv2d;
  private readonly act: (x: Tensor) => Tensor;

  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, tembChannels: number | null, groups: number, eps: number, act = "silu") {
    this.norm1 = new GroupNorm(vb.pp("norm1"), groups, inChannels, eps);
    this.conv1 = new Conv2d(vb.pp("conv1"), inChannels, outChannels, 3, { padding: 1 });
    if (tembChannels !== null) this.timeEmbProj = new Linear(vb.pp("time_emb_proj"), tembChannels, outChannels);
    this.norm2 = new GroupNorm(vb.pp("norm2"), groups, outChannels, eps);
    this.conv2 = new Conv2d(vb.pp("conv2"), outChannels, outChannels, 3, { padding: 1 });
    if (inChannels !== outChannels) this.convShortcut = new Conv2d(vb.pp("conv_shortcut"), inChannels, outChannels, 1);
    this.act = activation(act);
  }

  forward(x: Tensor, temb?: Tensor): Tensor {
    let h = this.conv1.forward(this.act(this.norm1.forward(x)));
    if (this.timeEmbProj) {
      if (!temb) throw new Error("ResnetBlock2D: this block has time_emb_proj and needs a time embedding");
      const t = this.timeEmbProj.forward(this.act(temb));
      h = F.add(h, F.reshape(t, [t.shape[0], t.shape[1], 1, 1]));
    }
    h = this.conv2.forward(this.act(this.norm2.forward(h)));
    return F.add(this.convShortcut ? this.convShortcut.forward(x) : x, h);
  }
}

/**
 * Downsample2D(use_conv): a 3x3 conv with stride 2. `padding` 1 pads every side (the UNet);
 * padding 0 pads right and bottom by one first, as diffusers does (the VAE).
 */
export class Downsample2D {
  private readonly conv: Conv2d;
  constructor(vb: WeightBuilder, channels: number, padding: 0 | 1 = 1) {
    this.conv = new Conv2d(vb.pp("conv"), channels, channels, 3, { stride: 2, padding: padding === 1 ? 1 : [0, 0, 1, 1] });
  }
  forward(x: Tensor): Tensor { return this.conv.forward(x); }
}

/** Upsample2D(use_conv): nearest upsampling, then a 3x3 conv. */
export class Upsample2D {
  private readonly conv: Conv2d;
  constructor(vb: WeightBuilder, channels: number) {
    this.conv = new Conv2d(vb.pp("conv"), channels, channels, 3, { padding: 1 });
  }
  /** `size` is the skip state's spatial size when it is not exactly twice the input (odd latent sizes); default 2x. */
  forward(x: Tensor, size?: [number, number]): Tensor { return this.conv.forward(F.upsampleNearest(x, size)); }
}
