import type { OpDef } from "../op.js";
import { ShapeError } from "../tensor.js";

/**
 * softmax(q kᵀ / sqrt(d)) v over `heads` heads, q [B,S,H·d], k/v [B,L,H·d] -> [B,S,H·d].
 * Lowered to com.microsoft.MultiHeadAttention, which never materializes the full score matrix
 * (~200 MB instead of ~900 MB at 4096 tokens).
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
  lower(ctx, ins, outs, { heads }) { ctx.emit("MultiHeadAttention", ins, outs, { num_heads: heads }, "com.microsoft"); },
  flops(n) {
    const [q, k] = n.inputs;
    return 4 * q.shape[0] * q.shape[1] * k.shape[1] * q.shape[2];
  },
};

export const Softmax: OpDef<{}> = {
  type: "Softmax",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, ins, outs) { ctx.emit("Softmax", ins, outs, { axis: -1 }); },
  flops(n) { return 5 * n.outputs[0].numel; },
};
