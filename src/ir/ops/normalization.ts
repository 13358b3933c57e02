import type { LoweringContext, OpDef } from "../op.js";
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

/** The one epsilon of every InstanceNormalization node the WebGPU lowering emits (the VAE's and the UNet attention's GroupNorm eps). */
export const INSTANCE_NORM_EPSILON = 1e-6;

/**
 * GroupNorm for onnxruntime's WebGPU provider, which has no GroupNormalization kernel: it inlines
 * the ONNX function (about 28 kernels a call, with shape arithmetic on the CPU). InstanceNormalization
 * over [N, groups, C/groups·H·W] computes the same statistics in two kernels (accumulating in f32
 * even for fp16 inputs), then the per-channel affine: measured in docs/webgpu-kernels.md.
 */
function lowerAsInstanceNorm(ctx: LoweringContext, [x, w, b]: string[], out: string, shape: readonly number[], groups: number, eps: number): void {
  const [n, c] = shape;
  const grouped = ctx.fresh("gn_grouped"), normed = ctx.fresh("gn_normed"), back = ctx.fresh("gn_back");
  const ones = ctx.fresh("gn_ones"), zeros = ctx.fresh("gn_zeros"), w3 = ctx.fresh("gn_w"), b3 = ctx.fresh("gn_b"), scaled = ctx.fresh("gn_scaled");
  ctx.emit("Reshape", [x, ctx.int64s([n, groups, -1])], [grouped]);
  ctx.emit("Constant", [], [ones], { value_floats: { floats: new Array(groups).fill(1) } });
  ctx.emit("Constant", [], [zeros], { value_floats: { floats: new Array(groups).fill(0) } });
  // onnxruntime's WebGPU InstanceNormalization bakes epsilon into a shader it caches without it: every
  // later call of the same shape class reuses the first epsilon (docs/onnxruntime-webgpu-instancenorm-bug.md).
  // So every call here uses INSTANCE_NORM_EPSILON, the input scaled by k = sqrt(that / eps):
  // (kx - km) / sqrt(k²var + k²eps) is (x - m) / sqrt(var + eps). k <= 1 for eps >= 1e-6: no fp16 overflow.
  let input = grouped;
  if (eps !== INSTANCE_NORM_EPSILON) {
    const k = ctx.fresh("gn_eps_scale"), scaledIn = ctx.fresh("gn_eps_scaled");
    ctx.emit("Constant", [], [k], { value_float: { float: Math.sqrt(INSTANCE_NORM_EPSILON / eps) } });
    ctx.emit("Mul", [grouped, k], [scaledIn]);
    input = scaledIn;
  }
  ctx.emit("InstanceNormalization", [input, ones, zeros], [normed], { epsilon: { float: INSTANCE_NORM_EPSILON } });
  ctx.emit("Reshape", [normed, ctx.int64s([...shape])], [back]);
  const perChannel = shape.map((d, i) => (i === 1 ? c : 1)).slice(1);
  ctx.emit("Reshape", [w, ctx.int64s(perChannel)], [w3]);
  ctx.emit("Reshape", [b, ctx.int64s(perChannel)], [b3]);
  ctx.emit("Mul", [back, w3], [scaled]);
  ctx.emit("Add", [scaled, b3], [out]);
}

/** torch.nn.GroupNorm on NCHW (or NC...) with per-channel affine: ONNX GroupNormalization-21. */
export const GroupNorm: OpDef<{ groups: number; eps: number }> = {
  type: "GroupNorm",
  infer([x, w, b], { groups }) {
    const c = x.shape[1];
    if (x.rank < 3 || c % groups !== 0) throw new ShapeError(`GroupNorm: ${c} channels of [${x.shape}] not divisible into ${groups} groups`);
    if (w.shape[0] !== c || b.shape[0] !== c) throw new ShapeError(`GroupNorm: affine [${w.shape}]/[${b.shape}] for ${c} channels`);
    return [{ shape: [...x.shape], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { groups, eps }, node) {
    if (ctx.device === "webgpu") lowerAsInstanceNorm(ctx, ins, outs[0], node.inputs[0].shape, groups, eps);
    else ctx.emit("GroupNormalization", ins, outs, { num_groups: groups, epsilon: { float: eps } });
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

/**
 * A residual sum and the LayerNorm that reads it, as each BasicTransformerBlock has twice: outputs
 * [layerNorm(x + skip), x + skip]. One com.microsoft.SkipLayerNormalization kernel on onnxruntime's WebGPU
 * provider (its fusion does not fire on our graphs); Add + LayerNormalization elsewhere, as before.
 */
export const AddLayerNorm: OpDef<{ eps: number }> = {
  type: "AddLayerNorm",
  infer([x, skip, w, b]) {
    const d = x.shape[x.rank - 1];
    if (skip.shape.length !== x.rank || skip.shape.some((v, i) => v !== x.shape[i])) throw new ShapeError(`AddLayerNorm: skip [${skip.shape}] must match x [${x.shape}]`);
    if (w.shape[0] !== d || b.shape[0] !== d) throw new ShapeError(`AddLayerNorm: affine [${w.shape}] for last dim ${d} of [${x.shape}]`);
    return [{ shape: [...x.shape], dtype: x.dtype }, { shape: [...x.shape], dtype: x.dtype }];
  },
  lower(ctx, [x, skip, w, b], [normed, sum], { eps }) {
    if (ctx.device === "webgpu") {
      ctx.emit("SkipLayerNormalization", [x, skip, w, b], [normed, "", "", sum], { epsilon: { float: eps } }, "com.microsoft");
      return;
    }
    ctx.emit("Add", [x, skip], [sum]);
    ctx.emit("LayerNormalization", [sum, w, b], [normed], { axis: -1, epsilon: { float: eps } });
  },
  flops(n) { return 9 * n.outputs[0].numel; },
  grad(node, [gNormed, gSum]) {
    const [, , w, b] = node.inputs;
    const sum = node.outputs[1];
    const [dSum, dw, db] = LayerNorm.grad!({ ...node, inputs: [sum, w, b], outputs: [node.outputs[0]] }, [gNormed]) as Tensor[];
    const dx = F.add(dSum, gSum);
    return [dx, dx, dw, db];
  },
};
