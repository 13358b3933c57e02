/**
 * The training graph, built once: the UNet forward on a batch (noisy latents, timesteps, text
 * conditioning, time ids), a loss, and the gradients of every trainable parameter, as outputs `loss`
 * and `grad.<key>` (see ir/passes/trainable.ts).
 *
 * loss = Σ_b w_b · mean((pred_b - target_b)²) with per-sample weights fed each step: 1/B gives
 * diffusers' mean MSE; DreamBooth's prior preservation (instance and class halves, the class half
 * times prior_loss_weight) and Min-SNR weighting are other weights of the same graph.
 *
 * Trainable: LoRA A/B (UNet, optionally both text encoders, which are then part of the graph and take
 * token ids), the whole UNet, or a distillation student next to its frozen teacher.
 */
import { Graph } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import * as F from "../../ir/functional.js";
import { WeightBuilder, type WeightSource } from "../../nn/weights.js";
import type { ComponentWeights } from "../../loaders/component.js";
import { makeTrainable, addGradientOutputs, type TrainableParameter } from "../../ir/passes/trainable.js";
import { parseUNetConfig, UNet2DConditionModel, type UNetInputs } from "../../models/unet/index.js";
import { buildClipTextModel } from "../../models/clip/clip-text-model.js";
import { parseClipTextConfig } from "../../models/clip/config.js";
import type { TrainingRng } from "../rng.js";
import { recomputeActivations } from "../../ir/passes/recompute.js";
import { addLoraModules, loraParameters, selectLoraWeights, TEXT_LORA_TARGETS, type LoraModule } from "./lora-modules.js";

export interface DistillWeights { task: number; kd: number; features: number }

export type TrainMode =
  | { kind: "lora"; rank: number; alpha: number; targets: string[]; textEncoderTargets?: string[] }
  | { kind: "full" }
  | { kind: "distill"; teacher: ComponentWeights; weights: DistillWeights };

export interface TrainGraphOptions {
  unet: ComponentWeights;
  batch: number;
  /** Latent height and width. */
  latentSize: number;
  mode: TrainMode;
  /** Train LoRA on both text encoders: they join the graph, which then takes `input_ids` / `input_ids_2`. */
  textEncoders?: [ComponentWeights, ComponentWeights];
  /** Draws the LoRA A init. */
  rng: TrainingRng;
  /**
   * Gradient checkpointing: recompute activations in the backward pass (see recompute.ts), in segments
   * ending at each UNet block's output and at each transformer block's.
   */
  checkpointing?: boolean;
}

export interface TrainGraph {
  graph: Graph;
  params: TrainableParameter[];
  lora: LoraModule[];
  /** Extra scalar outputs (distillation's loss terms). */
  lossTerms: string[];
  /** The graph's inputs besides the parameters: name → shape. */
  inputs: Map<string, readonly number[]>;
}

/** Serves `source` under `prefix.` keys, so two models' weights cannot clash in one graph. */
export function prefixedSource(source: WeightSource, prefix: string): WeightSource {
  return {
    description: source.description,
    lookup: (key, shape) => (key.startsWith(prefix) ? source.lookup(key.slice(prefix.length), shape) : undefined),
    keys: () => [...source.keys()].map((k) => prefix + k),
  };
}

const mse = (a: Tensor, b: Tensor) => {
  const d = F.sub(a, b);
  return F.mean(F.mul(d, d));
};

export function buildTrainGraph(o: TrainGraphOptions): TrainGraph {
  const g = new Graph();
  const config = parseUNetConfig(o.unet.config);
  const B = o.batch, h = o.latentSize, C = config.inChannels;
  const D = config.crossAttentionDim[0];
  const P = config.projectionClassEmbeddingsInputDim - 6 * config.additionTimeEmbedDim;
  if (config.additionEmbedType !== "text_time") throw new Error(`${o.unet.where}: not an SDXL-family UNet (addition_embed_type ${config.additionEmbedType})`);

  let text: { hidden: Tensor; pooled: Tensor };
  const textVbs: WeightBuilder[] = [];
  if (o.textEncoders) {
    const outs = o.textEncoders.map((te, i) => {
      const name = i === 0 ? "text_encoder" : "text_encoder_2";
      const vb = WeightBuilder.root(g, prefixedSource(te.source, `${name}.`)).pp(name);
      textVbs.push(vb);
      const out = buildClipTextModel(vb, parseClipTextConfig(te.config, te.where), { batch: B, withProjection: i === 1 });
      // both encoders name their ids "input_ids": the second becomes input_ids_2
      g.makeInput(out.inputIds, i === 0 ? "input_ids" : "input_ids_2");
      return out;
    });
    text = { hidden: F.concat([outs[0].penultimateHiddenState, outs[1].penultimateHiddenState], 2), pooled: outs[1].textEmbeds! };
    if (text.hidden.shape[2] !== D) throw new Error(`the text encoders give ${text.hidden.shape[2]} features, the UNet's cross_attention_dim is ${D}`);
  } else {
    text = { hidden: g.input("encoder_hidden_states", [B, 77, D]), pooled: g.input("text_embeds", [B, P]) };
  }
  const inputs: UNetInputs = {
    sample: g.input("noisy", [B, C, h, h]),
    timestep: g.input("timestep", [B]),
    encoderHiddenStates: text.hidden,
    textEmbeds: text.pooled,
    timeIds: g.input("time_ids", [B, 6]),
  };
  const target = g.input("target", [B, config.outChannels, h, h]);
  const weights = g.input("loss_weights", [B]);

  const vb = WeightBuilder.root(g, o.unet.source);
  const student = new UNet2DConditionModel(vb, config).forward(inputs);
  const d = F.sub(student.sample, target);
  const task = F.reduceSum(F.mul(F.reduceMean(F.mul(d, d), [1, 2, 3]), weights), [0]);

  let loss = task;
  let params: TrainableParameter[] = [];
  let lora: LoraModule[] = [];
  const lossTerms: string[] = [];
  const boundaries = [...student.blocks.values()];
  const m = o.mode;
  if (m.kind === "lora") {
    const unetKeys = vb.requested();
    lora = addLoraModules(g, selectLoraWeights(unetKeys, m.targets, "", "UNet"), { component: "unet", keyPrefix: "", rank: m.rank, alpha: m.alpha, rng: o.rng });
    textVbs.forEach((tvb, i) => {
      const component = i === 0 ? "text_encoder" : "text_encoder_2";
      const chosen = selectLoraWeights(tvb.requested(), m.textEncoderTargets ?? TEXT_LORA_TARGETS, `${component}.`, component);
      lora.push(...addLoraModules(g, chosen, { component, keyPrefix: `${component}.`, rank: m.rank, alpha: m.alpha, rng: o.rng }));
    });
    params = loraParameters(lora);
  } else if (m.kind === "full") {
    params = makeTrainable(g, (key) => !key.startsWith("text_encoder"));
  } else {
    // the student's weights become inputs before the teacher exists, so the teacher's stay frozen constants
    params = makeTrainable(g, (key) => !key.startsWith("text_encoder"));
    const tConfig = parseUNetConfig(m.teacher.config);
    const teacher = new UNet2DConditionModel(WeightBuilder.root(g, prefixedSource(m.teacher.source, "teacher.")).pp("teacher"), tConfig).forward(inputs);
    const kd = mse(student.sample, teacher.sample);
    const feats = [...student.blocks].map(([name, x]) => {
      const t = teacher.blocks.get(name);
      if (!t) throw new Error(`distillation: the teacher has no block ${name}`);
      return mse(x, t);
    });
    const features = feats.reduce((a, b) => F.add(a, b));
    boundaries.push(...teacher.blocks.values(), teacher.sample);
    g.output("loss_task", task);
    g.output("loss_kd", kd);
    g.output("loss_features", features);
    lossTerms.push("loss_task", "loss_kd", "loss_features");
    loss = F.add(F.mul(task, m.weights.task), F.add(F.mul(kd, m.weights.kd), F.mul(features, m.weights.features)));
  }
  const forwardEnd = g.nodes.length;
  addGradientOutputs(g, loss, params);
  if (o.checkpointing) recomputeActivations(g, forwardEnd, [...boundaries, ...g.segmentEnds]);
  const trained = new Set(params.map((p) => p.tensor));
  const shapes = new Map<string, readonly number[]>();
  for (const t of g.inputs) {
    const leaf = g.leaves.get(t)!;
    if (leaf.kind === "input" && !trained.has(t)) shapes.set(leaf.name, t.shape);
  }
  return { graph: g, params, lora, lossTerms, inputs: shapes };
}
