import * as ort from "onnxruntime-node";
import type { Graph } from "../ir/graph.js";
import { lowerToOnnx } from "../ir/onnx/lower.js";
import type { Float32IslandOp } from "../ir/onnx/half-precision.js";
import type { DType } from "../ir/tensor.js";
import { webgpuAttentionVerdict } from "./webgpu-check.js";
import { webgpuProvider } from "./webgpu-options.js";

export type HostArray = Float32Array | BigInt64Array;
export type ExecutionDevice = "cpu" | "webgpu";

export interface SessionOptions {
  device?: ExecutionDevice;
  /** onnxruntime's CPU memory arena (default on). Off: SSD-1B UNet at 1024² peaks 7.2 instead of 8.5 GiB, 4-9 % slower. */
  memoryArena?: boolean;
  /** Threads for one operator (default: onnxruntime's choice, all cores). */
  intraOpThreads?: number;
  /** Arithmetic inside the graph (default float32); inputs and outputs are float32 either way. */
  precision?: "float32" | "float16";
  /** With precision "float16": op types kept in float32 (Casts around them), e.g. GroupNormalization. */
  keepFloat32?: readonly Float32IslandOp[];
  /** Training graphs: hold each frozen weight once instead of pre-packed per product (see LoweringContext). */
  weightsOnTheLeft?: boolean;
  /** Every Conv2d pads circularly, as torch's padding_mode "circular" (A1111's tiling; see LoweringContext). */
  circularConvPads?: boolean;
  /**
   * "q8": Linear layers' weights quantized in memory to 8 bits (blocks of 32, fp16 scales: stable-diffusion.cpp's
   * q8_0) and run as com.microsoft.MatMulNBits, the one product kernel onnxruntime 1.30's WebGPU provider has
   * for NVIDIA tensor cores (docs/webgpu-matmul.md). ~5e-3 relative L2 a product. Default "float".
   */
  linearWeights?: "float" | "q8";
  /** "q8": convolutions too, as im2col + MatMulNBits (ir/ops/conv-im2col.ts). Default "float". */
  convWeights?: "float" | "q8";
  /** Where a one-time note goes (WebGPU attention fallback); stderr when absent. */
  onWarning?: (message: string) => void;
}

/** What to do when the WebGPU execution provider cannot start (no adapter, no driver). */
export const WEBGPU_HELP = "use --device cpu (or session.device \"cpu\"), or install a Vulkan driver for your GPU (vulkaninfo --summary lists what Vulkan sees)";

let attentionNoted = false;

/** On WebGPU: whether this adapter needs attention lowered without MultiHeadAttention (checked once per process). */
async function unfusedAttentionFor(opts: SessionOptions, description: string): Promise<boolean> {
  if (opts.device !== "webgpu") return false;
  // Developer override: skip the check (e.g. to see what the fused kernel gives on this adapter).
  const forced = process.env.SSD1B_WEBGPU_ATTENTION;
  if (forced === "fused" || forced === "unfused") return forced === "unfused";
  let verdict;
  try {
    verdict = await webgpuAttentionVerdict();
  } catch (e) {
    throw new Error(`${description}: the WebGPU execution provider could not start (${(e as Error).message}); ${WEBGPU_HELP}`);
  }
  if (verdict.unfused && !attentionNoted) {
    attentionNoted = true;
    const note = `this WebGPU adapter computes onnxruntime's MultiHeadAttention wrongly (self-check relative L2 ${verdict.relL2.toExponential(2)}); attention runs as MatMul + Softmax + MatMul instead (slower, more memory)`;
    (opts.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`)))(note);
  }
  return verdict.unfused;
}

export class InputError extends Error {}

interface IoSpec { name: string; shape: readonly number[]; dtype: DType }

/** A graph compiled into an onnxruntime session, with inputs checked by name, dtype and shape. */
export class CompiledGraph {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputs: IoSpec[],
    readonly outputs: IoSpec[],
    readonly flops: number,
    readonly description: string,
  ) {}

  static async create(graph: Graph, description: string, opts: SessionOptions = {}): Promise<CompiledGraph> {
    const unfusedAttention = await unfusedAttentionFor(opts, description);
    const { bytes, externalDataFolder, inMemoryFiles } = lowerToOnnx(graph, description, { device: opts.device, precision: opts.precision, keepFloat32: opts.keepFloat32, weightsOnTheLeft: opts.weightsOnTheLeft, unfusedAttention, circularConvPads: opts.circularConvPads, linearWeights: opts.linearWeights, convWeights: opts.convWeights });
    const options: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: "all",
      // Without the arena, freed activations go back to the system at once: lower peak, a few % slower.
      ...(opts.memoryArena === false ? { enableCpuMemArena: false } : {}),
      // SSD1B_PROFILE=<file prefix> writes onnxruntime's per-node timing JSON (developer aid).
      ...(process.env.SSD1B_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.SSD1B_PROFILE } : {}),
      executionProviders: [opts.device === "webgpu" ? webgpuProvider() : "cpu"],
      ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
      ...(inMemoryFiles.length ? { externalData: inMemoryFiles } : {}),
      extra: { session: {
        ...(externalDataFolder ? { model_external_initializers_file_folder_path: externalDataFolder } : {}),
      } },
    };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, options);
    } catch (e) {
      if (opts.device === "webgpu") throw new Error(`${description}: the WebGPU execution provider could not start (${(e as Error).message}); ${WEBGPU_HELP}`);
      throw e;
    }
    const inputs = graph.inputs.map((t) => {
      const leaf = graph.leaves.get(t)!;
      return { name: leaf.kind === "input" ? leaf.name : "", shape: t.shape, dtype: t.dtype };
    });
    const outputs = graph.outputs.map((o) => ({ name: o.name, shape: o.tensor.shape, dtype: o.tensor.dtype }));
    return new CompiledGraph(session, inputs, outputs, graph.flops(), description);
  }

  async run(feeds: Record<string, HostArray>): Promise<Record<string, Float32Array>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const spec of this.inputs) {
      const data = feeds[spec.name];
      if (!data) throw new InputError(`${this.description}: missing input "${spec.name}" [${spec.shape}] ${spec.dtype}`);
      const n = spec.shape.reduce((a, b) => a * b, 1);
      const want = spec.dtype === "int64" ? BigInt64Array : Float32Array;
      if (!(data instanceof want)) throw new InputError(`${this.description}: input "${spec.name}" must be ${spec.dtype}`);
      if (data.length !== n) throw new InputError(`${this.description}: input "${spec.name}" has ${data.length} values, expected shape [${spec.shape}] (${n})`);
      ortFeeds[spec.name] = new ort.Tensor(spec.dtype === "int64" ? "int64" : "float32", data, [...spec.shape]);
    }
    const unknown = Object.keys(feeds).filter((k) => !this.inputs.some((s) => s.name === k));
    if (unknown.length) throw new InputError(`${this.description}: unknown input(s) ${unknown.join(", ")}; expected ${this.inputs.map((s) => s.name).join(", ")}`);
    const result = await this.session.run(ortFeeds);
    const out: Record<string, Float32Array> = {};
    for (const spec of this.outputs) out[spec.name] = result[spec.name].data as Float32Array;
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
