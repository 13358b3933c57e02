import type { OpDef } from "../op.js";
import { ShapeError } from "../tensor.js";
import * as F from "../functional.js";
import { geluDerivative } from "./elementwise.js";

/**
 * diffusers' GEGLU after its projection's product, x [B, tokens, 2·D] and the projection's bias [2·D]:
 * h, gate = (x + bias).chunk(2, -1); h · gelu(gate). On onnxruntime's WebGPU provider in float32 one
 * kernel, com.microsoft.BiasSplitGelu (made for this block of diffusion UNets), in place of Add, two
 * Slices, Gelu and Mul over the UNet's widest activations (docs/webgpu-kernels.md). Elsewhere those
 * composed ops (on WebGPU in float16 with one Split for the two Slices): the CPU provider has no such
 * kernel (and keeps its MatMul + Add fusion), and onnxruntime-node 1.30's WebGPU BiasSplitGelu fails on
 * float16 inputs ("raw_hash_map::at").
 */
export const BiasGeglu: OpDef<{}> = {
  type: "BiasGeglu",
  infer([x, bias]) {
    const d2 = x.shape[2];
    if (x.rank !== 3 || d2 % 2 !== 0 || bias.rank !== 1 || bias.shape[0] !== d2) throw new ShapeError(`BiasGeglu: x [${x.shape}] must be [B, tokens, 2·D] with bias [2·D], got bias [${bias.shape}]`);
    return [{ shape: [x.shape[0], x.shape[1], d2 / 2], dtype: x.dtype }];
  },
  lower(ctx, [x, bias], [y], _attrs, node) {
    if (ctx.device === "webgpu" && ctx.precision === "float32") { ctx.emit("BiasSplitGelu", [x, bias], [y], {}, "com.microsoft"); return; }
    const d = node.inputs[0].shape[2] / 2;
    const h = ctx.fresh("geglu_biased"), value = ctx.fresh("geglu_value"), gate = ctx.fresh("geglu_gate"), activated = ctx.fresh("geglu_gelu");
    ctx.emit("Add", [x, bias], [h]);
    // On WebGPU every kernel costs host time: one Split in place of two Slices (34 kernels a SSD-1B step).
    // The CPU graph stays as it was measured.
    if (ctx.device === "webgpu") ctx.emit("Split", [h], [value, gate], { axis: 2, num_outputs: 2 });
    else {
      ctx.emit("Slice", [h, ctx.int64s([0]), ctx.int64s([d]), ctx.int64s([2])], [value]);
      ctx.emit("Slice", [h, ctx.int64s([d]), ctx.int64s([2 * d]), ctx.int64s([2])], [gate]);
    }
    ctx.emit("Gelu", [gate], [activated]);
    ctx.emit("Mul", [value, activated], [y]);
  },
  // Add over 2·D, Gelu and Mul over D: what the composed ops count.
  flops(n) { return 11 * n.outputs[0].numel; },
  grad({ inputs: [x, bias] }, [g]) {
    const [value, gate] = F.chunk(F.add(x, bias), 2, 2);
    const dx = F.concat([F.mul(g, F.gelu(gate)), F.mul(F.mul(g, value), geluDerivative(gate))], 2);
    return [dx, F.sumTo(dx, bias.shape)];
  },
};
