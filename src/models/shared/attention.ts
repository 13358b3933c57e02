/**
 * diffusers' Attention (attention_processor.py), shared by the UNet's transformer blocks and the
 * VAE's mid block: to_q / to_k / to_v (bias optional), to_out.0, one fused multi-head attention.
 * With `groupNorm` it takes spatial input [B, C, H, W] as the VAE does: group_norm, attention over
 * the H·W tokens, residual_connection (rescale_output_factor 1).
 */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { GroupNorm, Linear } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";

export interface AttentionOptions {
  /** Width of the context (cross_attention_dim); default queryDim (self-attention). */
  contextDim?: number;
  heads: number;
  /** Bias on to_q / to_k / to_v (the VAE has one, the UNet not). */
  bias?: boolean;
  /** norm_num_groups / eps: spatial input with a group_norm and a residual. */
  groupNorm?: { groups: number; eps: number };
  /**
   * Perturbed-attention guidance (diffusers' PAG identity processors): the last `identityRows` rows of
   * the batch take the identity attention map, i.e. to_out(to_v(x)); the others attend as usual.
   * Self-attention only.
   */
  identityRows?: number;
}

export class Attention {
  private readonly groupNorm?: GroupNorm;
  private readonly toQ: Linear;
  private readonly toK: Linear;
  private readonly toV: Linear;
  private readonly toOut: Linear;
  private readonly heads: number;
  private readonly identityRows: number;
  constructor(vb: WeightBuilder, queryDim: number, opts: AttentionOptions) {
    const contextDim = opts.contextDim ?? queryDim, bias = opts.bias ?? false;
    this.heads = opts.heads;
    this.identityRows = opts.identityRows ?? 0;
    if (this.identityRows && (opts.contextDim !== undefined || opts.groupNorm)) throw new Error(`${vb.prefix}: identity rows are for the UNet's self-attention`);
    if (opts.groupNorm) this.groupNorm = new GroupNorm(vb.pp("group_norm"), opts.groupNorm.groups, queryDim, opts.groupNorm.eps);
    this.toQ = new Linear(vb.pp("to_q"), queryDim, queryDim, bias);
    this.toK = new Linear(vb.pp("to_k"), contextDim, queryDim, bias);
    this.toV = new Linear(vb.pp("to_v"), contextDim, queryDim, bias);
    this.toOut = new Linear(vb.pp("to_out").pp(0), queryDim, queryDim);
  }

  /** Tokens [B, S, D] (context [B, T, contextDim], default x), or with `groupNorm` an image [B, C, H, W]. */
  forward(x: Tensor, context: Tensor = x): Tensor {
    if (this.groupNorm) return this.spatial(x, this.groupNorm);
    const n = this.identityRows, b = x.shape[0];
    if (n === 0) return this.toOut.forward(this.attend(x, context));
    if (n > b) throw new Error(`attention: ${n} identity rows in a batch of ${b}`);
    // the attention map of the last n rows is the identity: their output is the value projection
    const ptb = this.toV.forward(F.slice(x, 0, b - n, b));
    if (n === b) return this.toOut.forward(ptb);
    const org = F.slice(x, 0, 0, b - n);
    return this.toOut.forward(F.concat([this.attend(org, org), ptb], 0));
  }

  private attend(x: Tensor, context: Tensor): Tensor {
    return F.multiHeadAttention(this.toQ.forward(x), this.toK.forward(context), this.toV.forward(context), this.heads);
  }

  private spatial(x: Tensor, norm: GroupNorm): Tensor {
    const [b, c, h, w] = x.shape;
    const tokens = F.transpose(F.reshape(norm.forward(x), [b, c, h * w]), [0, 2, 1]); // [B,HW,C]
    const y = F.reshape(F.transpose(this.toOut.forward(this.attend(tokens, tokens)), [0, 2, 1]), [b, c, h, w]);
    return F.add(y, x);
  }
}
