import type { DType, Tensor } from "./tensor.js";

export interface TensorMeta {
  shape: number[];
  dtype: DType;
}

/** What an op's ONNX lowering can ask for. */
export interface LoweringContext {
  /** The execution provider the model is for: lowerings may pick the kernels it has. */
  readonly device: "cpu" | "webgpu";
  /** Emits an ONNX node; returns nothing, the caller names outputs. */
  emit(opType: string, inputs: string[], outputs: string[], attrs?: Record<string, OnnxAttr>, domain?: string): void;
  /** A fresh intermediate value name. */
  fresh(hint: string): string;
  /** Name of an int64 constant tensor holding `values` (1-D). */
  int64s(values: number[]): string;
}

export type OnnxAttr = number | number[] | string | { float: number } | { floats: number[] };

/**
 * One operation of the IR: its shape rule, ONNX lowering and cost sit together.
 * (A `grad` rule joins them when training lands: it builds the backward ops in this same IR.)
 */
export interface OpDef<A = Record<string, unknown>> {
  readonly type: string;
  infer(inputs: Tensor[], attrs: A): TensorMeta[];
  lower(ctx: LoweringContext, inputs: string[], outputs: string[], attrs: A, node: Node<A>): void;
  /** Floating-point operations (a multiply-add counts 2); elementwise ops count one per output element. */
  flops(node: Node<A>): number;
}

export interface Node<A = Record<string, unknown>> {
  readonly op: OpDef<A>;
  readonly inputs: Tensor[];
  readonly attrs: A;
  readonly outputs: Tensor[];
}
