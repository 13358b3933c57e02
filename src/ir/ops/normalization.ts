import type { OpDef } from "../op.js";
import { type Tensor, ShapeError } from "../tensor.js";
import * as F from "../functional.js";

/**
 * Backward of (x - mean)·rstd over the last axis of xr (the normalized groups), recomputing the
 * statistics: dx = rstd·(dxhat - mean(dxhat) - xhat·mean(dxhat·xhat)). Returns xhat too, for dW.
 */
function normalizedGrad(xr: Tensor, dxhat: Tensor, eps: number): { dx: Tensor; xhat: Tensor } {
  const last = xr.rank - 1;
  const mean = F.reduceMean(xr, [last], true);
  const centered = F.sub(xr, mean);
  const rstd = F.div(1, F.sqrt(F.add(F.reduceMean(F.mul(centered, centered), [last], true), eps)));
  const xhat = F.mul(centered, rstd);
  const inner = F.sub(F.sub(dxhat, F.reduceMean(dxhat, [last], true)), F.mul(xhat, F.reduceMean(F.mul(dxhat, xhat), [last], true)));
  return { dx: F.mul(inner, rstd), xhat };
}

const allBut = (rank: number, keep: number) => Array.from({ length: rank }, (_, i) => i).filter((i) => i !== keep);

/** torch.nn.GroupNorm on NCHW (or NC...) with per-channel affine: ONNX GroupNormalization-21. */
export const GroupNorm: OpDef<{ groups: number; eps: number }> = {
  type: "GroupNorm",
  infer([x, w, b], { groups }) {
    const c = x.shape[1];
    if (x.rank < 3 || c % groups !== 0) throw new ShapeError(`GroupNorm: ${c} channels of [${x.shape}] not divisible into ${groups} groups`);
    if (w.shape[0] !== c || b.shape[0] !== c) throw new ShapeError(`GroupNorm: affine [${w.shape}]/[${b.shape}] for ${c} channels`);
    return [{ shape: [...x.shape], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { groups, eps }) {
    ctx.emit("GroupNormalization", ins, outs, { num_groups: groups, epsilon: { float: eps } });
  },
  flops(n) { return 8 * n.outputs[0].numel; },
  grad({ inputs: [x, w], attrs: { groups, eps } }, [g]) {
    const [n, c] = x.shape;
    const perChannel = x.shape.map((d, i) => (i === 1 ? c : 1));
    const { dx, xhat } = normalizedGrad(F.reshape(x, [n, groups, -1]), F.reshape(F.mul(g, F.reshape(w, perChannel)), [n, groups, -1]), eps);
    const axes = allBut(x.rank, 1);
    return [F.reshape(dx, [...x.shape]), F.reduceSum(F.mul(g, F.reshape(xhat, [...x.shape])), axes), F.reduceSum(g, axes)];
  },
};

/** torch.nn.LayerNorm over the last axis: ONNX LayerNormalization-17. */
export const LayerNorm: OpDef<{ eps: number }> = {
  type: "LayerNorm",
  infer([x, w, b]) {
    const d = x.shape[x.rank - 1];
    if (w.shape[0] !== d || b.shape[0] !== d) throw new ShapeError(`LayerNorm: affine [${w.shape}] for last dim ${d} of [${x.shape}]`);
    return [{ shape: [...x.shape], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { eps }) {
    ctx.emit("LayerNormalization", ins, outs, { axis: -1, epsilon: { float: eps } });
  },
  flops(n) { return 8 * n.outputs[0].numel; },
  grad({ inputs: [x, w], attrs: { eps } }, [g]) {
    const { dx, xhat } = normalizedGrad(x, F.mul(g, w), eps);
    const axes = allBut(x.rank, x.rank - 1);
    return [dx, F.reduceSum(F.mul(g, xhat), axes), F.reduceSum(g, axes)];
  },
};
