import * as F from "../../ir/functional.js";
import type { Graph } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { DownBlock, MidBlock, UpBlock, type BlockSettings } from "./blocks.js";
import { ConfigError, type UNetConfig } from "./config.js";
import { TimestepEmbedding, timestepEmbedding } from "./embeddings.js";

export interface UNetInputs {
  sample: Tensor;
  timestep: Tensor;
  encoderHiddenStates: Tensor;
  textEmbeds?: Tensor;
  timeIds?: Tensor;
  timestepCond?: Tensor;
}

export interface UNetOutputs {
  sample: Tensor;
  /** First output of every block (`down_blocks.N`, `mid_block`, `up_blocks.N`): for debugging and feature distillation. */
  blocks: Map<string, Tensor>;
}

/** diffusers UNet2DConditionModel for the SDXL family (SDXL, SSD-1B, Vega), driven by its config. */
export class UNet2DConditionModel {
  private readonly timeEmbedding: TimestepEmbedding;
  private readonly addEmbedding?: TimestepEmbedding;
  private readonly convIn: Conv2d;
  private readonly downBlocks: DownBlock[] = [];
  private readonly midBlock?: MidBlock;
  private readonly upBlocks: UpBlock[] = [];
  private readonly convNormOut: GroupNorm;
  private readonly convOut: Conv2d;

  constructor(vb: WeightBuilder, readonly config: UNetConfig) {
    const c = config;
    const ch = c.blockOutChannels;
    const n = ch.length;
    const tembChannels = ch[0] * 4;
    this.timeEmbedding = new TimestepEmbedding(vb.pp("time_embedding"), ch[0], tembChannels, c.timeCondProjDim);
    if (c.additionEmbedType === "text_time") {
      this.addEmbedding = new TimestepEmbedding(vb.pp("add_embedding"), c.projectionClassEmbeddingsInputDim, tembChannels);
    }
    this.convIn = new Conv2d(vb.pp("conv_in"), c.inChannels, ch[0], 3, { padding: 1 });
    const settings = (i: number, heads = c.numAttentionHeads[i], cross = c.crossAttentionDim[i]): BlockSettings => ({
      tembChannels, groups: c.normNumGroups, eps: c.normEps, heads, crossAttentionDim: cross, useLinearProjection: c.useLinearProjection,
    });

    let out = ch[0];
    c.downBlockTypes.forEach((type, i) => {
      const inC = out;
      out = ch[i];
      const tl = type === "CrossAttnDownBlock2D" ? c.transformerLayersPerBlock[i] : null;
      this.downBlocks.push(new DownBlock(vb.pp("down_blocks").pp(i), inC, out, c.layersPerBlock[i], tl, i < n - 1, settings(i)));
    });

    if (c.midBlockType) {
      const tl = c.midBlockType === "UNetMidBlock2DCrossAttn" ? c.midTransformerLayers : null;
      this.midBlock = new MidBlock(vb.pp("mid_block"), ch[n - 1], tl, settings(n - 1));
    }

    const rev = [...ch].reverse();
    const revHeads = [...c.numAttentionHeads].reverse();
    const revCross = [...c.crossAttentionDim].reverse();
    const revLayers = [...c.layersPerBlock].reverse();
    out = rev[0];
    c.upBlockTypes.forEach((type, i) => {
      const prev = out;
      out = rev[i];
      const inC = rev[Math.min(i + 1, n - 1)];
      const tl = type === "CrossAttnUpBlock2D" ? c.reverseTransformerLayersPerBlock[i] : null;
      this.upBlocks.push(new UpBlock(vb.pp("up_blocks").pp(i), inC, prev, out, revLayers[i] + 1, tl, i < n - 1, settings(i, revHeads[i], revCross[i])));
    });

    this.convNormOut = new GroupNorm(vb.pp("conv_norm_out"), c.normNumGroups, ch[0], c.normEps);
    this.convOut = new Conv2d(vb.pp("conv_out"), ch[0], c.outChannels, 3, { padding: 1 });
  }

  forward(inp: UNetInputs): UNetOutputs {
    const c = this.config;
    const blocks = new Map<string, Tensor>();
    const tEmb = timestepEmbedding(inp.timestep, c.blockOutChannels[0], c.flipSinToCos, c.freqShift);
    let emb = this.timeEmbedding.forward(tEmb, inp.timestepCond);
    if (this.addEmbedding) {
      const { textEmbeds, timeIds } = inp;
      if (!textEmbeds || !timeIds) throw new ConfigError("unet: addition_embed_type text_time needs text_embeds and time_ids");
      const b = timeIds.shape[0];
      const timeEmb = F.reshape(timestepEmbedding(F.reshape(timeIds, [-1]), c.additionTimeEmbedDim, c.flipSinToCos, c.freqShift), [b, -1]);
      emb = F.add(emb, this.addEmbedding.forward(F.concat([textEmbeds, timeEmb], 1)));
    }

    let x = this.convIn.forward(inp.sample);
    const skips: Tensor[] = [x];
    this.downBlocks.forEach((block, i) => {
      const r = block.forward(x, emb, inp.encoderHiddenStates);
      x = r.out;
      skips.push(...r.skips);
      blocks.set(`down_blocks.${i}`, x);
    });
    if (this.midBlock) {
      x = this.midBlock.forward(x, emb, inp.encoderHiddenStates);
      blocks.set("mid_block", x);
    }
    this.upBlocks.forEach((block, i) => {
      const take = c.layersPerBlock[c.layersPerBlock.length - 1 - i] + 1;
      const mine = skips.splice(skips.length - take, take);
      // diffusers upsamples to the next skip's size, which differs from 2x only for odd sizes.
      const next = skips[skips.length - 1];
      const size: [number, number] | undefined = next ? [next.shape[2], next.shape[3]] : undefined;
      x = block.forward(x, mine, emb, inp.encoderHiddenStates, size);
      blocks.set(`up_blocks.${i}`, x);
    });
    x = this.convOut.forward(F.silu(this.convNormOut.forward(x)));
    return { sample: x, blocks };
  }
}

export interface UNetGraphShape {
  batch: number;
  /** Latent height and width. */
  height: number;
  width: number;
  /** Text sequence length (77). */
  sequence?: number;
}

/** Adds the UNet's inputs (named as the fixtures name them) and outputs to `graph`. */
export function buildUNetGraph(graph: Graph, vb: WeightBuilder, config: UNetConfig, shape: UNetGraphShape, withBlockOutputs = false): UNet2DConditionModel {
  const { batch: b, height: h, width: w } = shape;
  const unet = new UNet2DConditionModel(vb, config);
  const inputs: UNetInputs = {
    sample: graph.input("sample", [b, config.inChannels, h, w]),
    timestep: graph.input("timestep", [b]),
    encoderHiddenStates: graph.input("encoder_hidden_states", [b, shape.sequence ?? 77, config.crossAttentionDim[0]]),
  };
  if (config.additionEmbedType === "text_time") {
    const timeDims = 6;
    inputs.textEmbeds = graph.input("text_embeds", [b, config.projectionClassEmbeddingsInputDim - timeDims * config.additionTimeEmbedDim]);
    inputs.timeIds = graph.input("time_ids", [b, timeDims]);
  }
  if (config.timeCondProjDim) inputs.timestepCond = graph.input("timestep_cond", [b, config.timeCondProjDim]);
  const out = unet.forward(inputs);
  graph.output("sample_out", out.sample);
  if (withBlockOutputs) for (const [k, t] of out.blocks) graph.output(k, t);
  return unet;
}
