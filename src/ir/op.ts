import type { DType, Tensor } from "./tensor.js";

export interface TensorMeta {
  shape: number[];
  dtype: DType;
}

/** What an op's ONNX lowering can ask for. */
export interface LoweringContext {
  /** The execution provider the model is for: lowerings may pick the kernels it has. */
  readonly device: "cpu" | "webgpu";
  /** The arithmetic the model will run in (half-precision.ts converts after lowering): kernels differ in what they support. */
  readonly precision: "float32" | "float16";
  /** Attention as MatMul + Softmax + MatMul instead of com.microsoft.MultiHeadAttention (see ops/attention.ts). */
  readonly unfusedAttention?: boolean;
  /**
   * torch's padding_mode "circular" for every Conv2d with symmetric pads (A1111's tiling): an explicit
   * Pad mode "wrap" (opset 19), then the conv without pads. Asymmetric pads stay zeros: they come from
   * an explicit constant F.pad folded into the conv (the VAE's downsamplers), which circular mode leaves alone.
   */
  readonly circularConvPads?: boolean;
  /** Emits an ONNX node; returns nothing, the caller names outputs. */
  emit(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, OnnxAttr>, domain?: string): void;
  /** A fresh intermediate value name. */
  fresh(hint: string): string;
  /** Name of an int64 constant tensor holding `values` (1-D). */
  int64s(values: number[]): string;
  /**
   * Training graphs read each frozen weight in two products (forward y = x·Wᵀ, backward dX = dY·W).
   * As the right operand, onnxruntime pre-packs it for each product: two extra copies of every weight.
   * As the left operand it is never packed and held once. True: matrix products put weights on the left.
   */
  readonly weightsOnTheLeft: boolean;
  /** Whether `t` is a weight read from a checkpoint file. */
  isWeight(t: Tensor): boolean;
  /**
   * The weight or constant `t` as com.microsoft.MatMulNBits inputs (8-bit data, scales in the model's float
   * type; see onnx/q8-weights.ts), quantized once per tensor: a Linear weight [N, K] with LoweringOptions.linearWeights
   * "q8", a conv weight [Cout, Cin, kh, kw] as rows of K = kh·kw·Cin (convRows) with convWeights "q8". Undefined when
   * the option is off or `t` does not qualify (not a leaf, K not a multiple of 32).
   */
  q8Weight(t: Tensor, layout: "linear" | "conv"): { data: string; scales: string } | undefined;
}

export type OnnxAttr = number | number[] | string | { float: number } | { floats: number[] };

/**
 * Reverse-mode rule: given the node and the cotangents of its outputs (same shapes as the outputs),
 * builds the cotangents of its inputs with ops of this same IR, so that backward graphs lower and run
 * like inference. `undefined` marks an input that takes no gradient (indices, masks, integers).
 */
export type GradRule<A = Record<string, unknown>> = (node: Node<A>, dOutputs: Tensor[]) => (Tensor | undefined)[];

/** The rule of ops whose outputs carry no gradient (comparisons, one-hot, integer results). */
export const notDifferentiable: GradRule<any> = () => [];

/** One operation of the IR: its shape rule, ONNX lowering, cost and gradient sit together. */
export interface OpDef<A = Record<string, unknown>> {
  readonly type: string;
  infer(inputs: Tensor[], attrs: A): TensorMeta[];
  lower(ctx: LoweringContext, inputs: string[], outputs: string[], attrs: A, node: Node<A>): void;
  /** Floating-point operations (a multiply-add counts 2); elementwise ops count one per output element. */
  flops(node: Node<A>): number;
  /** Absent: backward passes through this op fail with its name (e.g. model-local ops never trained). */
  grad?(node: Node<A>, dOutputs: Tensor[]): (Tensor | undefined)[];
}

export interface Node<A = Record<string, unknown>> {
  readonly op: OpDef<A>;
  readonly inputs: Tensor[];
  readonly attrs: A;
  readonly outputs: Tensor[];
}
