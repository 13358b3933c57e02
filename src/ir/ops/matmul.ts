import type { OpDef } from "../op.js";
import { type Tensor, ShapeError, broadcastShapes } from "../tensor.js";
import * as F from "../functional.js";
import { Q8_BLOCK } from "../onnx/q8-weights.js";

/** Swaps the last two axes. */
function mT(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return F.transpose(x, perm);
}

/** Batched matrix product with NumPy broadcasting of the batch dims (ONNX MatMul). */
export const MatMul: OpDef<{ transB?: boolean }> = {
  type: "MatMul",
  infer([a, b], { transB }) {
    if (a.rank < 2 || b.rank < 2) throw new ShapeError(`MatMul: operands must be at least 2-D, got [${a.shape}] and [${b.shape}]`);
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = transB ? b.shape.slice(-2).reverse() : b.shape.slice(-2);
    if (k !== k2) throw new ShapeError(`MatMul: inner dimensions differ: [${a.shape}] x [${b.shape}]`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), "MatMul batch");
    return [{ shape: [...batch, m, n], dtype: a.dtype }];
  },
  // On the CPU, transB reads a [N, K] weight as is (torch's Linear layout) through FusedMatMul: no
  // transposed copy of the weights. The WebGPU provider has no FusedMatMul: transpose explicitly.
  lower(ctx, [a, b], outs, { transB }, node) {
    const w = node.inputs[1];
    // A Linear layer (x·Wᵀ, W [N, K] as torch stores it) with 8-bit weights: MatMulNBits reads W's layout as is.
    const q8 = transB && !ctx.weightsOnTheLeft ? ctx.q8Weight(w, "linear") : undefined;
    if (q8) {
      const [n, k] = w.shape;
      ctx.emit("MatMulNBits", [a, q8.data, q8.scales], outs, { K: k, N: n, bits: 8, block_size: Q8_BLOCK }, "com.microsoft");
      return;
    }
    if (ctx.weightsOnTheLeft && ctx.device === "cpu" && w.rank === 2 && ctx.isWeight(w)) {
      // a·Wᵀ = (W·aᵀ)ᵀ and a·W = (Wᵀ·aᵀ)ᵀ: the weight as the left operand is not pre-packed
      const t = ctx.fresh("wleft");
      ctx.emit("FusedMatMul", [b, a], [t], transB ? { transB: 1 } : { transA: 1, transB: 1 }, "com.microsoft");
      const r = node.outputs[0].rank;
      ctx.emit("Transpose", [t], outs, { perm: [...Array(r - 2).keys(), r - 1, r - 2] });
      return;
    }
    if (!transB) ctx.emit("MatMul", [a, b], outs);
    else if (ctx.device === "cpu") ctx.emit("FusedMatMul", [a, b], outs, { transB: 1 }, "com.microsoft");
    else {
      const r = node.inputs[1].rank;
      const perm = [...Array(r - 2).keys(), r - 1, r - 2];
      const bt = ctx.fresh("bT");
      ctx.emit("Transpose", [b], [bt], { perm });
      ctx.emit("MatMul", [a, bt], outs);
    }
  },
  flops(n) {
    const [a] = n.inputs;
    return 2 * n.outputs[0].numel * a.shape[a.rank - 1];
  },
  // y = a·b: da = g·bᵀ, db = aᵀ·g; y = a·bᵀ: da = g·b, db = gᵀ·a. Broadcast batch dims are summed.
  grad({ inputs: [a, b], attrs: { transB } }, [g]) {
    const ga = F.sumTo(transB ? F.matmul(g, b) : F.matmulTransB(g, b), a.shape);
    let gb: Tensor;
    if (b.rank === 2 && a.rank > 2) {
      // A weight shared over the batch: one [K, M]·[M, N] product instead of a batched one and a sum.
      const a2 = F.reshape(a, [-1, a.shape[a.rank - 1]]);
      const g2 = F.reshape(g, [-1, g.shape[g.rank - 1]]);
      gb = transB ? F.matmul(mT(g2), a2) : F.matmul(mT(a2), g2);
    } else {
      gb = F.sumTo(transB ? F.matmul(mT(g), a) : F.matmul(mT(a), g), b.shape);
    }
    return [ga, gb];
  },
};
