import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm, Linear } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";

/** diffusers ResnetBlock2D with a time embedding (scale-shift "default", output scale 1). */
export class ResnetBlock2D {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly timeEmbProj: Linear;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly convShortcut?: Conv2d;

  constructor(vb: WeightBuilder, inChannels: number, outChannels: number, tembChannels: number, groups: number, eps: number) {
    this.norm1 = new GroupNorm(vb.pp("norm1"), groups, inChannels, eps);
    this.conv1 = new Conv2d(vb.pp("conv1"), inChannels, outChannels, 3, { padding: 1 });
    this.timeEmbProj = new Linear(vb.pp("time_emb_proj"), tembChannels, outChannels);
    this.norm2 = new GroupNorm(vb.pp("norm2"), groups, outChannels, eps);
    this.conv2 = new Conv2d(vb.pp("conv2"), outChannels, outChannels, 3, { padding: 1 });
    if (inChannels !== outChannels) this.convShortcut = new Conv2d(vb.pp("conv_shortcut"), inChannels, outChannels, 1);
  }

  forward(x: Tensor, temb: Tensor): Tensor {
    let h = this.conv1.forward(F.silu(this.norm1.forward(x)));
    const t = this.timeEmbProj.forward(F.silu(temb));
    h = F.add(h, F.reshape(t, [t.shape[0], t.shape[1], 1, 1]));
    h = this.conv2.forward(F.silu(this.norm2.forward(h)));
    return F.add(this.convShortcut ? this.convShortcut.forward(x) : x, h);
  }
}

export class Downsample2D {
  private readonly conv: Conv2d;
  constructor(vb: WeightBuilder, channels: number) {
    this.conv = new Conv2d(vb.pp("conv"), channels, channels, 3, { stride: 2, padding: 1 });
  }
  forward(x: Tensor): Tensor { return this.conv.forward(x); }
}

export class Upsample2D {
  private readonly conv: Conv2d;
  constructor(vb: WeightBuilder, channels: number) {
    this.conv = new Conv2d(vb.pp("conv"), channels, channels, 3, { padding: 1 });
  }
  /** `size` is the skip state's spatial size when it is not exactly twice the input (odd latent sizes). */
  forward(x: Tensor, size?: [number, number]): Tensor { return this.conv.forward(F.upsampleNearest(x, size)); }
}
