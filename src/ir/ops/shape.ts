import type { OpDef } from "../op.js";
import { type DType, ShapeError, normalizeAxis, numel } from "../tensor.js";

export const Reshape: OpDef<{ shape: number[] }> = {
  type: "Reshape",
  infer([x], { shape }) {
    if (numel(shape) !== x.numel) throw new ShapeError(`Reshape: [${x.shape}] (${x.numel} elements) cannot become [${shape}]`);
    return [{ shape: [...shape], dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { shape }) { ctx.emit("Reshape", [x, ctx.int64s(shape)], outs); },
  flops() { return 0; },
};

export const Transpose: OpDef<{ perm: number[] }> = {
  type: "Transpose",
  infer([x], { perm }) {
    if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw new ShapeError(`Transpose: bad permutation [${perm}] for [${x.shape}]`);
    return [{ shape: perm.map((p) => x.shape[p]), dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { perm }) { ctx.emit("Transpose", ins, outs, { perm }); },
  flops() { return 0; },
};

export const Concat: OpDef<{ axis: number }> = {
  type: "Concat",
  infer(xs, { axis }) {
    const a = normalizeAxis(axis, xs[0].rank, "Concat");
    const shape = [...xs[0].shape];
    for (const x of xs.slice(1)) {
      if (x.rank !== shape.length || x.shape.some((d, i) => i !== a && d !== shape[i])) {
        throw new ShapeError(`Concat: [${x.shape}] does not match [${xs[0].shape}] outside axis ${axis}`);
      }
      shape[a] += x.shape[a];
    }
    return [{ shape, dtype: xs[0].dtype }];
  },
  lower(ctx, ins, outs, { axis }) { ctx.emit("Concat", ins, outs, { axis }); },
  flops() { return 0; },
};

/** x[..., start:end, ...] along one axis (step 1). */
export const Slice: OpDef<{ axis: number; start: number; end: number }> = {
  type: "Slice",
  infer([x], { axis, start, end }) {
    const a = normalizeAxis(axis, x.rank, "Slice");
    if (start < 0 || end > x.shape[a] || start >= end) throw new ShapeError(`Slice: [${start}, ${end}) outside axis ${axis} of [${x.shape}]`);
    const shape = [...x.shape];
    shape[a] = end - start;
    return [{ shape, dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { axis, start, end }) {
    ctx.emit("Slice", [x, ctx.int64s([start]), ctx.int64s([end]), ctx.int64s([axis])], outs);
  },
  flops() { return 0; },
};

/** Rows of a table: table [N, D], indices int64 [...] -> [..., D] (embedding lookup). */
export const Gather: OpDef<{}> = {
  type: "Gather",
  infer([table, idx]) {
    if (idx.dtype !== "int64") throw new ShapeError(`Gather: indices must be int64, got ${idx.dtype}`);
    return [{ shape: [...idx.shape, ...table.shape.slice(1)], dtype: table.dtype }];
  },
  lower(ctx, ins, outs) { ctx.emit("Gather", ins, outs, { axis: 0 }); },
  flops() { return 0; },
};

const ONNX_TYPES: Record<DType, number> = { float32: 1, float16: 10, int64: 7, bool: 9 };

export const Cast: OpDef<{ to: DType }> = {
  type: "Cast",
  infer([x], { to }) { return [{ shape: [...x.shape], dtype: to }]; },
  lower(ctx, ins, outs, { to }) { ctx.emit("Cast", ins, outs, { to: ONNX_TYPES[to] }); },
  flops() { return 0; },
};

/**
 * Nearest-neighbour resize of the last two axes to `size` (torch interpolate "nearest":
 * source index = floor(dst * in / out)), so odd skip sizes upsample exactly as diffusers does.
 */
export const UpsampleNearest: OpDef<{ size: [number, number] }> = {
  type: "UpsampleNearest",
  infer([x], { size }) {
    if (x.rank !== 4) throw new ShapeError(`UpsampleNearest: input [${x.shape}] must be NCHW`);
    return [{ shape: [x.shape[0], x.shape[1], size[0], size[1]], dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { size }, node) {
    const [n, c] = node.inputs[0].shape;
    ctx.emit("Resize", [x, "", "", ctx.int64s([n, c, size[0], size[1]])], outs,
      { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" });
  },
  flops() { return 0; },
};
