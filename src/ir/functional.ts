/**
 * The functional API models are written in: each function adds one IR op (see ops/) to the
 * graph its inputs belong to. Numbers given where a tensor is expected become scalar constants.
 */
import { Add, Sub, Mul, Div, Pow, Neg, Exp, Sqrt, Sigmoid, Tanh, Erf, Sin, Cos, Gelu, Relu, LeakyRelu, SigmoidGate, Clamp, Log, Less, Greater, Where } from "./ops/elementwise.js";
import { MatMul } from "./ops/matmul.js";
import { Conv2d, ConvTranspose2d, type ConvAttrs } from "./ops/conv.js";
import { AddLayerNorm, GroupNorm, LayerNorm } from "./ops/normalization.js";
import { Reshape, Transpose, Concat, Slice, Gather, Cast, UpsampleNearest, Pad, OneHot, PixelUnshuffle } from "./ops/shape.js";
import { ReduceSum, ReduceMean, ReduceMax, ReduceMin, Expand } from "./ops/reduce.js";
import { MultiHeadAttention, Softmax } from "./ops/attention.js";
import { BiasGeglu } from "./ops/geglu.js";
import type { OpDef } from "./op.js";
import { type DType, Tensor, ShapeError } from "./tensor.js";

type Operand = Tensor | number;

function one<A>(op: OpDef<A>, inputs: Tensor[], attrs: A): Tensor {
  return inputs[0].graph.apply(op, inputs, attrs)[0];
}

function binary(op: OpDef<{}>, a: Operand, b: Operand): Tensor {
  const ref = a instanceof Tensor ? a : (b as Tensor);
  const ta = a instanceof Tensor ? a : ref.graph.constant(Float32Array.of(a), []);
  const tb = b instanceof Tensor ? b : ref.graph.constant(Float32Array.of(b), []);
  return one(op, [ta, tb], {});
}

const scalarLike = (ref: Tensor, v: Operand) => (v instanceof Tensor ? v : ref.graph.constant(Float32Array.of(v), []));

export const add = (a: Operand, b: Operand) => binary(Add, a, b);
export const sub = (a: Operand, b: Operand) => binary(Sub, a, b);
export const mul = (a: Operand, b: Operand) => binary(Mul, a, b);
export const div = (a: Operand, b: Operand) => binary(Div, a, b);
export const pow = (a: Operand, b: Operand) => binary(Pow, a, b);

export const neg = (x: Tensor) => one(Neg, [x], {});
export const exp = (x: Tensor) => one(Exp, [x], {});
export const sqrt = (x: Tensor) => one(Sqrt, [x], {});
export const sigmoid = (x: Tensor) => one(Sigmoid, [x], {});
export const tanh = (x: Tensor) => one(Tanh, [x], {});
export const erf = (x: Tensor) => one(Erf, [x], {});
export const sin = (x: Tensor) => one(Sin, [x], {});
export const cos = (x: Tensor) => one(Cos, [x], {});
export const gelu = (x: Tensor) => one(Gelu, [x], {});
/** diffusers' GEGLU on a projection's product before its bias: (x + bias) split in halves h, gate; h · gelu(gate). */
export const biasGeglu = (x: Tensor, bias: Tensor) => one(BiasGeglu, [x, bias], {});
export const relu = (x: Tensor) => one(Relu, [x], {});
/** torch.nn.functional.leaky_relu(x, negativeSlope) (ESRGAN uses 0.2). */
export const leakyRelu = (x: Tensor, negativeSlope = 0.01) => one(LeakyRelu, [x], { alpha: negativeSlope });
export const silu = (x: Tensor) => one(SigmoidGate, [x], { alpha: 1 });
export const quickGelu = (x: Tensor) => one(SigmoidGate, [x], { alpha: 1.702 });
export const clamp = (x: Tensor, lo: number, hi: number) => one(Clamp, [x], { lo, hi });
export const log = (x: Tensor) => one(Log, [x], {});
export const less = (a: Operand, b: Operand) => binary(Less, a, b);
export const greater = (a: Operand, b: Operand) => binary(Greater, a, b);
/** cond ? a : b (cond bool); numbers become float scalars. */
export const where = (cond: Tensor, a: Operand, b: Operand) => one(Where, [cond, scalarLike(cond, a), scalarLike(cond, b)], {});

export const matmul = (a: Tensor, b: Tensor) => one(MatMul, [a, b], {});
/** a @ bᵀ for b stored [N, K], as torch's Linear keeps its weight. */
export const matmulTransB = (a: Tensor, b: Tensor) => one(MatMul, [a, b], { transB: true });

export function conv2d(x: Tensor, w: Tensor, b: Tensor | undefined, attrs: Partial<ConvAttrs> = {}): Tensor {
  const full: ConvAttrs = { stride: attrs.stride ?? 1, pads: attrs.pads ?? [0, 0, 0, 0], groups: attrs.groups ?? 1 };
  if (attrs.dilation !== undefined && attrs.dilation !== 1) full.dilation = attrs.dilation;
  return one(Conv2d, b ? [x, w, b] : [x, w], full);
}
/** The adjoint of conv2d (no bias): weight [Cin, Cout/groups, kh, kw]. */
export function convTranspose2d(x: Tensor, w: Tensor, attrs: Partial<ConvAttrs> & { outputPadding?: [number, number] } = {}): Tensor {
  return one(ConvTranspose2d, [x, w], {
    stride: attrs.stride ?? 1, pads: attrs.pads ?? [0, 0, 0, 0], groups: attrs.groups ?? 1, dilation: attrs.dilation ?? 1,
    outputPadding: attrs.outputPadding ?? [0, 0],
  });
}

export const groupNorm = (x: Tensor, w: Tensor, b: Tensor, groups: number, eps: number) => one(GroupNorm, [x, w, b], { groups, eps });
export const layerNorm = (x: Tensor, w: Tensor, b: Tensor, eps: number) => one(LayerNorm, [x, w, b], { eps });
/** [layerNorm(x + skip), x + skip]: a residual sum and the LayerNorm after it, in one op. */
export function addLayerNorm(x: Tensor, skip: Tensor, w: Tensor, b: Tensor, eps: number): [Tensor, Tensor] {
  const [normed, sum] = x.graph.apply(AddLayerNorm, [x, skip, w, b], { eps });
  return [normed, sum];
}

/** Reshape; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const known = shape.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const resolved = shape.map((d) => (d === -1 ? x.numel / known : d));
  if (shape.filter((d) => d === -1).length > 1 || !resolved.every(Number.isInteger)) {
    throw new ShapeError(`reshape: cannot view [${x.shape}] as [${shape}]`);
  }
  return one(Reshape, [x], { shape: resolved });
}
export const transpose = (x: Tensor, perm: number[]) => one(Transpose, [x], { perm });
export const concat = (xs: Tensor[], axis: number) => (xs.length === 1 ? xs[0] : one(Concat, xs, { axis }));
export const slice = (x: Tensor, axis: number, start: number, end: number) => one(Slice, [x], { axis, start, end });
/** torch.chunk into equal parts along an axis. */
export function chunk(x: Tensor, parts: number, axis: number): Tensor[] {
  const a = axis < 0 ? axis + x.rank : axis;
  const size = x.shape[a] / parts;
  if (!Number.isInteger(size)) throw new ShapeError(`chunk: axis ${axis} of [${x.shape}] not divisible by ${parts}`);
  return Array.from({ length: parts }, (_, i) => slice(x, a, i * size, (i + 1) * size));
}
export const gather = (table: Tensor, indices: Tensor) => one(Gather, [table, indices], {});
export const cast = (x: Tensor, to: DType) => (x.dtype === to ? x : one(Cast, [x], { to }));
/** Nearest upsampling: by 2 (default) or to an explicit [h, w]. */
export const upsampleNearest = (x: Tensor, size: [number, number] = [x.shape[2] * 2, x.shape[3] * 2]) => one(UpsampleNearest, [x], { size });
/** torch.pixel_unshuffle(x, factor): space to channels, torch's channel order. */
export const pixelUnshuffle = (x: Tensor, factor: number) => (factor === 1 ? x : one(PixelUnshuffle, [x], { factor }));
export const softmax = (x: Tensor) => one(Softmax, [x], {});
export const multiHeadAttention = (q: Tensor, k: Tensor, v: Tensor, heads: number) => one(MultiHeadAttention, [q, k, v], { heads });

const axesOf = (x: Tensor, axes: number[]) => [...new Set(axes.map((a) => (a < 0 ? a + x.rank : a)))].sort((a, b) => a - b);
/** Sum over `axes` (negative counts from the end); no axes: x itself. */
export function reduceSum(x: Tensor, axes: number[], keepdims = false): Tensor {
  return axes.length === 0 ? x : one(ReduceSum, [x], { axes: axesOf(x, axes), keepdims });
}
export function reduceMean(x: Tensor, axes: number[], keepdims = false): Tensor {
  return axes.length === 0 ? x : one(ReduceMean, [x], { axes: axesOf(x, axes), keepdims });
}
export function reduceMax(x: Tensor, axes: number[], keepdims = false): Tensor {
  return axes.length === 0 ? x : one(ReduceMax, [x], { axes: axesOf(x, axes), keepdims });
}
export function reduceMin(x: Tensor, axes: number[], keepdims = false): Tensor {
  return axes.length === 0 ? x : one(ReduceMin, [x], { axes: axesOf(x, axes), keepdims });
}
const allAxes = (x: Tensor) => x.shape.map((_, i) => i);
/** Sum / mean of every element: a scalar (shape []). */
export const sum = (x: Tensor) => (x.rank === 0 ? x : reduceSum(x, allAxes(x)));
export const mean = (x: Tensor) => (x.rank === 0 ? x : reduceMean(x, allAxes(x)));
/** NumPy-broadcast x to `shape`. */
export const expand = (x: Tensor, shape: number[]) => (sameShape(x.shape, shape) ? x : one(Expand, [x], { shape }));
/** Un-broadcasting (torch's sum_to_size): sums the axes along which x was broadcast from `shape`. */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(x.shape, shape)) return x;
  const lead = x.rank - shape.length;
  if (lead < 0) throw new ShapeError(`sumTo: [${x.shape}] has fewer axes than [${shape}]`);
  const axes = x.shape.map((d, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && x.shape[i] !== 1));
  const r = reduceSum(x, axes);
  return sameShape(r.shape, shape) ? r : reshape(r, [...shape]);
}
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
/** Zero padding, ONNX order: leading counts of every axis, then trailing counts. */
export const pad = (x: Tensor, pads: number[]) => (pads.every((p) => p === 0) ? x : one(Pad, [x], { pads }));
export const oneHot = (indices: Tensor, depth: number) => one(OneHot, [indices], { depth });
