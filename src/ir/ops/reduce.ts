import type { OpDef } from "../op.js";
import { ShapeError, broadcastShapes, normalizeAxis } from "../tensor.js";
import * as F from "../functional.js";

export interface ReduceAttrs {
  /** Normalized (non-negative), at least one. */
  axes: number[];
  keepdims: boolean;
}

function reduceShape(shape: readonly number[], { axes, keepdims }: ReduceAttrs): number[] {
  return keepdims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

function reduce(type: "ReduceSum" | "ReduceMean"): OpDef<ReduceAttrs> {
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
    // Every reduced element receives the cotangent of its sum (divided by the count for a mean).
    grad({ inputs: [x], attrs }, [g]) {
      const kept = F.expand(attrs.keepdims ? g : F.reshape(g, reduceShape(x.shape, { ...attrs, keepdims: true })), [...x.shape]);
      if (type === "ReduceSum") return [kept];
      return [F.mul(kept, 1 / attrs.axes.reduce((p, a) => p * x.shape[a], 1))];
    },
  };
}

export const ReduceSum = reduce("ReduceSum");
export const ReduceMean = reduce("ReduceMean");

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
