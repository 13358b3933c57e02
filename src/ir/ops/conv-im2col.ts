/**
 * Conv2d as im2col + com.microsoft.MatMulNBits with 8-bit weights (LoweringOptions.convWeights "q8"), so that
 * convolutions reach the one onnxruntime 1.30 WebGPU kernel with a tensor-core path on NVIDIA
 * (docs/webgpu-matmul.md): the input goes to NHWC, is padded, and its kh·kw shifted (strided) views are
 * concatenated along channels into patches [N, Ho, Wo, kh·kw·C], in the (ky, kx, c) order of the weight
 * rows (onnx/q8-weights.ts convRows); one MatMulNBits with the bias gives [N, Ho, Wo, Cout], back to NCHW.
 * Costs kh·kw times the input's memory for the patches (189 MB fp16 for SDXL's 320-channel convs at 1024²).
 */
import type { LoweringContext } from "../op.js";
import type { Tensor } from "../tensor.js";
import type { ConvAttrs } from "./conv.js";

/** Emits the conv when it qualifies (groups 1, no dilation, Cout a multiple of 64, q8 conv weights on); false otherwise. */
export function lowerConvIm2col(ctx: LoweringContext, ins: string[], outs: string[], { stride, pads, groups, dilation = 1 }: ConvAttrs, [x, w]: Tensor[], out: Tensor, circular: boolean): boolean {
  const [co, ci, kh, kw] = w.shape;
  // The tensor-core kernel takes N % 64 == 0 only; other convs (conv_out's 4 channels) stay Conv.
  if (groups !== 1 || dilation !== 1 || co % 64 !== 0 || ctx.weightsOnTheLeft) return false;
  const q = ctx.q8Weight(w, "conv");
  if (!q) return false;
  const [, , ho, wo] = out.shape;
  let nhwc = ctx.fresh("nhwc");
  ctx.emit("Transpose", [ins[0]], [nhwc], { perm: [0, 2, 3, 1] });
  if (pads.some((p) => p > 0)) {
    const padded = ctx.fresh("padded");
    ctx.emit("Pad", [nhwc, ctx.int64s([0, pads[0], pads[1], 0, 0, pads[2], pads[3], 0])], [padded], { mode: circular ? "wrap" : "constant" });
    nhwc = padded;
  }
  let patches = nhwc;
  if (kh * kw > 1 || stride !== 1 || x.shape[2] !== ho || x.shape[3] !== wo) {
    const views: string[] = [];
    for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const v = ctx.fresh("patch");
      ctx.emit("Slice", [nhwc, ctx.int64s([ky, kx]), ctx.int64s([ky + stride * (ho - 1) + 1, kx + stride * (wo - 1) + 1]), ctx.int64s([1, 2]), ctx.int64s([stride, stride])], [v]);
      views.push(v);
    }
    patches = ctx.fresh("patches");
    if (views.length > 1) ctx.emit("Concat", views, [patches], { axis: 3 });
    else patches = views[0];
  }
  const y = ctx.fresh("convq8");
  ctx.emit("MatMulNBits", [patches, q.data, q.scales, "", "", ...(ins[2] ? [ins[2]] : [])], [y], { K: ci * kh * kw, N: co, bits: 8, block_size: 32 }, "com.microsoft");
  ctx.emit("Transpose", [y], outs, { perm: [0, 3, 1, 2] });
  return true;
}
