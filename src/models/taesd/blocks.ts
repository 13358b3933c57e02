/**
 * The pieces of diffusers' EncoderTiny / DecoderTiny: an nn.Sequential named `layers`, whose entries
 * are 3x3 convs, activations, nearest upsampling and AutoencoderTinyBlocks. Parameter-free entries
 * still take an index, so weights are found under `layers.N` exactly as in the state dict.
 */
import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, activation } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import type { TaesdConfig } from "./config.js";

export type Layer = (x: Tensor) => Tensor;

/** The block activation of act_fn (ReLU for every released TAESD). */
export function taesdActivation(act: TaesdConfig["actFn"]): Layer {
  return act === "relu" ? F.relu : activation(act);
}

/** AutoencoderTinyBlock: fuse(conv(x) + skip(x)), conv = conv3x3/act/conv3x3/act/conv3x3, fuse = ReLU. */
export class AutoencoderTinyBlock {
  private readonly convs: Conv2d[];
  /** A 1x1 conv without bias when the channel count changes, else identity. */
  private readonly skip?: Conv2d;
  constructor(vb: WeightBuilder, inCh: number, outCh: number, private readonly act: Layer) {
    const cv = vb.pp("conv");
    // Sequential indices 0, 2, 4: the activations sit at 1 and 3.
    this.convs = [0, 2, 4].map((i, k) => new Conv2d(cv.pp(i), k === 0 ? inCh : outCh, outCh, 3, { padding: 1 }));
    if (inCh !== outCh) this.skip = new Conv2d(vb.pp("skip"), inCh, outCh, 1, { bias: false });
  }
  forward(x: Tensor): Tensor {
    const h = this.convs[2].forward(this.act(this.convs[1].forward(this.act(this.convs[0].forward(x)))));
    return F.relu(F.add(h, this.skip ? this.skip.forward(x) : x));
  }
}

/** Builds an nn.Sequential's entries in order; each `add` takes the next index. */
export class Sequential {
  private readonly layers: Layer[] = [];
  constructor(private readonly vb: WeightBuilder) {}
  /** The WeightBuilder of the next entry. */
  get next(): WeightBuilder { return this.vb.pp(this.layers.length); }
  add(layer: Layer): this {
    this.layers.push(layer);
    return this;
  }
  conv(inCh: number, outCh: number, opts: { stride?: number; bias?: boolean } = {}): this {
    const c = new Conv2d(this.next, inCh, outCh, 3, { padding: 1, ...opts });
    return this.add((x) => c.forward(x));
  }
  block(ch: number, act: Layer): this {
    const b = new AutoencoderTinyBlock(this.next, ch, ch, act);
    return this.add((x) => b.forward(x));
  }
  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, f) => f(h), x);
  }
}
