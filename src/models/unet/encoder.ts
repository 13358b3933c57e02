import * as F from "../../ir/functional.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { CrossAttnDownBlock2D, DownBlock2D, UNetMidBlock2DCrossAttn, type BlockSettings } from "../shared/unet-2d-blocks.js";
import type { SelfAttentionVariant } from "../shared/transformer-2d.js";
import { ConfigError, type UNetConfig } from "./config.js";
import { TimestepEmbedding, timestepEmbedding } from "./embeddings.js";

/** What the time and addition embeddings read. */
export interface EmbeddingInputs {
  timestep: Tensor;
  textEmbeds?: Tensor;
  timeIds?: Tensor;
  timestepCond?: Tensor;
}

/** Block settings of down block `i` (or of an up block, with its own heads and cross dim). */
export function blockSettings(c: UNetConfig, i: number, heads = c.numAttentionHeads[i], cross = c.crossAttentionDim[i]): BlockSettings {
  return { tembChannels: c.blockOutChannels[0] * 4, groups: c.normNumGroups, eps: c.normEps, heads, crossAttentionDim: cross, useLinearProjection: c.useLinearProjection };
}

/**
 * The first half of UNet2DConditionModel: time and addition embeddings, conv_in, the down blocks and
 * the mid block. diffusers' ControlNetModel has exactly these modules under the same keys, so both
 * models build them from here (construction order = weight order = the UNet's graph as before).
 */
export class UNetEncoder {
  private readonly timeEmbedding: TimestepEmbedding;
  private readonly addEmbedding?: TimestepEmbedding;
  private readonly convIn: Conv2d;
  private readonly downBlocks: CrossAttnDownBlock2D[] = [];
  private readonly midBlock?: UNetMidBlock2DCrossAttn;

  /** `selfAttention`: self-attention layers changed by name (PAG; the UNet's, never a ControlNet's). */
  constructor(vb: WeightBuilder, readonly config: UNetConfig, selfAttention?: SelfAttentionVariant) {
    const c = config;
    const settings = (i: number) => ({ ...blockSettings(c, i), selfAttention });
    const ch = c.blockOutChannels;
    const n = ch.length;
    const tembChannels = ch[0] * 4;
    this.timeEmbedding = new TimestepEmbedding(vb.pp("time_embedding"), ch[0], tembChannels, c.timeCondProjDim);
    if (c.additionEmbedType === "text_time") {
      this.addEmbedding = new TimestepEmbedding(vb.pp("add_embedding"), c.projectionClassEmbeddingsInputDim, tembChannels);
    }
    this.convIn = new Conv2d(vb.pp("conv_in"), c.inChannels, ch[0], 3, { padding: 1 });
    let out = ch[0];
    c.downBlockTypes.forEach((type, i) => {
      const inC = out;
      out = ch[i];
      const b = vb.pp("down_blocks").pp(i), last = i === n - 1;
      this.downBlocks.push(type === "CrossAttnDownBlock2D"
        ? new CrossAttnDownBlock2D(b, inC, out, c.layersPerBlock[i], c.transformerLayersPerBlock[i], !last, settings(i))
        : new DownBlock2D(b, inC, out, c.layersPerBlock[i], !last, settings(i)));
    });
    if (c.midBlockType) {
      const tl = c.midBlockType === "UNetMidBlock2DCrossAttn" ? c.midTransformerLayers : null;
      this.midBlock = new UNetMidBlock2DCrossAttn(vb.pp("mid_block"), ch[n - 1], tl, settings(n - 1));
    }
  }

  /** The time embedding plus, for text_time models, the embedding of [text_embeds, sinusoids(time_ids)]. */
  embedding(inp: EmbeddingInputs): Tensor {
    const c = this.config;
    const tEmb = timestepEmbedding(inp.timestep, c.blockOutChannels[0], c.flipSinToCos, c.freqShift);
    let emb = this.timeEmbedding.forward(tEmb, inp.timestepCond);
    if (this.addEmbedding) {
      const { textEmbeds, timeIds } = inp;
      if (!textEmbeds || !timeIds) throw new ConfigError("unet: addition_embed_type text_time needs text_embeds and time_ids");
      const b = timeIds.shape[0];
      const timeEmb = F.reshape(timestepEmbedding(F.reshape(timeIds, [-1]), c.additionTimeEmbedDim, c.flipSinToCos, c.freqShift), [b, -1]);
      emb = F.add(emb, this.addEmbedding.forward(F.concat([textEmbeds, timeEmb], 1)));
    }
    return emb;
  }

  conv(sample: Tensor): Tensor { return this.convIn.forward(sample); }

  /**
   * The down blocks from `x` (conv_in's output): the last block's output, the skip states in
   * diffusers' order (x itself first, then every resnet/attention output and downsampler output)
   * and each block's output for debugging.
   */
  down(x: Tensor, emb: Tensor, context: Tensor): { out: Tensor; skips: Tensor[]; blockOutputs: Tensor[] } {
    const skips: Tensor[] = [x];
    const blockOutputs: Tensor[] = [];
    for (const block of this.downBlocks) {
      const r = block.forward(x, emb, context);
      x = r.out;
      skips.push(...r.skips);
      blockOutputs.push(x);
    }
    return { out: x, skips, blockOutputs };
  }

  get hasMidBlock(): boolean { return this.midBlock !== undefined; }

  mid(x: Tensor, emb: Tensor, context: Tensor): Tensor {
    return this.midBlock ? this.midBlock.forward(x, emb, context) : x;
  }
}

/** How many skip states the down blocks give: conv_in's, one per resnet, one per downsampler. */
export function skipCount(c: UNetConfig): number {
  return 1 + c.layersPerBlock.reduce((a, b) => a + b, 0) + (c.blockOutChannels.length - 1);
}

/**
 * The shapes of the skip states (in order) and of the mid block's output for latents [batch, C, h, w]:
 * what a ControlNet's residuals must have to be added to a UNet's. Downsamplers are 3x3 stride 2
 * padding 1, so a side s becomes ceil(s / 2).
 */
export function skipShapes(c: UNetConfig, batch: number, height: number, width: number): { down: number[][]; mid: number[] } {
  const ch = c.blockOutChannels;
  let h = height, w = width;
  const down: number[][] = [[batch, ch[0], h, w]];
  ch.forEach((channels, i) => {
    for (let l = 0; l < c.layersPerBlock[i]; l++) down.push([batch, channels, h, w]);
    if (i < ch.length - 1) {
      h = Math.ceil(h / 2); w = Math.ceil(w / 2);
      down.push([batch, channels, h, w]);
    }
  });
  return { down, mid: [batch, ch[ch.length - 1], h, w] };
}
