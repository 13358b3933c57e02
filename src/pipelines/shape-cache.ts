/**
 * Sessions have static shapes: each component keeps one compiled graph for the shape it last ran and
 * compiles again when another is asked for (a full-size session holds its weights, so one at a time).
 */
import type { CompiledGraph } from "../runtime/session.js";

/** One cached compiled graph (or anything compiled that holds a session), keyed by shape (and the variant it was built as). */
export class ShapeCache<G extends { release(): Promise<void> } = CompiledGraph> {
  private key = "";
  private graph?: G;
  get holds(): boolean { return this.graph !== undefined; }
  async get(shape: readonly (number | string)[], compile: () => Promise<G>): Promise<G> {
    const key = shape.join("x");
    if (this.graph && this.key === key) return this.graph;
    await this.release();
    this.graph = await compile();
    this.key = key;
    return this.graph;
  }
  async release(): Promise<void> {
    const g = this.graph;
    this.graph = undefined;
    this.key = "";
    if (g) await g.release();
  }
}

/** Runs calls one after another (a failed one does not block the next): one session, one caller at a time. */
export class SerialQueue {
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;
  /** A call is running or waiting. */
  get busy(): boolean { return this.pending > 0; }
  run<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    const run = this.queue.then(fn).finally(() => { this.pending--; });
    this.queue = run.catch(() => undefined);
    return run;
  }
}
