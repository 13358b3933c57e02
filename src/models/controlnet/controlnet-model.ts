import * as F from "../../ir/functional.js";
import type { Graph } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { ConfigError, UNetEncoder, skipShapes, type EmbeddingInputs } from "../unet/index.js";
import { ControlNetConditioningEmbedding } from "./conditioning-embedding.js";
import { conditioningDownscale, type ControlNetConfig } from "./config.js";

export interface ControlNetInputs extends EmbeddingInputs {
  sample: Tensor;
  encoderHiddenStates: Tensor;
  /** [B, conditioning_channels, h·f, w·f], in [0, 1] as the pipelines' control_image_processor leaves it. */
  controlnetCond: Tensor;
}

export interface ControlNetOutputs {
  /** One per UNet skip state, in diffusers' order; not yet multiplied by conditioning_scale. */
  down: Tensor[];
  mid: Tensor;
}

/**
 * diffusers ControlNetModel: the UNet's encoder (same keys, built by UNetEncoder) fed conv_in(sample)
 * plus the embedded control image, and a 1x1 "zero conv" on every skip state and on the mid output.
 * The outputs are unscaled: conditioning_scale (and guess mode's per-residual logspace scales) is a
 * host-side multiply, so one compiled session serves every scale.
 */
export class ControlNetModel {
  private readonly encoder: UNetEncoder;
  private readonly condEmbedding: ControlNetConditioningEmbedding;
  private readonly downConvs: Conv2d[];
  private readonly midConv: Conv2d;

  constructor(vb: WeightBuilder, readonly config: ControlNetConfig) {
    const e = config.encoder;
    const ch = e.blockOutChannels;
    this.encoder = new UNetEncoder(vb, e);
    this.condEmbedding = new ControlNetConditioningEmbedding(vb.pp("controlnet_cond_embedding"), config.conditioningChannels, config.conditioningEmbeddingOutChannels, ch[0]);
    const downChannels = skipShapes(e, 1, 1, 1).down.map((s) => s[1]);
    this.downConvs = downChannels.map((c, i) => new Conv2d(vb.pp("controlnet_down_blocks").pp(i), c, c, 1));
    this.midConv = new Conv2d(vb.pp("controlnet_mid_block"), ch[ch.length - 1], ch[ch.length - 1], 1);
  }

  forward(inp: ControlNetInputs): ControlNetOutputs {
    let cond = inp.controlnetCond;
    if (this.config.channelOrder === "bgr") {
      const c = cond.shape[1];
      cond = F.concat(Array.from({ length: c }, (_, i) => F.slice(cond, 1, c - 1 - i, c - i)), 1);
    }
    const emb = this.encoder.embedding(inp);
    const x = F.add(this.encoder.conv(inp.sample), this.condEmbedding.forward(cond));
    const down = this.encoder.down(x, emb, inp.encoderHiddenStates);
    const mid = this.encoder.mid(down.out, emb, inp.encoderHiddenStates);
    const pool = (t: Tensor) => (this.config.globalPoolConditions ? F.expand(F.reduceMean(t, [2, 3], true), [...t.shape]) : t);
    // global_pool_conditions: diffusers returns [B, C, 1, 1] means that broadcast in the UNet's add;
    // expanding them here keeps one residual shape (the UNet's inputs) for every ControlNet.
    return {
      down: down.skips.map((s, i) => pool(this.downConvs[i].forward(s))),
      mid: pool(this.midConv.forward(mid)),
    };
  }
}

export interface ControlNetGraphShape {
  batch: number;
  /** Latent height and width; the control image is `conditioningDownscale` times larger. */
  height: number;
  width: number;
  sequence?: number;
}

/**
 * Adds the ControlNet's inputs (sample, timestep, encoder_hidden_states, text_embeds, time_ids,
 * controlnet_cond) and outputs (down_res_0..N-1, mid_res: unscaled) to `graph`.
 */
export function buildControlNetGraph(graph: Graph, vb: WeightBuilder, config: ControlNetConfig, shape: ControlNetGraphShape): ControlNetModel {
  const e = config.encoder;
  const { batch: b, height: h, width: w } = shape;
  const f = conditioningDownscale(config);
  const net = new ControlNetModel(vb, config);
  const inputs: ControlNetInputs = {
    sample: graph.input("sample", [b, e.inChannels, h, w]),
    timestep: graph.input("timestep", [b]),
    encoderHiddenStates: graph.input("encoder_hidden_states", [b, shape.sequence ?? 77, e.crossAttentionDim[0]]),
    controlnetCond: graph.input("controlnet_cond", [b, config.conditioningChannels, h * f, w * f]),
  };
  if (e.additionEmbedType === "text_time") {
    const timeDims = 6;
    const textDim = e.projectionClassEmbeddingsInputDim - timeDims * e.additionTimeEmbedDim;
    if (textDim <= 0) throw new ConfigError(`controlnet config: projection_class_embeddings_input_dim ${e.projectionClassEmbeddingsInputDim} leaves no room for text_embeds next to 6 x ${e.additionTimeEmbedDim} time ids`);
    inputs.textEmbeds = graph.input("text_embeds", [b, textDim]);
    inputs.timeIds = graph.input("time_ids", [b, timeDims]);
  }
  const out = net.forward(inputs);
  out.down.forEach((t, i) => graph.output(`down_res_${i}`, t));
  graph.output("mid_res", out.mid);
  return net;
}
