import type { OpDef } from "../op.js";
import { ShapeError } from "../tensor.js";

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
};
