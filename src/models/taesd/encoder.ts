/** diffusers' EncoderTiny, as AutoencoderTiny.encode runs it. */
import * as F from "../../ir/functional.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { type TaesdConfig, taesdDownscale } from "./config.js";
import { Sequential, taesdActivation } from "./blocks.js";

/**
 * layers: per stage a conv (the first from in_channels with bias; later ones stride 2 without bias)
 * and its blocks, then a conv to latent_channels.
 */
export class EncoderTiny {
  private readonly layers: Sequential;
  constructor(vb: WeightBuilder, cfg: TaesdConfig) {
    const act = taesdActivation(cfg.actFn);
    const boc = cfg.encoderBlockOutChannels;
    const s = new Sequential(vb.pp("layers"));
    cfg.numEncoderBlocks.forEach((blocks, i) => {
      if (i === 0) s.conv(cfg.inChannels, boc[0]);
      else s.conv(boc[i], boc[i], { stride: 2, bias: false });
      for (let k = 0; k < blocks; k++) s.block(boc[i], act);
    });
    s.conv(boc[boc.length - 1], cfg.latentChannels);
    this.layers = s;
  }
  /** Images in [-1, 1] go in as [0, 1], TAESD's convention. */
  forward(x: Tensor): Tensor {
    return this.layers.forward(F.div(F.add(x, 1), 2));
  }
}

export interface TaesdEncoderOutputs {
  /** float32 [B, in_channels, H, W] graph input named "image", values in [-1, 1]. */
  image: Tensor;
  /** [B, latent_channels, H/f, W/f]: latents in the diffusion model's space (scaling_factor 1.0). */
  latents: Tensor;
}

/** AutoencoderTiny.encode (no tiling): `vb` is the AutoencoderTiny root (keys `encoder.layers.N...`). */
export function buildTaesdEncoder(vb: WeightBuilder, cfg: TaesdConfig, imageShape: readonly number[]): TaesdEncoderOutputs {
  const f = taesdDownscale(cfg);
  if (imageShape.length !== 4 || imageShape[1] !== cfg.inChannels || imageShape[2] % f !== 0 || imageShape[3] % f !== 0) {
    throw new ShapeError(`TAESD encoder: image shape [${imageShape}] must be [B, ${cfg.inChannels}, H, W] with H and W multiples of ${f}`);
  }
  const encoder = new EncoderTiny(vb.pp("encoder"), cfg);
  const image = vb.graph.input("image", imageShape);
  return { image, latents: encoder.forward(image) };
}
