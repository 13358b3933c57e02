import { type OpDef, notDifferentiable } from "../op.js";
import { type Tensor, ShapeError, broadcastShapes } from "../tensor.js";
import * as F from "../functional.js";

type BinaryType = "Add" | "Sub" | "Mul" | "Div" | "Pow";

/** d(a op b) for y = a op b, before un-broadcasting to each input's shape. */
const BINARY_GRADS: Record<BinaryType, (a: Tensor, b: Tensor, y: Tensor, g: Tensor) => [Tensor, Tensor]> = {
  Add: (_a, _b, _y, g) => [g, g],
  Sub: (_a, _b, _y, g) => [g, F.neg(g)],
  Mul: (a, b, _y, g) => [F.mul(g, b), F.mul(g, a)],
  Div: (_a, b, y, g) => [F.div(g, b), F.neg(F.div(F.mul(g, y), b))],
  Pow: (a, b, y, g) => [F.mul(F.mul(g, b), F.pow(a, F.sub(b, 1))), F.mul(F.mul(g, y), F.log(a))],
};

function binary(type: BinaryType): OpDef<{}> {
  return {
    type,
    infer([a, b]) {
      if (a.dtype !== b.dtype) throw new ShapeError(`${type}: dtype ${a.dtype} vs ${b.dtype}`);
      return [{ shape: broadcastShapes(a.shape, b.shape, type), dtype: a.dtype }];
    },
    lower(ctx, ins, outs) { ctx.emit(type, ins, outs); },
    flops(n) { return n.outputs[0].numel; },
    grad({ inputs: [a, b], outputs: [y] }, [g]) {
      const [ga, gb] = BINARY_GRADS[type](a, b, y, g);
      return [F.sumTo(ga, a.shape), F.sumTo(gb, b.shape)];
    },
  };
}

export const Add = binary("Add");
export const Sub = binary("Sub");
export const Mul = binary("Mul");
export const Div = binary("Div");
export const Pow = binary("Pow");

/** `grad(x, y, g)`: the input cotangent from the input, the output and the output cotangent. */
function unary(type: string, grad: (x: Tensor, y: Tensor, g: Tensor) => Tensor, cost = 1): OpDef<{}> {
  return {
    type,
    infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
    lower(ctx, ins, outs) { ctx.emit(type, ins, outs); },
    flops(n) { return cost * n.outputs[0].numel; },
    grad({ inputs: [x], outputs: [y] }, [g]) { return [grad(x, y, g)]; },
  };
}

export const Neg = unary("Neg", (_x, _y, g) => F.neg(g));
export const Exp = unary("Exp", (_x, y, g) => F.mul(g, y));
export const Log = unary("Log", (x, _y, g) => F.div(g, x));
export const Sqrt = unary("Sqrt", (_x, y, g) => F.div(g, F.mul(y, 2)));
export const Sigmoid = unary("Sigmoid", (_x, y, g) => F.mul(F.mul(g, F.sub(1, y)), y), 4);
export const Tanh = unary("Tanh", (_x, y, g) => F.mul(g, F.sub(1, F.mul(y, y))), 4);
export const Erf = unary("Erf", (x, _y, g) => F.mul(g, F.mul(F.exp(F.neg(F.mul(x, x))), 2 / Math.sqrt(Math.PI))), 4);
export const Sin = unary("Sin", (x, _y, g) => F.mul(g, F.cos(x)), 4);
export const Cos = unary("Cos", (x, _y, g) => F.neg(F.mul(g, F.sin(x))), 4);
/** max(x, 0); torch's threshold_backward passes the gradient where the output is positive. */
export const Relu = unary("Relu", (_x, y, g) => F.where(F.greater(y, 0), g, 0));
/** torch's leaky_relu (ONNX LeakyRelu): x for x > 0, else alpha·x; the gradient g or alpha·g, split at x > 0 as torch does. */
export const LeakyRelu: OpDef<{ alpha: number }> = {
  type: "LeakyRelu",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, ins, outs, { alpha }) { ctx.emit("LeakyRelu", ins, outs, { alpha: { float: alpha } }); },
  flops(n) { return n.outputs[0].numel; },
  grad({ inputs: [x], attrs: { alpha } }, [g]) { return [F.where(F.greater(x, 0), g, F.mul(g, alpha))]; },
};
/** d gelu(x) / dx = Φ(x) + x·φ(x), as torch's gelu_backward computes it. */
export function geluDerivative(x: Tensor): Tensor {
  const cdf = F.mul(F.add(F.erf(F.mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = F.mul(F.exp(F.mul(F.mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return F.add(cdf, F.mul(x, pdf));
}

/** Exact (erf) GELU as torch's default; ONNX Gelu-20. */
export const Gelu = unary("Gelu", (x, _y, g) => F.mul(g, geluDerivative(x)), 8);

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
  // s + αx·s(1-s) = s·(1 + αx(1-s)), torch's silu_backward for α = 1.
  grad({ inputs: [x], attrs: { alpha } }, [g]) {
    const ax = alpha === 1 ? x : F.mul(x, alpha);
    const s = F.sigmoid(ax);
    return [F.mul(g, F.mul(s, F.add(F.mul(ax, F.sub(1, s)), 1)))];
  },
};

/** torch.clamp(x, lo, hi): ONNX Clip with constant bounds. */
export const Clamp: OpDef<{ lo: number; hi: number }> = {
  type: "Clamp",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, [x], outs, { lo, hi }) { ctx.emit("Clip", [x, floatConst(ctx, lo), floatConst(ctx, hi)], outs); },
  flops(n) { return n.outputs[0].numel; },
  // torch passes the gradient where lo <= x <= hi (bounds included).
  grad({ inputs: [x], attrs: { lo, hi } }, [g]) { return [F.where(F.less(x, lo), 0, F.where(F.greater(x, hi), 0, g))]; },
};

function compare(type: "Less" | "Greater"): OpDef<{}> {
  return {
    type,
    infer([a, b]) { return [{ shape: broadcastShapes(a.shape, b.shape, type), dtype: "bool" }]; },
    lower(ctx, ins, outs) { ctx.emit(type, ins, outs); },
    flops(n) { return n.outputs[0].numel; },
    grad: notDifferentiable,
  };
}

/** a < b, a > b elementwise (bool), for masks in backward rules. */
export const Less = compare("Less");
export const Greater = compare("Greater");

/** cond ? a : b with broadcasting (ONNX Where); cond is bool. */
export const Where: OpDef<{}> = {
  type: "Where",
  infer([c, a, b]) {
    if (c.dtype !== "bool" || a.dtype !== b.dtype) throw new ShapeError(`Where: condition ${c.dtype}, branches ${a.dtype}/${b.dtype}`);
    return [{ shape: broadcastShapes(c.shape, broadcastShapes(a.shape, b.shape, "Where"), "Where"), dtype: a.dtype }];
  },
  lower(ctx, ins, outs) { ctx.emit("Where", ins, outs); },
  flops(n) { return n.outputs[0].numel; },
  grad({ inputs: [c, a, b] }, [g]) { return [undefined, F.sumTo(F.where(c, g, 0), a.shape), F.sumTo(F.where(c, 0, g), b.shape)]; },
};

/** A scalar float constant as a node output (Constant op, value_float). */
function floatConst(ctx: Parameters<OpDef["lower"]>[0], v: number): string {
  const name = ctx.fresh("c");
  ctx.emit("Constant", [], [name], { value_float: { float: v } });
  return name;
}

