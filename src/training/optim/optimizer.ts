/** What the training loop needs of an optimizer (AdamW, SGD): a settable LR, a step, and a state to checkpoint. */
export interface OptimizerState {
  kind: string;
  /** Updates taken so far. */
  steps: number;
  /** Per-parameter buffers by "<buffer>.<parameter key>" (moments, momentum). */
  buffers: Record<string, Float32Array>;
}

export interface Optimizer {
  lr: number;
  readonly steps: number;
  step(grads: Record<string, Float32Array>): void;
  state(): OptimizerState;
  loadState(s: OptimizerState): void;
}
