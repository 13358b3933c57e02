/** diffusers attention.py / transformer_2d.py as the SDXL UNet uses them (and the coming ControlNet). */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm, LayerNorm, Linear } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { Attention } from "./attention.js";

/** GEGLU feed-forward: proj -> (h, gate) -> h * gelu(gate) -> net.2. */
export class FeedForward {
  private readonly proj: Linear;
  private readonly out: Linear;
  constructor(vb: WeightBuilder, dim: number, mult = 4) {
    const inner = dim * mult;
    this.proj = new Linear(vb.pp("net").pp(0).pp("proj"), dim, inner * 2);
    this.out = new Linear(vb.pp("net").pp(2), inner, dim);
  }
  forward(x: Tensor): Tensor {
    return this.out.forward(F.biasGeglu(F.matmulTransB(x, this.proj.weight), this.proj.bias!));
  }
}

/** A change to some self-attention layers (PAG), chosen by the layer's module name ("...transformer_blocks.0.attn1"). */
export interface SelfAttentionVariant {
  /** The trailing batch rows whose attention map is the identity in this layer (0 or undefined: none). */
  identityRowsOf(name: string): number | undefined;
}

/** BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward, each pre-LayerNorm with a residual. */
export class BasicTransformerBlock {
  private readonly norm1: LayerNorm;
  private readonly attn1: Attention;
  private readonly norm2: LayerNorm;
  private readonly attn2: Attention;
  private readonly norm3: LayerNorm;
  private readonly ff: FeedForward;
  constructor(vb: WeightBuilder, dim: number, heads: number, crossAttentionDim: number, selfAttention?: SelfAttentionVariant) {
    this.norm1 = new LayerNorm(vb.pp("norm1"), dim, 1e-5);
    const attn1 = vb.pp("attn1");
    this.attn1 = new Attention(attn1, dim, { heads, identityRows: selfAttention?.identityRowsOf(attn1.prefix.slice(0, -1)) });
    this.norm2 = new LayerNorm(vb.pp("norm2"), dim, 1e-5);
    this.attn2 = new Attention(vb.pp("attn2"), dim, { contextDim: crossAttentionDim, heads });
    this.norm3 = new LayerNorm(vb.pp("norm3"), dim, 1e-5);
    this.ff = new FeedForward(vb.pp("ff"), dim);
  }
  forward(x: Tensor, context: Tensor): Tensor {
    const [h2, x1] = this.norm2.forwardResidual(this.attn1.forward(this.norm1.forward(x)), x);
    const [h3, x2] = this.norm3.forwardResidual(this.attn2.forward(h2, context), x1);
    // gradient checkpointing may cut here: one [B, tokens, dim] tensor per block
    return x.graph.markSegmentEnd(F.add(this.ff.forward(h3), x2));
  }
}

/** diffusers Transformer2DModel (continuous input): GroupNorm, proj_in, transformer blocks, proj_out, residual. */
export class Transformer2DModel {
  private readonly norm: GroupNorm;
  private readonly projIn: Linear | Conv2d;
  private readonly blocks: BasicTransformerBlock[];
  private readonly projOut: Linear | Conv2d;
  constructor(
    vb: WeightBuilder, channels: number, heads: number, layers: number, crossAttentionDim: number,
    groups: number, private readonly useLinearProjection: boolean, selfAttention?: SelfAttentionVariant,
  ) {
    this.norm = new GroupNorm(vb.pp("norm"), groups, channels, 1e-6);
    this.projIn = useLinearProjection ? new Linear(vb.pp("proj_in"), channels, channels) : new Conv2d(vb.pp("proj_in"), channels, channels, 1);
    this.blocks = Array.from({ length: layers }, (_, i) => new BasicTransformerBlock(vb.pp("transformer_blocks").pp(i), channels, heads, crossAttentionDim, selfAttention));
    this.projOut = useLinearProjection ? new Linear(vb.pp("proj_out"), channels, channels) : new Conv2d(vb.pp("proj_out"), channels, channels, 1);
  }
  forward(x: Tensor, context: Tensor): Tensor {
    const [b, c, h, w] = x.shape;
    const toTokens = (t: Tensor) => F.reshape(F.transpose(t, [0, 2, 3, 1]), [b, h * w, c]);
    let t = this.norm.forward(x);
    t = this.useLinearProjection ? this.projIn.forward(toTokens(t)) : toTokens(this.projIn.forward(t));
    for (const block of this.blocks) t = block.forward(t, context);
    if (this.useLinearProjection) t = this.projOut.forward(t);
    t = F.transpose(F.reshape(t, [b, h, w, c]), [0, 3, 1, 2]);
    if (!this.useLinearProjection) t = this.projOut.forward(t);
    return F.add(t, x);
  }
}
