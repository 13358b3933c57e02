import type { OpDef } from "../op.js";
import { ShapeError } from "../tensor.js";

export interface ConvAttrs {
  stride: number;
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  groups: number;
}

/** 2-D convolution, NCHW, weight [Cout, Cin/groups, kh, kw]; optional bias [Cout]. */
export const Conv2d: OpDef<ConvAttrs> = {
  type: "Conv2d",
  infer([x, w, b], { stride, pads, groups }) {
    if (x.rank !== 4 || w.rank !== 4) throw new ShapeError(`Conv2d: input [${x.shape}] and weight [${w.shape}] must be 4-D`);
    const [n, c, h, wd] = x.shape;
    const [co, ci, kh, kw] = w.shape;
    if (ci * groups !== c) throw new ShapeError(`Conv2d: input has ${c} channels, weight [${w.shape}] expects ${ci * groups}`);
    if (b && (b.rank !== 1 || b.shape[0] !== co)) throw new ShapeError(`Conv2d: bias [${b.shape}] does not match ${co} output channels`);
    const ho = Math.floor((h + pads[0] + pads[2] - kh) / stride) + 1;
    const wo = Math.floor((wd + pads[1] + pads[3] - kw) / stride) + 1;
    if (ho <= 0 || wo <= 0) throw new ShapeError(`Conv2d: input [${x.shape}] too small for kernel ${kh}x${kw}`);
    return [{ shape: [n, co, ho, wo], dtype: x.dtype }];
  },
  lower(ctx, ins, outs, { stride, pads, groups }, node) {
    const [, , kh, kw] = node.inputs[1].shape;
    ctx.emit("Conv", ins, outs, {
      kernel_shape: [kh, kw], strides: [stride, stride], pads: [pads[0], pads[1], pads[2], pads[3]], group: groups,
    });
  },
  flops(n) {
    const [, ci, kh, kw] = n.inputs[1].shape;
    return 2 * n.outputs[0].numel * ci * kh * kw;
  },
};
