/**
 * Conv2d as im2col + com.microsoft.MatMulNBits with 8-bit weights (LoweringOptions.convWeights "q8"), so that
 * convolutions reach the one onnxruntime 1.30 WebGPU kernel with a tensor-core path on NVIDIA
 * (docs/webgpu-matmul.md): the input goes to NHWC and is padded; one Gather of its pixels makes the patches
 * [N, Ho, Wo, kh·kw·C], in the (ky, kx, c) order of the weight rows (onnx/q8-weights.ts convRows); one
 * MatMulNBits with the bias gives [N, Ho, Wo, Cout], back to NCHW.
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
    // One Gather of pixels (rows of C channels), not kh·kw Slices and a Concat: one kernel instead of 10, and
    // 3.2x faster on lavapipe (docs/webgpu-matmul.md); the host side of a WebGPU step grows with its kernels.
    const wp = x.shape[3] + pads[1] + pads[3];
    const pixels = ctx.fresh("pixels");
    ctx.emit("Reshape", [nhwc, ctx.int64s([0, -1, ci])], [pixels]);
    const rows = ctx.fresh("rows");
    ctx.emit("Gather", [pixels, ctx.int64s(patchPixels(ho, wo, kh, kw, stride, wp))], [rows], { axis: 1 });
    patches = ctx.fresh("patches");
    ctx.emit("Reshape", [rows, ctx.int64s([0, ho, wo, kh * kw * ci])], [patches]);
  }
  const y = ctx.fresh("convq8");
  ctx.emit("MatMulNBits", [patches, q.data, q.scales, "", "", ...(ins[2] ? [ins[2]] : [])], [y], { K: ci * kh * kw, N: co, bits: 8, block_size: 32 }, "com.microsoft");
  ctx.emit("Transpose", [y], outs, { perm: [0, 3, 1, 2] });
  return true;
}

/** For each output pixel (oy, ox) and tap (ky, kx), in that order, the index of the padded input pixel it reads. */
function patchPixels(ho: number, wo: number, kh: number, kw: number, stride: number, paddedWidth: number): number[] {
  const out: number[] = [];
  for (let oy = 0; oy < ho; oy++) for (let ox = 0; ox < wo; ox++)
    for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) out.push((oy * stride + ky) * paddedWidth + ox * stride + kx);
  return out;
}
