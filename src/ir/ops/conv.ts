import type { OpDef } from "../op.js";
import { type Tensor, ShapeError } from "../tensor.js";
import * as F from "../functional.js";
import { lowerConvIm2col } from "./conv-im2col.js";

export interface ConvAttrs {
  stride: number;
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  groups: number;
  /** Kernel dilation; absent means 1 (the weight gradient of a strided conv is a dilated conv). */
  dilation?: number;
}

/** Pads that torch's Conv2d(padding=p) has: the same on both sides of each axis, some nonzero. */
const isCircular = (p: readonly number[]): boolean => p[0] === p[2] && p[1] === p[3] && (p[0] > 0 || p[1] > 0);

/** 2-D convolution, NCHW, weight [Cout, Cin/groups, kh, kw]; optional bias [Cout]. */
export const Conv2d: OpDef<ConvAttrs> = {
  type: "Conv2d",
  infer([x, w, b], { stride, pads, groups, dilation = 1 }) {
    if (x.rank !== 4 || w.rank !== 4) throw new ShapeError(`Conv2d: input [${x.shape}] and weight [${w.shape}] must be 4-D`);
    const [n, c, h, wd] = x.shape;
    const [co, ci, kh, kw] = w.shape;
    if (ci * groups !== c) throw new ShapeError(`Conv2d: input has ${c} channels, weight [${w.shape}] expects ${ci * groups}`);
    if (b && (b.rank !== 1 || b.shape[0] !== co)) throw new ShapeError(`Conv2d: bias [${b.shape}] does not match ${co} output channels`);
    const ho = Math.floor((h + pads[0] + pads[2] - dilation * (kh - 1) - 1) / stride) + 1;
    const wo = Math.floor((wd + pads[1] + pads[3] - dilation * (kw - 1) - 1) / stride) + 1;
    if (ho <= 0 || wo <= 0) throw new ShapeError(`Conv2d: input [${x.shape}] too small for kernel ${kh}x${kw}`);
    return [{ shape: [n, co, ho, wo], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { stride, pads, groups, dilation }, node) {
    const [, , kh, kw] = node.inputs[1].shape;
    if (lowerConvIm2col(ctx, ins, outs, { stride, pads, groups, dilation }, node.inputs, node.outputs[0], !!ctx.circularConvPads && isCircular(pads))) return;
    if (ctx.circularConvPads && isCircular(pads)) {
      // torch's circular mode: wrap the input (ONNX pads: begins of N, C, H, W, then the ends), no conv pads
      const wrapped = ctx.fresh("wrap");
      ctx.emit("Pad", [ins[0], ctx.int64s([0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]])], [wrapped], { mode: "wrap" });
      ins = [wrapped, ...ins.slice(1)];
      pads = [0, 0, 0, 0];
    }
    ctx.emit("Conv", ins, outs, {
      kernel_shape: [kh, kw], strides: [stride, stride], pads: [pads[0], pads[1], pads[2], pads[3]], group: groups,
      ...(dilation !== undefined && dilation !== 1 ? { dilations: [dilation, dilation] } : {}),
    });
  },
  flops(n) {
    const [, ci, kh, kw] = n.inputs[1].shape;
    return 2 * n.outputs[0].numel * ci * kh * kw;
  },
  grad({ inputs: [x, w, b], attrs }, [g]) {
    const { stride, pads, dilation = 1 } = attrs;
    const [, , kh, kw] = w.shape;
    // Rows/columns at the far edge that no output window reached: ConvTranspose adds them back as zeros.
    const extent = (i: 0 | 1) => stride * (g.shape[2 + i] - 1) + dilation * (w.shape[2 + i] - 1) + 1 - pads[i] - pads[2 + i];
    const outputPadding: [number, number] = [x.shape[2] - extent(0), x.shape[3] - extent(1)];
    const gx = F.convTranspose2d(g, w, { ...attrs, outputPadding });
    const gw = convWeightGrad(x, g, [kh, kw], attrs);
    return [gx, gw, b ? F.reduceSum(g, [0, 2, 3]) : undefined];
  },
};

export interface ConvTransposeAttrs extends ConvAttrs {
  /** Extra rows/columns at the bottom/right of the output (each < stride). */
  outputPadding: [number, number];
}

/**
 * The adjoint of Conv2d (ONNX ConvTranspose, no bias): x [N, Cin, H, W], weight [Cin, Cout/groups, kh, kw]
 * -> [N, Cout, s(H-1) + d(k-1) + 1 + outputPadding - pads]. It is Conv2d's input gradient.
 */
export const ConvTranspose2d: OpDef<ConvTransposeAttrs> = {
  type: "ConvTranspose2d",
  infer([x, w], { stride, pads, groups, dilation = 1, outputPadding }) {
    if (x.rank !== 4 || w.rank !== 4 || w.shape[0] !== x.shape[1] || x.shape[1] % groups !== 0) {
      throw new ShapeError(`ConvTranspose2d: input [${x.shape}] and weight [${w.shape}] with ${groups} groups`);
    }
    const size = (i: 0 | 1) => stride * (x.shape[2 + i] - 1) + outputPadding[i] + dilation * (w.shape[2 + i] - 1) + 1 - pads[i] - pads[2 + i];
    const [ho, wo] = [size(0), size(1)];
    if (ho <= 0 || wo <= 0) throw new ShapeError(`ConvTranspose2d: empty output for input [${x.shape}]`);
    return [{ shape: [x.shape[0], w.shape[1] * groups, ho, wo], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { stride, pads, groups, dilation = 1, outputPadding }, node) {
    const [, , kh, kw] = node.inputs[1].shape;
    ctx.emit("ConvTranspose", ins, outs, {
      kernel_shape: [kh, kw], strides: [stride, stride], pads: [...pads], group: groups,
      dilations: [dilation, dilation], output_padding: [...outputPadding],
    });
  },
  flops(n) {
    const [, co, kh, kw] = n.inputs[1].shape;
    return 2 * n.inputs[0].numel * co * kh * kw;
  },
  // Its input gradient is the conv it is the adjoint of; its weight gradient is that conv's weight
  // gradient with the roles of input and output cotangent exchanged.
  grad({ inputs: [x, w], attrs: { outputPadding: _, ...conv } }, [g]) {
    const [, , kh, kw] = w.shape;
    return [F.conv2d(g, w, undefined, conv), convWeightGrad(g, x, [kh, kw], conv)];
  },
};

/**
 * dL/dW of y = conv2d(x, W) given dy, as a conv itself: batch and channels of x and dy swap roles,
 * dy becomes the kernel, the stride becomes a dilation and the dilation a stride. Grouped convs
 * run one such conv per group.
 */
export function convWeightGrad(x: Tensor, dy: Tensor, [kh, kw]: [number, number], { stride, pads, groups, dilation = 1 }: ConvAttrs): Tensor {
  const swap = (t: Tensor) => F.transpose(t, [1, 0, 2, 3]);
  const one = (xg: Tensor, dyg: Tensor) => {
    // [Cin, N, H, W] * [Cout, N, Ho, Wo] -> [Cin, Cout, >=kh, >=kw]; the excess exists when the forward dropped edge pixels.
    const r = F.conv2d(swap(xg), swap(dyg), undefined, { stride: dilation, pads, groups: 1, dilation: stride });
    const cut = r.shape[2] === kh && r.shape[3] === kw ? r : F.slice(F.slice(r, 2, 0, kh), 3, 0, kw);
    return swap(cut);
  };
  if (groups === 1) return one(x, dy);
  const ci = x.shape[1] / groups;
  const co = dy.shape[1] / groups;
  return F.concat(Array.from({ length: groups }, (_, i) => one(F.slice(x, 1, i * ci, (i + 1) * ci), F.slice(dy, 1, i * co, (i + 1) * co))), 0);
}
