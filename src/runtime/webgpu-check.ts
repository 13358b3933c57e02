import * as ort from "onnxruntime-node";
import { Graph } from "../ir/graph.js";
import { MultiHeadAttention } from "../ir/ops/attention.js";
import { lowerToOnnx } from "../ir/onnx/lower.js";
import { webgpuProvider } from "./webgpu-options.js";

/**
 * onnxruntime's WebGPU MultiHeadAttention is wrong on some adapters (its subgroup kernel at subgroup
 * sizes 4/8/16, see docs/onnxruntime-webgpu-mha-bug.md). Before the first WebGPU session, one tiny
 * attention (1 batch, 2 heads of 8, 64 query and 64 key tokens: the failure needs >= 32 query tokens)
 * runs on the adapter and is compared with the same attention computed here.
 */
export interface AttentionVerdict {
  /** True: lower attention as MatMul + Softmax + MatMul for this adapter. */
  unfused: boolean;
  relL2: number;
}

const B = 1, S = 64, L = 64, H = 2, DH = 8, D = H * DH;
export const ATTENTION_TOLERANCE = 1e-3;

/** Deterministic values in [-1, 1) (an LCG: no dependence on Math.random). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; out[i] = x / 2 ** 31 - 1; }
  return out;
}

/** softmax(q kᵀ / sqrt(dh)) v per head, in float64; q/k/v [B, tokens, H·dh]. */
export function referenceAttention(q: Float32Array, k: Float32Array, v: Float32Array, b: number, s: number, l: number, heads: number, dh: number): Float64Array {
  const d = heads * dh, out = new Float64Array(b * s * d), row = new Float64Array(l);
  for (let n = 0; n < b; n++) for (let h = 0; h < heads; h++) for (let i = 0; i < s; i++) {
    let max = -Infinity;
    for (let j = 0; j < l; j++) {
      let dot = 0;
      for (let c = 0; c < dh; c++) dot += q[(n * s + i) * d + h * dh + c] * k[(n * l + j) * d + h * dh + c];
      row[j] = dot / Math.sqrt(dh);
      max = Math.max(max, row[j]);
    }
    let sum = 0;
    for (let j = 0; j < l; j++) { row[j] = Math.exp(row[j] - max); sum += row[j]; }
    for (let c = 0; c < dh; c++) {
      let acc = 0;
      for (let j = 0; j < l; j++) acc += row[j] * v[(n * l + j) * d + h * dh + c];
      out[(n * s + i) * d + h * dh + c] = acc / sum;
    }
  }
  return out;
}

export function relL2(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < expected.length; i++) { num += (actual[i] - expected[i]) ** 2; den += expected[i] ** 2; }
  const r = Math.sqrt(num / Math.max(den, 1e-30));
  return Number.isNaN(r) ? Infinity : r;
}

/** The attention graph as ONNX bytes (fused or not), for the check and for tests. */
export function attentionModel(unfused = false): Uint8Array {
  const g = new Graph();
  const [q, k, v] = ["q", "k", "v"].map((n, i) => g.input(n, [B, i === 0 ? S : L, D]));
  g.output("out", g.apply(MultiHeadAttention, [q, k, v], { heads: H })[0]);
  return lowerToOnnx(g, "attention-check", { device: "webgpu", unfusedAttention: unfused }).bytes;
}

async function check(): Promise<AttentionVerdict> {
  const q = values(B * S * D, 1), k = values(B * L * D, 2), v = values(B * L * D, 3);
  const session = await ort.InferenceSession.create(attentionModel(), { executionProviders: [webgpuProvider()] });
  try {
    const result = await session.run({
      q: new ort.Tensor("float32", q, [B, S, D]), k: new ort.Tensor("float32", k, [B, L, D]), v: new ort.Tensor("float32", v, [B, L, D]),
    });
    const r = relL2(result.out.data as Float32Array, referenceAttention(q, k, v, B, S, L, H, DH));
    return { unfused: !(r <= ATTENTION_TOLERANCE), relL2: r };
  } finally {
    await session.release();
  }
}

let verdict: Promise<AttentionVerdict> | undefined;

/** The verdict for this process's WebGPU adapter, computed once (the adapter does not change). */
export function webgpuAttentionVerdict(): Promise<AttentionVerdict> {
  verdict ??= check();
  verdict.catch(() => { verdict = undefined; }); // a failed start (no adapter) may be retried
  return verdict;
}
