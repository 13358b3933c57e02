/**
 * LoRA for training: which Linear weights the target names select (PEFT's rule: a module whose name
 * is a target or ends with "." + target), their A/B factors as trainable graph inputs with PEFT's
 * "gaussian" init (A ~ N(0, 1/r), B = 0, as train_text_to_image_lora_sdxl.py asks), and the branches
 * y += (alpha/r)·B(A x) spliced into the built graph.
 */
import type { Graph } from "../../ir/graph.js";
import { addParameter, type TrainableParameter } from "../../ir/passes/trainable.js";
import { addLoraBranches, type LowRankBranch } from "../../ir/passes/lora-branch.js";
import type { TrainingRng } from "../rng.js";

export class LoraTargetError extends Error {}

/** diffusers' SDXL LoRA defaults. */
export const UNET_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"];
export const TEXT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"];

export interface LoraModule {
  /** "unet", "text_encoder", "text_encoder_2": the prefix of the saved keys. */
  component: string;
  /** The module's name inside its component ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"). */
  module: string;
  /** The graph's key of the weight it changes. */
  weightKey: string;
  rank: number;
  alpha: number;
  down: TrainableParameter;
  up: TrainableParameter;
}

const matches = (module: string, target: string) => module === target || module.endsWith("." + target);

/**
 * The weights (key → shape, as the model asked for them; keys may carry `keyPrefix`) that the targets
 * select. Every target must select something; convolutions are refused (LoCon training is not supported).
 */
export function selectLoraWeights(weights: Map<string, number[]>, targets: string[], keyPrefix: string, what: string): Map<string, number[]> {
  const chosen = new Map<string, number[]>();
  const unmatched: string[] = [];
  for (const t of targets) {
    let hit = false;
    for (const [key, shape] of weights) {
      if (!key.endsWith(".weight") || !key.startsWith(keyPrefix)) continue;
      const module = key.slice(keyPrefix.length, -".weight".length);
      if (!matches(module, t)) continue;
      if (shape.length !== 2) throw new LoraTargetError(`LoRA target "${t}" selects ${module} [${shape}] of the ${what}, which is not a Linear layer (LoRA on convolutions is not supported)`);
      chosen.set(key, shape);
      hit = true;
    }
    if (!hit) unmatched.push(t);
  }
  if (unmatched.length) {
    const examples = [...weights.keys()].filter((k) => k.endsWith(".weight") && weights.get(k)!.length === 2).slice(0, 3).map((k) => k.slice(keyPrefix.length, -".weight".length).split(".").pop());
    throw new LoraTargetError(`LoRA target(s) ${unmatched.map((t) => `"${t}"`).join(", ")} match no Linear layer of the ${what} (module names end in e.g. ${[...new Set(examples)].join(", ")}; SDXL attention: to_q, to_k, to_v, to_out.0)`);
  }
  return chosen;
}

/** Adds A/B inputs for each chosen weight and splices the branches in; returns the modules (A, B in order). */
export function addLoraModules(g: Graph, chosen: Map<string, number[]>, o: { component: string; keyPrefix: string; rank: number; alpha: number; rng: TrainingRng }): LoraModule[] {
  const modules: LoraModule[] = [];
  const branches = new Map<string, LowRankBranch>();
  const std = 1 / o.rank;
  for (const [key, [out, inF]] of chosen) {
    const module = key.slice(o.keyPrefix.length, -".weight".length);
    const name = `${o.component}.${module}`;
    const a = o.rng.randn(o.rank * inF).map((v) => v * std);
    const down = addParameter(g, `${name}.lora_A.weight`, [o.rank, inF], a);
    const up = addParameter(g, `${name}.lora_B.weight`, [out, o.rank], new Float32Array(out * o.rank));
    branches.set(key, { down: down.tensor, up: up.tensor, scale: o.alpha / o.rank });
    modules.push({ component: o.component, module, weightKey: key, rank: o.rank, alpha: o.alpha, down, up });
  }
  addLoraBranches(g, branches);
  return modules;
}

export const loraParameters = (modules: LoraModule[]): TrainableParameter[] => modules.flatMap((m) => [m.down, m.up]);

