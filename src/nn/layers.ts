/** The basic layers, named and shaped like torch.nn so checkpoint keys match. */
import * as F from "../ir/functional.js";
import type { Tensor } from "../ir/tensor.js";
import type { WeightBuilder } from "./weights.js";

export class Linear {
  readonly weight: Tensor;
  readonly bias?: Tensor;
  constructor(vb: WeightBuilder, readonly inFeatures: number, readonly outFeatures: number, bias = true) {
    this.weight = vb.get("weight", [outFeatures, inFeatures]);
    if (bias) this.bias = vb.get("bias", [outFeatures]);
  }
  forward(x: Tensor): Tensor {
    const y = F.matmulTransB(x, this.weight);
    return this.bias ? F.add(y, this.bias) : y;
  }
}

export class Conv2d {
  readonly weight: Tensor;
  readonly bias?: Tensor;
  constructor(
    vb: WeightBuilder, inChannels: number, outChannels: number, kernel: number,
    readonly opts: { stride?: number; padding?: number | [number, number, number, number]; bias?: boolean } = {},
  ) {
    this.weight = vb.get("weight", [outChannels, inChannels, kernel, kernel]);
    if (opts.bias !== false) this.bias = vb.get("bias", [outChannels]);
  }
  forward(x: Tensor): Tensor {
    const p = this.opts.padding ?? 0;
    return F.conv2d(x, this.weight, this.bias, { stride: this.opts.stride ?? 1, pads: typeof p === "number" ? [p, p, p, p] : p });
  }
}

export class GroupNorm {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(vb: WeightBuilder, readonly groups: number, channels: number, readonly eps: number) {
    this.weight = vb.get("weight", [channels]);
    this.bias = vb.get("bias", [channels]);
  }
  forward(x: Tensor): Tensor { return F.groupNorm(x, this.weight, this.bias, this.groups, this.eps); }
}

export class LayerNorm {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(vb: WeightBuilder, dim: number, readonly eps: number) {
    this.weight = vb.get("weight", [dim]);
    this.bias = vb.get("bias", [dim]);
  }
  forward(x: Tensor): Tensor { return F.layerNorm(x, this.weight, this.bias, this.eps); }
  /** [this(x + skip), x + skip]: a residual sum and this norm of it, one op (F.addLayerNorm). */
  forwardResidual(x: Tensor, skip: Tensor): [Tensor, Tensor] { return F.addLayerNorm(x, skip, this.weight, this.bias, this.eps); }
}

export class Embedding {
  readonly weight: Tensor;
  constructor(vb: WeightBuilder, count: number, dim: number) {
    this.weight = vb.get("weight", [count, dim]);
  }
  forward(ids: Tensor): Tensor { return F.gather(this.weight, ids); }
}

export type Activation = "silu" | "gelu" | "quick_gelu";

export function activation(name: string): (x: Tensor) => Tensor {
  switch (name) {
    case "silu": case "swish": return F.silu;
    case "gelu": return F.gelu;
    case "quick_gelu": return F.quickGelu;
    default: throw new Error(`unsupported activation "${name}" (supported: silu, gelu, quick_gelu)`);
  }
}
