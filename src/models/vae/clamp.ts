import type { OpDef } from "../../ir/op.js";
import type { Tensor } from "../../ir/tensor.js";

/**
 * torch.clamp(x, lo, hi) on float32 (ONNX Clip-13 with scalar bounds). Local to the VAE (the posterior's
 * logvar clamp) because the shared functional API has no clamp; it could move to ir/ops unchanged.
 */
const Clamp: OpDef<{ lo: number; hi: number }> = {
  type: "Clamp",
  infer([x]) { return [{ shape: [...x.shape], dtype: x.dtype }]; },
  lower(ctx, [x], outs, { lo, hi }) {
    const a = ctx.fresh("clamp_lo"), b = ctx.fresh("clamp_hi");
    ctx.emit("Constant", [], [a], { value_float: { float: lo } });
    ctx.emit("Constant", [], [b], { value_float: { float: hi } });
    ctx.emit("Clip", [x, a, b], outs);
  },
  flops(n) { return n.outputs[0].numel; },
};

export function clamp(x: Tensor, lo: number, hi: number): Tensor {
  return x.graph.apply(Clamp, [x], { lo, hi })[0];
}
