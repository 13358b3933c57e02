import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";

/**
 * diffusers ControlNetConditioningEmbedding: the control image (pixel size) down to the latent size
 * and the UNet's first width. conv_in, then per step a same-width conv and a stride-2 widening conv
 * (each followed by SiLU), then conv_out (zero-initialised in training, so a fresh net adds nothing).
 */
export class ControlNetConditioningEmbedding {
  private readonly convIn: Conv2d;
  private readonly blocks: Conv2d[] = [];
  private readonly convOut: Conv2d;
  constructor(vb: WeightBuilder, conditioningChannels: number, outChannels: number[], embeddingChannels: number) {
    this.convIn = new Conv2d(vb.pp("conv_in"), conditioningChannels, outChannels[0], 3, { padding: 1 });
    for (let i = 0; i < outChannels.length - 1; i++) {
      const cin = outChannels[i], cout = outChannels[i + 1];
      this.blocks.push(new Conv2d(vb.pp("blocks").pp(2 * i), cin, cin, 3, { padding: 1 }));
      this.blocks.push(new Conv2d(vb.pp("blocks").pp(2 * i + 1), cin, cout, 3, { padding: 1, stride: 2 }));
    }
    this.convOut = new Conv2d(vb.pp("conv_out"), outChannels[outChannels.length - 1], embeddingChannels, 3, { padding: 1 });
  }
  forward(cond: Tensor): Tensor {
    let x = F.silu(this.convIn.forward(cond));
    for (const conv of this.blocks) x = F.silu(conv.forward(x));
    return this.convOut.forward(x);
  }
}
