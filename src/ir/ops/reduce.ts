import type { OpDef } from "../op.js";
import { type Tensor, ShapeError, broadcastShapes, normalizeAxis } from "../tensor.js";
import * as F from "../functional.js";

export interface ReduceAttrs {
  /** Normalized (non-negative), at least one. */
  axes: number[];
  keepdims: boolean;
}

function reduceShape(shape: readonly number[], { axes, keepdims }: ReduceAttrs): number[] {
  return keepdims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

type ReduceType = "ReduceSum" | "ReduceMean" | "ReduceMax" | "ReduceMin";

function reduce(type: ReduceType, grad: OpDef<ReduceAttrs>["grad"]): OpDef<ReduceAttrs> {
  return {
    type,
    infer([x], attrs) {
      if (attrs.axes.length === 0) throw new ShapeError(`${type}: no axes given for [${x.shape}]`);
      const ok = attrs.axes.every((a, i) => a >= 0 && normalizeAxis(a, x.rank, type) === a && attrs.axes.indexOf(a) === i);
      if (!ok) throw new ShapeError(`${type}: axes [${attrs.axes}] must be distinct and non-negative for [${x.shape}]`);
      return [{ shape: reduceShape(x.shape, attrs), dtype: x.dtype }];
    },
    lower(ctx, [x], outs, { axes, keepdims }) { ctx.emit(type, [x, ctx.int64s(axes)], outs, { keepdims: keepdims ? 1 : 0 }); },
    flops(n) { return n.inputs[0].numel; },
    grad,
  };
}

/** A reduction's result (or cotangent) broadcast back over x's shape. */
const expandBack = (t: Tensor, x: Tensor, attrs: ReduceAttrs) => F.expand(attrs.keepdims ? t : F.reshape(t, reduceShape(x.shape, { ...attrs, keepdims: true })), [...x.shape]);

// Every reduced element receives the cotangent of its sum (divided by the count for a mean).
export const ReduceSum = reduce("ReduceSum", ({ inputs: [x], attrs }, [g]) => [expandBack(g, x, attrs)]);
export const ReduceMean = reduce("ReduceMean", ({ inputs: [x], attrs }, [g]) => [F.mul(expandBack(g, x, attrs), 1 / attrs.axes.reduce((p, a) => p * x.shape[a], 1))]);

/** torch's amax / amin: the cotangent goes to the elements equal to the result, shared equally among ties. */
function extremumGrad(max: boolean): OpDef<ReduceAttrs>["grad"] {
  return ({ inputs: [x], outputs: [y], attrs }, [g]) => {
    const yx = expandBack(y, x, attrs);
    const hit = F.where(max ? F.less(x, yx) : F.greater(x, yx), 0, 1);
    return [F.div(F.mul(expandBack(g, x, attrs), hit), F.expand(F.reduceSum(hit, attrs.axes, true), [...x.shape]))];
  };
}

export const ReduceMax = reduce("ReduceMax", extremumGrad(true));
export const ReduceMin = reduce("ReduceMin", extremumGrad(false));

/** NumPy-broadcasts x to `shape` (ONNX Expand); the inverse of un-broadcasting in backward passes. */
export const Expand: OpDef<{ shape: number[] }> = {
  type: "Expand",
  infer([x], { shape }) {
    const out = broadcastShapes(x.shape, shape, "Expand");
    if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) throw new ShapeError(`Expand: [${x.shape}] does not expand to [${shape}]`);
    return [{ shape: [...shape], dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { shape }) { ctx.emit("Expand", [x, ctx.int64s(shape)], outs); },
  flops() { return 0; },
  grad({ inputs: [x] }, [g]) { return [F.sumTo(g, x.shape)]; },
};
