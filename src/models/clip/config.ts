/**
 * transformers' CLIPTextConfig, as read from a `text_encoder/config.json` (or the `text_config` of a
 * full CLIPConfig). Only what the text transformer needs; unsupported values are rejected here, with
 * the key and the value, rather than producing a silently different model.
 */

export type ClipActivation = "quick_gelu" | "gelu";

export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: ClipActivation;
  layerNormEps: number;
  /** transformers pools at argmax(input_ids) when this is 2 (legacy configs), else at the first id equal to it. */
  eosTokenId: number;
  projectionDim: number;
  /** `architectures` of the config, when given (null/absent otherwise). */
  architectures?: string[];
}

export class ClipConfigError extends Error {}

/** CLIPTextConfig defaults (transformers), used where a key is absent. */
const DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  projection_dim: 512,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: "quick_gelu",
  layer_norm_eps: 1e-5,
  eos_token_id: 49407,
};

const SUPPORTED_ACTS: readonly string[] = ["quick_gelu", "gelu"];

export function parseClipTextConfig(raw: Record<string, any>, where = "text encoder config"): ClipTextConfig {
  if (raw === null || typeof raw !== "object") throw new ClipConfigError(`${where}: not a JSON object`);
  // A full CLIPConfig nests the text part.
  const c: Record<string, any> = raw.model_type === "clip" && raw.text_config ? { ...raw.text_config, architectures: raw.architectures } : raw;
  if (c.model_type !== undefined && c.model_type !== "clip_text_model") {
    throw new ClipConfigError(`${where}: model_type "${c.model_type}" is not a CLIP text model (expected "clip_text_model")`);
  }
  const int = (key: keyof typeof DEFAULTS, min = 1): number => {
    const v = c[key] ?? DEFAULTS[key];
    if (!Number.isInteger(v) || v < min) throw new ClipConfigError(`${where}: ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const hiddenAct = c.hidden_act ?? DEFAULTS.hidden_act;
  if (!SUPPORTED_ACTS.includes(hiddenAct)) {
    throw new ClipConfigError(`${where}: hidden_act "${hiddenAct}" is not supported (supported: ${SUPPORTED_ACTS.join(", ")})`);
  }
  const eps = c.layer_norm_eps ?? DEFAULTS.layer_norm_eps;
  if (typeof eps !== "number" || !(eps > 0)) throw new ClipConfigError(`${where}: layer_norm_eps must be a positive number, got ${JSON.stringify(eps)}`);
  const eos = c.eos_token_id ?? DEFAULTS.eos_token_id;
  if (!Number.isInteger(eos) || eos < 0) throw new ClipConfigError(`${where}: eos_token_id must be a non-negative integer, got ${JSON.stringify(eos)}`);
  const cfg: ClipTextConfig = {
    vocabSize: int("vocab_size"),
    hiddenSize: int("hidden_size"),
    intermediateSize: int("intermediate_size"),
    numHiddenLayers: int("num_hidden_layers"),
    numAttentionHeads: int("num_attention_heads"),
    maxPositionEmbeddings: int("max_position_embeddings"),
    hiddenAct: hiddenAct as ClipActivation,
    layerNormEps: eps,
    eosTokenId: eos,
    projectionDim: int("projection_dim"),
  };
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new ClipConfigError(`${where}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numAttentionHeads}`);
  }
  if (cfg.eosTokenId !== 2 && cfg.eosTokenId >= cfg.vocabSize) {
    throw new ClipConfigError(`${where}: eos_token_id ${cfg.eosTokenId} is outside the vocabulary (${cfg.vocabSize})`);
  }
  if (Array.isArray(c.architectures)) cfg.architectures = c.architectures.map(String);
  return cfg;
}

const WITH_PROJECTION = ["CLIPTextModelWithProjection"];
const WITHOUT_PROJECTION = ["CLIPTextModel"];

/**
 * Whether the checkpoint is a CLIPTextModelWithProjection: from `architectures` when the config names
 * one of the two classes, else from whether the weights hold `text_projection.weight`.
 */
export function clipHasProjection(config: ClipTextConfig, weightKeys: Iterable<string>): boolean {
  const arch = config.architectures ?? [];
  if (arch.some((a) => WITH_PROJECTION.includes(a))) return true;
  if (arch.some((a) => WITHOUT_PROJECTION.includes(a))) return false;
  for (const k of weightKeys) if (k === "text_projection.weight") return true;
  return false;
}
