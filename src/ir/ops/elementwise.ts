import type { OpDef } from "../op.js";
import { ShapeError, broadcastShapes } from "../tensor.js";

function binary(type: "Add" | "Sub" | "Mul" | "Div" | "Pow"): OpDef<{}> {
  return {
    type,
    infer([a, b]) {
      if (a.dtype !== b.dtype) throw new ShapeError(`${type}: dtype ${a.dtype} vs ${b.dtype}`);
      return [{ shape: broadcastShapes(a.shape, b.shape, type), dtype: a.dtype }];
    },
    lower(ctx, ins, outs) { ctx.emit(type, ins, outs); },
    flops(n) { return n.outputs[0].numel; },
  };
}

export const Add = binary("Add");
export const Sub = binary("Sub");
export const Mul = binary("Mul");
export const Div = binary("Div");
export const Pow = binary("Pow");

function unary(type: string, cost = 1, attrs?: Record<string, string>): OpDef<{}> {
  return {
    type,
    infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
    lower(ctx, ins, outs) { ctx.emit(type, ins, outs, attrs); },
    flops(n) { return cost * n.outputs[0].numel; },
  };
}

export const Neg = unary("Neg");
export const Exp = unary("Exp");
export const Sqrt = unary("Sqrt");
export const Sigmoid = unary("Sigmoid", 4);
export const Tanh = unary("Tanh", 4);
export const Erf = unary("Erf", 4);
export const Sin = unary("Sin", 4);
export const Cos = unary("Cos", 4);
/** Exact (erf) GELU as torch's default; ONNX Gelu-20. */
export const Gelu = unary("Gelu", 8);

/** x * sigmoid(alpha * x): SiLU (alpha 1) and CLIP's quick_gelu (alpha 1.702). */
export const SigmoidGate: OpDef<{ alpha: number }> = {
  type: "SigmoidGate",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, [x], [y], { alpha }) {
    const s = ctx.fresh("sig");
    if (alpha === 1) ctx.emit("Sigmoid", [x], [s]);
    else {
      const ax = ctx.fresh("ax");
      ctx.emit("Mul", [x, floatConst(ctx, alpha)], [ax]);
      ctx.emit("Sigmoid", [ax], [s]);
    }
    ctx.emit("Mul", [x, s], [y]);
  },
  flops(n) { return 5 * n.outputs[0].numel; },
};

/** torch.clamp(x, lo, hi): ONNX Clip with constant bounds. */
export const Clamp: OpDef<{ lo: number; hi: number }> = {
  type: "Clamp",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, [x], outs, { lo, hi }) { ctx.emit("Clip", [x, floatConst(ctx, lo), floatConst(ctx, hi)], outs); },
  flops(n) { return n.outputs[0].numel; },
};

/** A scalar float constant as a node output (Constant op, value_float). */
function floatConst(ctx: Parameters<OpDef["lower"]>[0], v: number): string {
  const name = ctx.fresh("c");
  ctx.emit("Constant", [], [name], { value_float: { float: v } });
  return name;
}

