import type { OpDef } from "../op.js";
import { type Tensor, ShapeError } from "../tensor.js";
import * as F from "../functional.js";

/** dL/dx of y = softmax(x) over the last axis: y·(g - Σ g·y). */
function softmaxGrad(y: Tensor, g: Tensor): Tensor {
  return F.mul(y, F.sub(g, F.reduceSum(F.mul(g, y), [y.rank - 1], true)));
}

/**
 * softmax(q kᵀ / sqrt(d)) v over `heads` heads, q [B,S,H·d], k/v [B,L,H·d] -> [B,S,H·d].
 * Lowered to com.microsoft.MultiHeadAttention, which never materializes the full score matrix
 * (~200 MB instead of ~900 MB at 4096 tokens). With `ctx.unfusedAttention` (a WebGPU adapter whose fused
 * kernel fails the self-check, see runtime/webgpu-check.ts) it is MatMul + Softmax + MatMul instead.
 */
export const MultiHeadAttention: OpDef<{ heads: number }> = {
  type: "MultiHeadAttention",
  infer([q, k, v], { heads }) {
    if (q.rank !== 3 || k.rank !== 3 || v.rank !== 3) throw new ShapeError(`MultiHeadAttention: q/k/v must be [B,S,D]`);
    const [b, , d] = q.shape;
    if (k.shape[0] !== b || v.shape[0] !== b || k.shape[1] !== v.shape[1] || k.shape[2] !== d || v.shape[2] !== d || d % heads !== 0) {
      throw new ShapeError(`MultiHeadAttention: q [${q.shape}], k [${k.shape}], v [${v.shape}] with ${heads} heads`);
    }
    return [{ shape: [...q.shape], dtype: q.dtype }];
  },
  lower(ctx, ins, outs, { heads }, node) {
    if (!ctx.unfusedAttention) { ctx.emit("MultiHeadAttention", ins, outs, { num_heads: heads }, "com.microsoft"); return; }
    const [q, k] = node.inputs;
    const [b, s, d] = q.shape;
    const l = k.shape[1];
    const dh = d / heads;
    // q [B,H,S,dh], kᵀ [B,H,dh,L], v [B,H,L,dh]; the scale goes on q (S·dh values, not S·L).
    const split = (x: string, len: number, perm: number[], hint: string) => {
      const r = ctx.fresh(`${hint}_split`), t = ctx.fresh(`${hint}_heads`);
      ctx.emit("Reshape", [x, ctx.int64s([b, len, heads, dh])], [r]);
      ctx.emit("Transpose", [r], [t], { perm });
      return t;
    };
    const qh = split(ins[0], s, [0, 2, 1, 3], "q"), kt = split(ins[1], l, [0, 2, 3, 1], "k"), vh = split(ins[2], l, [0, 2, 1, 3], "v");
    const scale = ctx.fresh("attn_scale"), qs = ctx.fresh("q_scaled"), scores = ctx.fresh("scores"), p = ctx.fresh("probs");
    const o = ctx.fresh("attn_heads"), ot = ctx.fresh("attn_merged");
    ctx.emit("Constant", [], [scale], { value_float: { float: 1 / Math.sqrt(dh) } });
    ctx.emit("Mul", [qh, scale], [qs]);
    ctx.emit("MatMul", [qs, kt], [scores]);
    ctx.emit("Softmax", [scores], [p], { axis: -1 });
    ctx.emit("MatMul", [p, vh], [o]);
    ctx.emit("Transpose", [o], [ot], { perm: [0, 2, 1, 3] });
    ctx.emit("Reshape", [ot, ctx.int64s([b, s, d])], outs);
  },
  flops(n) {
    const [q, k] = n.inputs;
    return 4 * q.shape[0] * q.shape[1] * k.shape[1] * q.shape[2];
  },
  // Recomputes the attention probabilities per head with MatMul + Softmax (the fused kernel keeps none);
  // the [B, H, S, L] score matrix is fine at training sizes.
  grad({ inputs: [q, k, v], attrs: { heads } }, [g]) {
    const [b, , d] = q.shape;
    const dh = d / heads;
    const split = (t: Tensor) => F.transpose(F.reshape(t, [b, t.shape[1], heads, dh]), [0, 2, 1, 3]);
    const merge = (t: Tensor) => F.reshape(F.transpose(t, [0, 2, 1, 3]), [b, t.shape[2], d]);
    const swapLast = (t: Tensor) => F.transpose(t, [0, 1, 3, 2]);
    const scale = 1 / Math.sqrt(dh);
    const [qh, kh, vh, gh] = [split(q), split(k), split(v), split(g)];
    const p = F.softmax(F.mul(F.matmulTransB(qh, kh), scale));
    const dScores = F.mul(softmaxGrad(p, F.matmulTransB(gh, vh)), scale);
    return [merge(F.matmul(dScores, kh)), merge(F.matmul(swapLast(dScores), qh)), merge(F.matmul(swapLast(p), gh))];
  },
};

export const Softmax: OpDef<{}> = {
  type: "Softmax",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, ins, outs) { ctx.emit("Softmax", ins, outs, { axis: -1 }); },
  flops(n) { return 5 * n.outputs[0].numel; },
  grad({ outputs: [y] }, [g]) { return [softmaxGrad(y, g)]; },
};
