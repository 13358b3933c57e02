/**
 * The product kinds of the SDXL-family UNet at its shapes for a latent side `lat` (128 at 1024x1024),
 * batch 2, each as a chain of r equal ops that maps its input back to the input's shape (bench/ops-worker.ts
 * times them; suite "ops" of bench/run.ts). Its blocks run at lat (320 channels), lat/2 (640) and lat/4 (1280).
 */
import type { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";
import type { Tensor } from "../src/ir/tensor.js";
import type { SessionOptions } from "../src/runtime/session.js";

const BATCH = 2, CONTEXT_TOKENS = 77, CONTEXT_DIM = 2048;

/** Deterministic weights of a realistic scale (the values do not change a kernel's speed). */
function weight(g: Graph, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1), fanIn = n / shape[0];
  return g.constant(Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.618) / Math.sqrt(fanIn)), shape);
}

export interface OpCase {
  what: string;
  input: number[];
  /** x -> r ops (r even) -> the shape of x. */
  chain(g: Graph, x: Tensor, r: number): Tensor;
  /** How the session lowers it (q8: 8-bit weights, com.microsoft.MatMulNBits). */
  session?: Pick<SessionOptions, "linearWeights" | "convWeights">;
}

/**
 * The case with 8-bit weights: MatMulNBits, whose WebGPU kernel is the one with a tensor-core path on NVIDIA
 * (docs/webgpu-matmul.md); convs as im2col patches + MatMulNBits (src/ir/ops/conv-im2col.ts).
 */
function q8(op: OpCase): OpCase {
  return { ...op, what: `${op.what}, q8 weights`, session: { linearWeights: "q8", convWeights: "q8" } };
}

/** Linear layers back and forth (c -> hidden -> c ...), as torch's Linear: x @ Wᵀ (+ b). One weight per
 * direction, shared along the chain: the kernels do not care, and the model stays small. */
function linears(tokens: number, c: number, hidden: number, bias: boolean): OpCase {
  return {
    what: `Linear ${c}${hidden === c ? "->" : "<->"}${hidden}${bias ? " + bias" : ""}, [${BATCH}, ${tokens}, ${c}]`,
    input: [BATCH, tokens, c],
    chain(g, x, r) {
      const up = { w: weight(g, [hidden, c]), b: weight(g, [hidden]) }, down = hidden === c ? up : { w: weight(g, [c, hidden]), b: weight(g, [c]) };
      for (let i = 0; i < r; i++) {
        const layer = i % 2 === 0 ? up : down;
        x = F.matmulTransB(x, layer.w);
        if (bias) x = F.add(x, layer.b);
      }
      return x; // r is even: back at width c
    },
  };
}

function convs(c: number, side: number): OpCase {
  return {
    what: `Conv 3x3 ${c}->${c} + bias, [${BATCH}, ${c}, ${side}, ${side}]`,
    input: [BATCH, c, side, side],
    chain(g, x, r) {
      const w = weight(g, [c, c, 3, 3]), b = weight(g, [c]);
      for (let i = 0; i < r; i++) x = F.conv2d(x, w, b, { pads: [1, 1, 1, 1] });
      return x;
    },
  };
}

function attentions(tokens: number, c: number, heads: number, cross: boolean): OpCase {
  return {
    what: `attention ${cross ? `cross (${CONTEXT_TOKENS} context tokens)` : "self"}, ${heads} heads of ${c / heads}, [${BATCH}, ${tokens}, ${c}]`,
    input: [BATCH, tokens, c],
    chain(g, x, r) {
      // k and v are projections computed once (cross: from a fixed context): the chain times the kernel alone.
      const kv = cross ? F.matmulTransB(F.reshape(weight(g, [BATCH * CONTEXT_TOKENS, CONTEXT_DIM]), [BATCH, CONTEXT_TOKENS, CONTEXT_DIM]), weight(g, [c, CONTEXT_DIM])) : F.mul(x, 0.5);
      for (let i = 0; i < r; i++) x = F.multiHeadAttention(x, kv, kv, heads);
      return x;
    },
  };
}

export const OP_CASES: Record<string, (lat: number) => OpCase> = {
  "linear-640": (l) => linears((l / 2) ** 2, 640, 640, false),
  "linear-640-bias": (l) => linears((l / 2) ** 2, 640, 640, true), // onnxruntime fuses MatMul + bias into Gemm: its kernel at linear-640's shape
  "linear-1280": (l) => linears((l / 4) ** 2, 1280, 1280, false),
  "ff-640": (l) => linears((l / 2) ** 2, 640, 5120, true),
  "ff-1280": (l) => linears((l / 4) ** 2, 1280, 10240, true),
  "linear-640-q8": (l) => q8(linears((l / 2) ** 2, 640, 640, false)),
  "linear-1280-q8": (l) => q8(linears((l / 4) ** 2, 1280, 1280, false)),
  "ff-640-q8": (l) => q8(linears((l / 2) ** 2, 640, 5120, true)),
  "ff-1280-q8": (l) => q8(linears((l / 4) ** 2, 1280, 10240, true)),
  "conv-320": (l) => convs(320, l),
  "conv-640": (l) => convs(640, l / 2),
  "conv-1280": (l) => convs(1280, l / 4),
  "conv-320-q8": (l) => q8(convs(320, l)),
  "conv-640-q8": (l) => q8(convs(640, l / 2)),
  "conv-1280-q8": (l) => q8(convs(1280, l / 4)),
  "attn-self-640": (l) => attentions((l / 2) ** 2, 640, 10, false),
  "attn-self-1280": (l) => attentions((l / 4) ** 2, 1280, 20, false),
  "attn-cross-1280": (l) => attentions((l / 4) ** 2, 1280, 20, true),
};
