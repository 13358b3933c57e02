/**
 * transformers' CLIPTextModel / CLIPTextModelWithProjection (the two SDXL text encoders: OpenAI
 * ViT-L/14 with quick_gelu and OpenCLIP bigG with gelu), built in the project IR with the
 * checkpoint's own parameter names (`text_model.…`, `text_projection.weight`).
 */
import * as F from "../../ir/functional.js";
import { Graph } from "../../ir/graph.js";
import type { OpDef } from "../../ir/op.js";
import { ShapeError, type Tensor } from "../../ir/tensor.js";
import { Embedding, LayerNorm, Linear, activation } from "../../nn/layers.js";
import { WeightBuilder, type WeightSource } from "../../nn/weights.js";
import type { WeightDeltas } from "../../nn/weight-deltas.js";
import { type ClipTextConfig, clipHasProjection } from "./config.js";

export interface ClipBuildOptions {
  /** Prompts per run (default 1). */
  batch?: number;
  /** Tokens per prompt (default: max_position_embeddings, 77). */
  seqLen?: number;
  /** Build `text_projection` and the `textEmbeds` output (CLIPTextModelWithProjection). */
  withProjection: boolean;
  /**
   * `text_projection.weight` is stored transposed, [hidden, projection_dim], as OpenCLIP keeps it
   * (SGM single-file checkpoints): textEmbeds = pooled · W instead of pooled · Wᵀ.
   */
  projectionTransposed?: boolean;
  /**
   * Token embeddings after the vocabulary ([k, hidden], textual inversions): ids vocab..vocab+k-1
   * pick them, and so do -k..-1 (the same rows counted from the end), which the end-of-text argmax
   * never chooses.
   */
  extraTokens?: Float32Array;
}

export interface ClipTextOutputs {
  /** int64 [batch, seqLen] graph input named "input_ids". */
  inputIds: Tensor;
  /** [batch, seqLen, hidden]: after final_layer_norm. */
  lastHiddenState: Tensor;
  /** [batch, seqLen, hidden]: hidden_states[-2], the second-to-last layer's output (not normed). */
  penultimateHiddenState: Tensor;
  /** transformers' hidden_states tuple: the embeddings, then each layer's output (not normed); numHiddenLayers + 1 entries. */
  hiddenStates: Tensor[];
  /** [batch, hidden]: last_hidden_state at each prompt's end-of-text token. */
  pooled: Tensor;
  /** [batch, projection_dim]: text_projection(pooled), only with `withProjection`. */
  textEmbeds?: Tensor;
}

/**
 * Position of the end-of-text token in each row of int64 ids [B, S] -> int64 [B]: argmax of the ids
 * (`mode: "argmax"`, transformers' rule when eos_token_id == 2) or the first position equal to `eos`
 * (0 when none, like torch's argmax of an all-zero mask).
 */
const ClipEosIndex: OpDef<{ mode: "argmax" | "equal"; eos: number }> = {
  type: "ClipEosIndex",
  infer([ids]) {
    if (ids.rank !== 2 || ids.dtype !== "int64") throw new ShapeError(`ClipEosIndex: input_ids must be int64 [B,S], got ${ids}`);
    return [{ shape: [ids.shape[0]], dtype: "int64" }];
  },
  lower(ctx, [ids], [out], { mode, eos }) {
    const INT32 = 6;
    const scores = ctx.fresh("eos_scores");
    if (mode === "argmax") ctx.emit("Cast", [ids], [scores], { to: INT32 }); // ids < 2^31
    else {
      const eq = ctx.fresh("eos_eq");
      ctx.emit("Equal", [ids, ctx.int64s([eos])], [eq]);
      ctx.emit("Cast", [eq], [scores], { to: INT32 });
    }
    ctx.emit("ArgMax", [scores], [out], { axis: -1, keepdims: 0, select_last_index: 0 });
  },
  flops(n) { return 2 * n.inputs[0].numel; },
};

class ClipAttention {
  private readonly q: Linear;
  private readonly k: Linear;
  private readonly v: Linear;
  private readonly out: Linear;
  constructor(vb: WeightBuilder, private readonly dim: number, private readonly heads: number) {
    this.q = new Linear(vb.pp("q_proj"), dim, dim);
    this.k = new Linear(vb.pp("k_proj"), dim, dim);
    this.v = new Linear(vb.pp("v_proj"), dim, dim);
    this.out = new Linear(vb.pp("out_proj"), dim, dim);
  }
  /** x [B,S,D], mask additive [S,S]. */
  forward(x: Tensor, mask: Tensor): Tensor {
    const [b, s] = x.shape;
    const h = this.heads, d = this.dim / this.heads;
    const split = (t: Tensor, perm: number[]) => F.transpose(F.reshape(t, [b, s, h, d]), perm);
    const q = split(this.q.forward(x), [0, 2, 1, 3]); // [B,H,S,d]
    const kT = split(this.k.forward(x), [0, 2, 3, 1]); // [B,H,d,S]
    const v = split(this.v.forward(x), [0, 2, 1, 3]); // [B,H,S,d]
    const scores = F.add(F.mul(F.matmul(q, kT), 1 / Math.sqrt(d)), mask);
    const ctx = F.matmul(F.softmax(scores), v); // [B,H,S,d]
    return this.out.forward(F.reshape(F.transpose(ctx, [0, 2, 1, 3]), [b, s, this.dim]));
  }
}

class ClipEncoderLayer {
  private readonly attn: ClipAttention;
  private readonly ln1: LayerNorm;
  private readonly ln2: LayerNorm;
  private readonly fc1: Linear;
  private readonly fc2: Linear;
  private readonly act: (x: Tensor) => Tensor;
  constructor(vb: WeightBuilder, cfg: ClipTextConfig) {
    this.attn = new ClipAttention(vb.pp("self_attn"), cfg.hiddenSize, cfg.numAttentionHeads);
    this.ln1 = new LayerNorm(vb.pp("layer_norm1"), cfg.hiddenSize, cfg.layerNormEps);
    this.fc1 = new Linear(vb.pp("mlp").pp("fc1"), cfg.hiddenSize, cfg.intermediateSize);
    this.fc2 = new Linear(vb.pp("mlp").pp("fc2"), cfg.intermediateSize, cfg.hiddenSize);
    this.ln2 = new LayerNorm(vb.pp("layer_norm2"), cfg.hiddenSize, cfg.layerNormEps);
    this.act = activation(cfg.hiddenAct);
  }
  forward(x: Tensor, mask: Tensor): Tensor {
    const h = F.add(x, this.attn.forward(this.ln1.forward(x), mask));
    return F.add(h, this.fc2.forward(this.act(this.fc1.forward(this.ln2.forward(h)))));
  }
}

/** torch.finfo(float32).min: what transformers adds above the diagonal. */
const MASK_VALUE = -3.4028234663852886e38;

function causalMask(graph: Graph, s: number): Tensor {
  const m = new Float32Array(s * s);
  for (let i = 0; i < s; i++) for (let j = i + 1; j < s; j++) m[i * s + j] = MASK_VALUE;
  return graph.constant(m, [s, s]);
}

/**
 * Gathers ids from the vocabulary's table and from `extra` rows after it: an id at or past the vocabulary
 * picks extra row id - vocab, a negative id extra row id + k; the big table is not copied.
 */
function withExtraTokens(table: Tensor, ids: Tensor, extra: Float32Array, vocab: number, hidden: number): Tensor {
  const graph = ids.graph;
  const k = extra.length / hidden;
  if (!Number.isInteger(k)) throw new ShapeError(`CLIP text model: ${extra.length} extra token values are not whole rows of ${hidden}`);
  const i64 = (v: number) => graph.constant(BigInt64Array.of(BigInt(v)), []);
  const rows = graph.constant(extra, [k, hidden]);
  // the vocabulary's own ids land below 0 here
  const row = F.where(F.less(ids, i64(0)), F.add(ids, i64(k)), F.sub(ids, i64(vocab)));
  const isExtra = F.greater(row, i64(-1));
  const own = F.gather(table, F.where(isExtra, i64(0), ids));
  const added = F.gather(rows, F.where(isExtra, row, i64(0)));
  return F.where(F.reshape(isExtra, [...ids.shape, 1]), added, own);
}

/** Builds the text transformer (and projection) on `vb`'s graph; registers no graph outputs. */
export function buildClipTextModel(vb: WeightBuilder, cfg: ClipTextConfig, opts: ClipBuildOptions): ClipTextOutputs {
  const batch = opts.batch ?? 1;
  const seq = opts.seqLen ?? cfg.maxPositionEmbeddings;
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`CLIP text model: batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(seq) || seq < 1 || seq > cfg.maxPositionEmbeddings) {
    throw new Error(`CLIP text model: sequence length ${seq} outside 1..${cfg.maxPositionEmbeddings} (max_position_embeddings)`);
  }
  const graph = vb.graph;
  const tm = vb.pp("text_model");
  const emb = tm.pp("embeddings");
  const tokens = new Embedding(emb.pp("token_embedding"), cfg.vocabSize, cfg.hiddenSize);
  const positions = new Embedding(emb.pp("position_embedding"), cfg.maxPositionEmbeddings, cfg.hiddenSize);
  const layers = Array.from({ length: cfg.numHiddenLayers }, (_, i) => new ClipEncoderLayer(tm.pp("encoder").pp("layers").pp(i), cfg));
  const finalNorm = new LayerNorm(tm.pp("final_layer_norm"), cfg.hiddenSize, cfg.layerNormEps);
  let project: ((x: Tensor) => Tensor) | undefined;
  if (opts.withProjection && opts.projectionTransposed) {
    const w = vb.pp("text_projection").get("weight", [cfg.hiddenSize, cfg.projectionDim]);
    project = (x) => F.matmul(x, w);
  } else if (opts.withProjection) {
    const linear = new Linear(vb.pp("text_projection"), cfg.hiddenSize, cfg.projectionDim, false);
    project = (x) => linear.forward(x);
  }

  const inputIds = graph.input("input_ids", [batch, seq], "int64");
  // position_ids = arange(seq): the first `seq` rows of the table.
  const pos = seq === cfg.maxPositionEmbeddings ? positions.weight : F.slice(positions.weight, 0, 0, seq);
  let h = F.add(opts.extraTokens?.length ? withExtraTokens(tokens.weight, inputIds, opts.extraTokens, cfg.vocabSize, cfg.hiddenSize) : tokens.forward(inputIds), pos);
  const mask = causalMask(graph, seq);
  const states: Tensor[] = [h];
  for (const layer of layers) {
    h = layer.forward(h, mask);
    states.push(h);
  }
  const lastHiddenState = finalNorm.forward(h);
  const penultimateHiddenState = states[states.length - 2];

  const eosIdx = graph.apply(ClipEosIndex, [inputIds], { mode: cfg.eosTokenId === 2 ? "argmax" : "equal", eos: cfg.eosTokenId })[0];
  const rowStart = graph.constant(BigInt64Array.from({ length: batch }, (_, i) => BigInt(i * seq)), [batch]);
  const pooled = F.gather(F.reshape(lastHiddenState, [batch * seq, cfg.hiddenSize]), F.add(eosIdx, rowStart));
  const textEmbeds = project?.(pooled);
  return { inputIds, lastHiddenState, penultimateHiddenState, hiddenStates: states, pooled, textEmbeds };
}

/** Graph output names registered by `buildClipTextGraph`. */
export const CLIP_OUTPUTS = {
  lastHiddenState: "last_hidden_state", penultimateHiddenState: "penultimate_hidden_state", hiddenStates: "hidden_states", pooled: "pooled", textEmbeds: "text_embeds",
} as const;

/**
 * Builds a graph from a config and weight source, registering the standard outputs. `deltas` (LoRA)
 * are added to the weights they name.
 */
export function buildClipTextGraph(config: ClipTextConfig, source: WeightSource, opts: Partial<ClipBuildOptions> & { deltas?: WeightDeltas } = {}) {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source, opts.deltas);
  const withProjection = opts.withProjection ?? clipHasProjection(config, source.keys());
  const out = buildClipTextModel(vb, config, { ...opts, withProjection });
  graph.output(CLIP_OUTPUTS.lastHiddenState, out.lastHiddenState);
  graph.output(CLIP_OUTPUTS.penultimateHiddenState, out.penultimateHiddenState);
  // Every layer's states, stacked [numHiddenLayers + 1, batch, seqLen, hidden], so that one session serves
  // any clip skip (hidden_states[-(clip_skip + 2)]): the copy is ~13 MB per CLIP-G run, a recompile per
  // skip value would hold a second 2.8 GB session.
  graph.output(CLIP_OUTPUTS.hiddenStates, F.concat(out.hiddenStates.map((t) => F.reshape(t, [1, ...t.shape])), 0));
  graph.output(CLIP_OUTPUTS.pooled, out.pooled);
  if (out.textEmbeds) graph.output(CLIP_OUTPUTS.textEmbeds, out.textEmbeds);
  return { graph, vb, withProjection, outputs: out };
}
