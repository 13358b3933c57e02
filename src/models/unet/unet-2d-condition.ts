import * as F from "../../ir/functional.js";
import type { Graph } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { Conv2d, GroupNorm } from "../../nn/layers.js";
import type { WeightBuilder } from "../../nn/weights.js";
import { CrossAttnUpBlock2D, UpBlock2D } from "../shared/unet-2d-blocks.js";
import { ConfigError, type UNetConfig } from "./config.js";
import { UNetEncoder, blockSettings, skipShapes } from "./encoder.js";
import { FREEU_INPUT, FREEU_INPUT_ORDER, FreeU, type FreeUVariant } from "./freeu.js";
import { pagSelfAttention, type PagGraphOptions } from "./pag.js";
import type { SelfAttentionVariant } from "../shared/transformer-2d.js";

export interface UNetInputs {
  sample: Tensor;
  timestep: Tensor;
  encoderHiddenStates: Tensor;
  textEmbeds?: Tensor;
  timeIds?: Tensor;
  timestepCond?: Tensor;
  /**
   * A ControlNet's residuals (diffusers' down_block_additional_residuals and
   * mid_block_additional_residual): added to the skip states and to the mid block's output.
   */
  controlnetResiduals?: { down: Tensor[]; mid: Tensor };
  /** FreeU on the up blocks' inputs and skip states (freeu.ts). */
  freeu?: FreeU;
}

export interface UNetOutputs {
  sample: Tensor;
  /** First output of every block (`down_blocks.N`, `mid_block`, `up_blocks.N`): for debugging and feature distillation. */
  blocks: Map<string, Tensor>;
}

/** diffusers UNet2DConditionModel for the SDXL family (SDXL, SSD-1B, Vega), driven by its config. */
export class UNet2DConditionModel {
  private readonly encoder: UNetEncoder;
  private readonly upBlocks: CrossAttnUpBlock2D[] = [];
  private readonly convNormOut: GroupNorm;
  private readonly convOut: Conv2d;

  /** `selfAttention`: self-attention layers changed by name (PAG, pag.ts). */
  constructor(vb: WeightBuilder, readonly config: UNetConfig, selfAttention?: SelfAttentionVariant) {
    const c = config;
    const ch = c.blockOutChannels;
    const n = ch.length;
    this.encoder = new UNetEncoder(vb, c, selfAttention);

    const rev = [...ch].reverse();
    const revHeads = [...c.numAttentionHeads].reverse();
    const revCross = [...c.crossAttentionDim].reverse();
    const revLayers = [...c.layersPerBlock].reverse();
    let out = rev[0];
    c.upBlockTypes.forEach((type, i) => {
      const prev = out;
      out = rev[i];
      const inC = rev[Math.min(i + 1, n - 1)];
      const b = vb.pp("up_blocks").pp(i), settings = { ...blockSettings(c, i, revHeads[i], revCross[i]), selfAttention };
      this.upBlocks.push(type === "CrossAttnUpBlock2D"
        ? new CrossAttnUpBlock2D(b, inC, prev, out, revLayers[i] + 1, c.reverseTransformerLayersPerBlock[i], i < n - 1, settings)
        : new UpBlock2D(b, inC, prev, out, revLayers[i] + 1, i < n - 1, settings));
    });

    this.convNormOut = new GroupNorm(vb.pp("conv_norm_out"), c.normNumGroups, ch[0], c.normEps);
    this.convOut = new Conv2d(vb.pp("conv_out"), ch[0], c.outChannels, 3, { padding: 1 });
  }

  forward(inp: UNetInputs): UNetOutputs {
    const c = this.config;
    const blocks = new Map<string, Tensor>();
    const emb = this.encoder.embedding(inp);
    const down = this.encoder.down(this.encoder.conv(inp.sample), emb, inp.encoderHiddenStates);
    down.blockOutputs.forEach((t, i) => blocks.set(`down_blocks.${i}`, t));
    let x = down.out;
    let skips = down.skips;
    const res = inp.controlnetResiduals;
    if (res) {
      if (res.down.length !== skips.length) throw new ConfigError(`unet: ${res.down.length} ControlNet down residuals for ${skips.length} skip states`);
      // Only the skip connections get them; the down path itself ran on the plain states.
      skips = skips.map((s, i) => F.add(s, res.down[i]));
    }
    if (this.encoder.hasMidBlock) {
      x = this.encoder.mid(x, emb, inp.encoderHiddenStates);
      blocks.set("mid_block", x);
    }
    if (res) x = F.add(x, res.mid);
    this.upBlocks.forEach((block, i) => {
      const take = c.layersPerBlock[c.layersPerBlock.length - 1 - i] + 1;
      const mine = skips.splice(skips.length - take, take);
      // diffusers upsamples to the next skip's size, which differs from 2x only for odd sizes.
      const next = skips[skips.length - 1];
      const size: [number, number] | undefined = next ? [next.shape[2], next.shape[3]] : undefined;
      const freeu = inp.freeu;
      x = block.forward(x, mine, emb, inp.encoderHiddenStates, size, freeu && ((j, h, skip) => freeu.apply(i, j, h, skip)));
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
  /** Time ids per image: 6 (SDXL base), 5 (a refiner's, with the aesthetic score). */
  timeIds?: number;
}

export interface UNetGraphOptions {
  /** Debug outputs: each block's first output. */
  withBlockOutputs?: boolean;
  /**
   * Adds the inputs `down_block_additional_residual_0..N-1` and `mid_block_additional_residual`
   * (a ControlNet's residuals, already scaled). Off: the graph is the plain UNet, input for input.
   */
  controlnetResiduals?: boolean;
  /** Adds the input `freeu` [b1, b2, s1, s2] and FreeU placed as this variant places it (freeu.ts). */
  freeu?: FreeUVariant;
  /** Perturbed-attention guidance: the self-attention layers `layers` match give the last `perturbedRows` rows the identity map (pag.ts). */
  pag?: PagGraphOptions;
}

/** Adds the UNet's inputs (named as the fixtures name them) and outputs to `graph`. */
export function buildUNetGraph(graph: Graph, vb: WeightBuilder, config: UNetConfig, shape: UNetGraphShape, options: boolean | UNetGraphOptions = false): UNet2DConditionModel {
  const opts: UNetGraphOptions = typeof options === "boolean" ? { withBlockOutputs: options } : options;
  const { batch: b, height: h, width: w } = shape;
  const unet = new UNet2DConditionModel(vb, config, opts.pag && pagSelfAttention(config, opts.pag));
  const inputs: UNetInputs = {
    sample: graph.input("sample", [b, config.inChannels, h, w]),
    timestep: graph.input("timestep", [b]),
    encoderHiddenStates: graph.input("encoder_hidden_states", [b, shape.sequence ?? 77, config.crossAttentionDim[0]]),
  };
  if (config.additionEmbedType === "text_time") {
    const timeDims = shape.timeIds ?? 6;
    inputs.textEmbeds = graph.input("text_embeds", [b, config.projectionClassEmbeddingsInputDim - timeDims * config.additionTimeEmbedDim]);
    inputs.timeIds = graph.input("time_ids", [b, timeDims]);
  }
  if (config.timeCondProjDim) inputs.timestepCond = graph.input("timestep_cond", [b, config.timeCondProjDim]);
  if (opts.controlnetResiduals) {
    const shapes = skipShapes(config, b, h, w);
    inputs.controlnetResiduals = {
      down: shapes.down.map((s, i) => graph.input(`down_block_additional_residual_${i}`, s)),
      mid: graph.input("mid_block_additional_residual", shapes.mid),
    };
  }
  if (opts.freeu) inputs.freeu = new FreeU(config, opts.freeu, graph.input(FREEU_INPUT, [FREEU_INPUT_ORDER.length]));
  const out = unet.forward(inputs);
  graph.output("sample_out", out.sample);
  if (opts.withBlockOutputs) for (const [k, t] of out.blocks) graph.output(k, t);
  return unet;
}
