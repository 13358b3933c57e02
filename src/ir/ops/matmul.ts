import type { OpDef } from "../op.js";
import { ShapeError, broadcastShapes } from "../tensor.js";

/** Batched matrix product with NumPy broadcasting of the batch dims (ONNX MatMul). */
export const MatMul: OpDef<{}> = {
  type: "MatMul",
  infer([a, b]) {
    if (a.rank < 2 || b.rank < 2) throw new ShapeError(`MatMul: operands must be at least 2-D, got [${a.shape}] and [${b.shape}]`);
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k !== k2) throw new ShapeError(`MatMul: inner dimensions differ: [${a.shape}] x [${b.shape}]`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), "MatMul batch");
    return [{ shape: [...batch, m, n], dtype: a.dtype }];
  },
  lower(ctx, ins, outs) { ctx.emit("MatMul", ins, outs); },
  flops(n) {
    const [a] = n.inputs;
    return 2 * n.outputs[0].numel * a.shape[a.rank - 1];
  },
};
