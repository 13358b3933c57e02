import { type OpDef, notDifferentiable } from "../op.js";
import { type DType, type Tensor, ShapeError, normalizeAxis, numel } from "../tensor.js";
import * as F from "../functional.js";

const isFloat = (t: DType) => t === "float32" || t === "float16";

export const Reshape: OpDef<{ shape: number[] }> = {
  type: "Reshape",
  infer([x], { shape }) {
    if (numel(shape) !== x.numel) throw new ShapeError(`Reshape: [${x.shape}] (${x.numel} elements) cannot become [${shape}]`);
    return [{ shape: [...shape], dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { shape }) { ctx.emit("Reshape", [x, ctx.int64s(shape)], outs); },
  flops() { return 0; },
  grad({ inputs: [x] }, [g]) { return [F.reshape(g, [...x.shape])]; },
};

export const Transpose: OpDef<{ perm: number[] }> = {
  type: "Transpose",
  infer([x], { perm }) {
    if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw new ShapeError(`Transpose: bad permutation [${perm}] for [${x.shape}]`);
    return [{ shape: perm.map((p) => x.shape[p]), dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { perm }) { ctx.emit("Transpose", ins, outs, { perm }); },
  flops() { return 0; },
  grad({ attrs: { perm } }, [g]) {
    const inverse: number[] = [];
    perm.forEach((p, i) => { inverse[p] = i; });
    return [F.transpose(g, inverse)];
  },
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
  grad({ inputs, attrs: { axis } }, [g]) {
    const a = normalizeAxis(axis, g.rank, "Concat");
    let start = 0;
    return inputs.map((x) => F.slice(g, a, start, (start += x.shape[a])));
  },
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
  grad({ inputs: [x], attrs: { axis, start, end } }, [g]) {
    const a = normalizeAxis(axis, x.rank, "Slice");
    const pads = new Array<number>(2 * x.rank).fill(0);
    pads[a] = start;
    pads[x.rank + a] = x.shape[a] - end;
    return [F.pad(g, pads)];
  },
};

/** Zero padding; `pads` as ONNX orders them: every axis's leading count, then every axis's trailing count. */
export const Pad: OpDef<{ pads: number[] }> = {
  type: "Pad",
  infer([x], { pads }) {
    if (pads.length !== 2 * x.rank || pads.some((p) => !Number.isInteger(p) || p < 0)) throw new ShapeError(`Pad: pads [${pads}] for [${x.shape}]`);
    return [{ shape: x.shape.map((d, i) => d + pads[i] + pads[x.rank + i]), dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { pads }) { ctx.emit("Pad", [x, ctx.int64s(pads)], outs, { mode: "constant" }); },
  flops() { return 0; },
  grad({ inputs: [x], attrs: { pads } }, [g]) {
    let t = g;
    x.shape.forEach((d, i) => { if (pads[i] || pads[x.rank + i]) t = F.slice(t, i, pads[i], pads[i] + d); });
    return [t];
  },
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
  // Rows picked several times sum their cotangents: onehot(indices)ᵀ · g (fine for embedding-table sizes).
  grad({ inputs: [table, idx] }, [g]) {
    const rows = table.shape[0];
    const width = table.numel / rows;
    const picks = F.reshape(F.oneHot(idx, rows), [idx.numel, rows]);
    const gTable = F.matmul(F.transpose(picks, [1, 0]), F.reshape(g, [idx.numel, width]));
    return [F.reshape(gTable, [...table.shape]), undefined];
  },
};

/** indices int64 [...] -> float32 [..., depth] with a 1 at each index (ONNX OneHot; negative indices count from the end). */
export const OneHot: OpDef<{ depth: number }> = {
  type: "OneHot",
  infer([idx], { depth }) {
    if (idx.dtype !== "int64") throw new ShapeError(`OneHot: indices must be int64, got ${idx.dtype}`);
    return [{ shape: [...idx.shape, depth], dtype: "float32" }];
  },
  lower(ctx, [idx], outs, { depth }) {
    const values = ctx.fresh("onehot_values");
    ctx.emit("Constant", [], [values], { value_floats: { floats: [0, 1] } });
    ctx.emit("OneHot", [idx, ctx.int64s([depth]), values], outs, { axis: -1 });
  },
  flops() { return 0; },
  grad: notDifferentiable,
};

const ONNX_TYPES: Record<DType, number> = { float32: 1, float16: 10, int64: 7, bool: 9 };

export const Cast: OpDef<{ to: DType }> = {
  type: "Cast",
  infer([x], { to }) { return [{ shape: [...x.shape], dtype: to }]; },
  lower(ctx, ins, outs, { to }) { ctx.emit("Cast", ins, outs, { to: ONNX_TYPES[to] }); },
  flops() { return 0; },
  grad({ inputs: [x], attrs: { to } }, [g]) { return [isFloat(x.dtype) && isFloat(to) ? F.cast(g, x.dtype) : undefined]; },
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
  // Each input pixel receives the sum over the output pixels copied from it.
  grad({ inputs: [x], attrs: { size } }, [g]) {
    const [n, c, h, w] = x.shape;
    if (size[0] % h === 0 && size[1] % w === 0) {
      const [fh, fw] = [size[0] / h, size[1] / w];
      return [F.reshape(F.reduceSum(F.reshape(g, [n, c, h, fh, w, fw]), [3, 5]), [...x.shape])];
    }
    // Other sizes: sum through the 0/1 selection matrices, gx = Shᵀ · g · Sw.
    const rowsT = F.transpose(nearestSelection(x.graph, h, size[0]), [1, 0]);
    return [F.matmul(F.matmul(rowsT, g), nearestSelection(x.graph, w, size[1]))];
  },
};

/** [out, in] with a 1 where output index o reads input floor(o·in/out) (torch's float32 nearest index). */
function nearestSelection(graph: Tensor["graph"], inSize: number, outSize: number): Tensor {
  const m = new Float32Array(outSize * inSize);
  const scale = Math.fround(inSize / outSize);
  for (let o = 0; o < outSize; o++) m[o * inSize + Math.min(Math.floor(Math.fround(o * scale)), inSize - 1)] = 1;
  return graph.constant(m, [outSize, inSize]);
}

/**
 * torch.pixel_unshuffle(x, s): [N, C, H, W] -> [N, C·s·s, H/s, W/s], output channel c·s·s + i·s + j at
 * (h, w) = input (c, h·s + i, w·s + j). ONNX SpaceToDepth orders channels (i·s + j)·C + c instead,
 * so it is lowered as Reshape / Transpose / Reshape.
 */
export const PixelUnshuffle: OpDef<{ factor: number }> = {
  type: "PixelUnshuffle",
  infer([x], { factor: s }) {
    if (x.rank !== 4 || !Number.isInteger(s) || s < 1 || x.shape[2] % s !== 0 || x.shape[3] % s !== 0) {
      throw new ShapeError(`PixelUnshuffle: input [${x.shape}] must be NCHW with H and W divisible by ${s}`);
    }
    const [n, c, h, w] = x.shape;
    return [{ shape: [n, c * s * s, h / s, w / s], dtype: x.dtype }];
  },
  lower(ctx, [x], outs, { factor: s }, node) {
    const [n, c, h, w] = node.inputs[0].shape;
    const split = ctx.fresh("unshuffle_split"), moved = ctx.fresh("unshuffle_moved");
    ctx.emit("Reshape", [x, ctx.int64s([n, c, h / s, s, w / s, s])], [split]);
    ctx.emit("Transpose", [split], [moved], { perm: [0, 1, 3, 5, 2, 4] });
    ctx.emit("Reshape", [moved, ctx.int64s([n, c * s * s, h / s, w / s])], outs);
  },
  flops() { return 0; },
  // The inverse permutation (torch's pixel_shuffle): every element moves back, nothing sums.
  grad({ inputs: [x], attrs: { factor: s } }, [g]) {
    const [n, c, h, w] = x.shape;
    const moved = F.transpose(F.reshape(g, [n, c, s, s, h / s, w / s]), [0, 1, 4, 2, 5, 3]);
    return [F.reshape(moved, [n, c, h, w])];
  },
};
