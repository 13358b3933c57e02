/** diffusers' DecoderTiny, as AutoencoderTiny.decode runs it. */
import * as F from "../../ir/functional.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import type { WeightBuilder } from "../../nn/weights.js";
import type { TaesdConfig } from "./config.js";
import { Sequential, taesdActivation } from "./blocks.js";

/**
 * layers: conv_in, act, then per stage its blocks, (nearest upsample,) and a conv (no bias between
 * stages; the last one maps to out_channels, with bias).
 */
export class DecoderTiny {
  private readonly layers: Sequential;
  constructor(vb: WeightBuilder, cfg: TaesdConfig) {
    const act = taesdActivation(cfg.actFn);
    const boc = cfg.decoderBlockOutChannels, last = boc.length - 1;
    const s = new Sequential(vb.pp("layers")).conv(cfg.latentChannels, boc[0]).add(act);
    cfg.numDecoderBlocks.forEach((blocks, i) => {
      for (let k = 0; k < blocks; k++) s.block(boc[i], act);
      const f = cfg.upsamplingScalingFactor;
      if (i < last) s.add((x) => F.upsampleNearest(x, [x.shape[2] * f, x.shape[3] * f]));
      s.conv(boc[i], i < last ? boc[i] : cfg.outChannels, { bias: i === last });
    });
    this.layers = s;
  }
  /** tanh(z / 3) · 3 (TAESD's soft clamp of the latents), the layers, then [0, 1] -> [-1, 1] as diffusers returns it. */
  forward(z: Tensor): Tensor {
    const clamped = F.mul(F.tanh(F.div(z, 3)), 3);
    return F.sub(F.mul(this.layers.forward(clamped), 2), 1);
  }
}

export interface TaesdDecoderOutputs {
  /** float32 [B, latent_channels, h, w] graph input named "latent": the UNet's latents divided by scaling_factor (1.0). */
  latent: Tensor;
  /** [B, out_channels, h·f, w·f], nominally in [-1, 1]. */
  decoded: Tensor;
}

/** AutoencoderTiny.decode (no tiling): `vb` is the AutoencoderTiny root (keys `decoder.layers.N...`). */
export function buildTaesdDecoder(vb: WeightBuilder, cfg: TaesdConfig, latentShape: readonly number[]): TaesdDecoderOutputs {
  if (latentShape.length !== 4 || latentShape[1] !== cfg.latentChannels) {
    throw new ShapeError(`TAESD decoder: latent shape [${latentShape}] must be [B, ${cfg.latentChannels}, h, w]`);
  }
  const decoder = new DecoderTiny(vb.pp("decoder"), cfg);
  const latent = vb.graph.input("latent", latentShape);
  return { latent, decoded: decoder.forward(latent) };
}
