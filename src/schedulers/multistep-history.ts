/**
 * What a multistep solver (DPM-Solver, UniPC) remembers between steps: the data predictions of the
 * last `order` steps, newest last (null before there are that many), and diffusers' lower_order_nums,
 * the steps taken so far up to `order`, which keep the first steps at a lower order.
 */
export class MultistepHistory {
  private outputs: (Float32Array | null)[] = [];
  lowerOrderNums = 0;

  constructor(readonly order: number) { this.reset(); }

  /** A new schedule: nothing remembered. */
  reset(): void {
    this.outputs = new Array(this.order).fill(null);
    this.lowerOrderNums = 0;
  }

  /** A step's data prediction joins; the oldest leaves. */
  push(x0: Float32Array): void {
    this.outputs.shift();
    this.outputs.push(x0);
  }

  /** The k-th newest data prediction (0: this step's); only where `has(k)`. */
  newest(k = 0): Float32Array { return this.outputs[this.order - 1 - k]!; }

  /** Whether the k-th newest is there yet (after a mid-schedule start it may not be). */
  has(k: number): boolean { return this.outputs[this.order - 1 - k] !== null; }

  /** A step ran: counts towards lower_order_nums. */
  stepDone(): void { if (this.lowerOrderNums < this.order) this.lowerOrderNums++; }
}
