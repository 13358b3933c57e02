/**
 * A CLIP text encoder opened for inference: its graph built once for one batch and sequence
 * length, checked (every tensor used, every LoRA delta landed) and compiled.
 */
import type { WeightDeltas } from "../nn/weight-deltas.js";
import type { CompiledGraph, SessionOptions } from "../runtime/session.js";
import { buildClipTextGraph } from "../models/clip/clip-text-model.js";
import { parseClipTextConfig, type ClipTextConfig } from "../models/clip/config.js";
import { folderComponent, type ComponentWeights, type Variant } from "./component.js";
import { compileChecked } from "./compile.js";

export interface ClipTextResult {
  last_hidden_state: Float32Array;
  penultimate_hidden_state: Float32Array;
  /** [numHiddenLayers + 1, batch, seqLen, hidden]: transformers' hidden_states tuple, stacked. */
  hidden_states: Float32Array;
  pooled: Float32Array;
  /** Only for CLIPTextModelWithProjection. */
  text_embeds?: Float32Array;
}

export interface ClipTextEncoder {
  config: ClipTextConfig;
  withProjection: boolean;
  compiled: CompiledGraph;
  /** Keys in the weight files that the model did not use (position_ids excluded); empty for a clean checkpoint. */
  unusedKeys: string[];
  /** Runs on int64 ids [batch * seqLen]; returns the named outputs (`text_embeds` only with projection). */
  run(inputIds: BigInt64Array): Promise<ClipTextResult>;
  release(): Promise<void>;
}

export interface CreateClipTextEncoderOptions {
  variant?: Variant;
  batch?: number;
  seqLen?: number;
  withProjection?: boolean;
  session?: SessionOptions;
  /** LoRA deltas added to the weights (every one must land on a weight of this model). */
  deltas?: WeightDeltas;
  /** See ClipBuildOptions.projectionTransposed; default: `transposedKeys` has `text_projection.weight`. */
  projectionTransposed?: boolean;
  /** Textual inversion vectors after the vocabulary (ClipBuildOptions.extraTokens). */
  extraTokens?: Float32Array;
}

/**
 * Opens a diffusers `text_encoder/` or `text_encoder_2/` folder (config.json + model[.fp16].safetensors),
 * or takes a config and weight source already opened, builds and compiles the model. With or without
 * projection follows `architectures`, else the weights.
 */
export async function createClipTextEncoder(dirOrWeights: string | ComponentWeights, opts: CreateClipTextEncoderOptions = {}): Promise<ClipTextEncoder> {
  const fromDir = typeof dirOrWeights === "string";
  const weights = fromDir ? folderComponent(dirOrWeights, opts.variant) : dirOrWeights;
  const { source, where } = weights;
  const config = parseClipTextConfig(weights.config, fromDir ? `${where}/config.json` : `${where} config`);
  const projectionTransposed = opts.projectionTransposed ?? weights.transposedKeys?.has("text_projection.weight") ?? false;
  const { vb, withProjection } = buildClipTextGraph(config, source, { ...opts, projectionTransposed });
  const compiled = await compileChecked(vb, where, `CLIP text encoder (${where})`, opts.session, opts.deltas);
  return {
    config, withProjection, compiled, unusedKeys: vb.unused(),
    run: async (ids) => (await compiled.run({ input_ids: ids })) as Record<string, Float32Array> as unknown as ClipTextResult,
    release: () => compiled.release(),
  };
}
