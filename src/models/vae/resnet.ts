/**
 * The VAE's building blocks from diffusers (resnet.py, downsampling.py, upsampling.py,
 * attention_processor.py), without time embedding: ResnetBlock2D, Downsample2D, Upsample2D and the
 * mid-block self-attention (group_norm, one head of size C, residual).
 */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm, Linear, activation } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";

/** The eps diffusers passes to every VAE norm. */
export const VAE_EPS = 1e-6;

export class ResnetBlock2D {
  private readonly norm1: GroupNorm;
  private readonly conv1: Conv2d;
  private readonly norm2: GroupNorm;
  private readonly conv2: Conv2d;
  private readonly shortcut?: Conv2d;
  private readonly act: (x: Tensor) => Tensor;
  constructor(vb: WeightBuilder, inCh: number, outCh: number, groups: number, act: string, eps = VAE_EPS) {
    this.norm1 = new GroupNorm(vb.pp("norm1"), groups, inCh, eps);
    this.conv1 = new Conv2d(vb.pp("conv1"), inCh, outCh, 3, { padding: 1 });
    this.norm2 = new GroupNorm(vb.pp("norm2"), groups, outCh, eps);
    this.conv2 = new Conv2d(vb.pp("conv2"), outCh, outCh, 3, { padding: 1 });
    if (inCh !== outCh) this.shortcut = new Conv2d(vb.pp("conv_shortcut"), inCh, outCh, 1);
    this.act = activation(act);
  }
  forward(x: Tensor): Tensor {
    let h = this.conv1.forward(this.act(this.norm1.forward(x)));
    h = this.conv2.forward(this.act(this.norm2.forward(h)));
    return F.add(this.shortcut ? this.shortcut.forward(x) : x, h); // output_scale_factor 1
  }
}

/** Downsample2D(use_conv, padding=0): pad right and bottom by one, 3x3 conv with stride 2. */
export class Downsample2D {
  private readonly conv: Conv2d;
  constructor(vb: WeightBuilder, ch: number) {
    this.conv = new Conv2d(vb.pp("conv"), ch, ch, 3, { stride: 2, padding: [0, 0, 1, 1] });
  }
  forward(x: Tensor): Tensor { return this.conv.forward(x); }
}

/** Upsample2D(use_conv): nearest 2x, then a 3x3 conv. */
export class Upsample2D {
  private readonly conv: Conv2d;
  constructor(vb: WeightBuilder, ch: number) {
    this.conv = new Conv2d(vb.pp("conv"), ch, ch, 3, { padding: 1 });
  }
  forward(x: Tensor): Tensor { return this.conv.forward(F.upsampleNearest(x, [2 * x.shape[2], 2 * x.shape[3]])); }
}

/** diffusers Attention as the VAE mid block builds it: group_norm, to_q/k/v/out.0 with bias, one head, residual. */
export class VaeAttention {
  private readonly norm: GroupNorm;
  private readonly q: Linear;
  private readonly k: Linear;
  private readonly v: Linear;
  private readonly out: Linear;
  constructor(vb: WeightBuilder, private readonly ch: number, groups: number, eps = VAE_EPS) {
    this.norm = new GroupNorm(vb.pp("group_norm"), groups, ch, eps);
    this.q = new Linear(vb.pp("to_q"), ch, ch);
    this.k = new Linear(vb.pp("to_k"), ch, ch);
    this.v = new Linear(vb.pp("to_v"), ch, ch);
    this.out = new Linear(vb.pp("to_out").pp(0), ch, ch);
  }
  forward(x: Tensor): Tensor {
    const [b, c, h, w] = x.shape;
    const tokens = F.transpose(F.reshape(this.norm.forward(x), [b, c, h * w]), [0, 2, 1]); // [B,HW,C]
    const a = F.multiHeadAttention(this.q.forward(tokens), this.k.forward(tokens), this.v.forward(tokens), 1);
    const y = F.reshape(F.transpose(this.out.forward(a), [0, 2, 1]), [b, c, h, w]);
    return F.add(y, x); // residual_connection, rescale_output_factor 1
  }
}

/** UNetMidBlock2D as the VAE uses it: resnet, (attention, resnet). */
export class VaeMidBlock {
  private readonly resnets: ResnetBlock2D[];
  private readonly attn?: VaeAttention;
  constructor(vb: WeightBuilder, ch: number, groups: number, act: string, addAttention: boolean) {
    this.resnets = [0, 1].map((i) => new ResnetBlock2D(vb.pp("resnets").pp(i), ch, ch, groups, act));
    if (addAttention) this.attn = new VaeAttention(vb.pp("attentions").pp(0), ch, groups);
  }
  forward(x: Tensor): Tensor {
    let h = this.resnets[0].forward(x);
    if (this.attn) h = this.attn.forward(h);
    return this.resnets[1].forward(h);
  }
}
