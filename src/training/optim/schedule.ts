/**
 * Learning-rate schedules with diffusers' `get_scheduler` semantics (torch LambdaLR): the LR of
 * optimizer step k (0-based) is base_lr · factor(k). The training scripts step the schedule once per
 * optimizer update (accelerate skips it on accumulation micro-steps), so k counts updates.
 */
export type ScheduleName = "constant" | "constant_with_warmup" | "linear" | "cosine";
export const SCHEDULE_NAMES: readonly ScheduleName[] = ["constant", "constant_with_warmup", "linear", "cosine"];

export interface ScheduleOptions {
  name: ScheduleName;
  warmupSteps?: number;
  /** Needed by linear and cosine. */
  totalSteps?: number;
  /** cosine's num_cycles (default 0.5: one half cosine down to 0). */
  numCycles?: number;
}

export function lrFactor(k: number, o: ScheduleOptions): number {
  const warmup = o.warmupSteps ?? 0;
  const total = o.totalSteps ?? 0;
  switch (o.name) {
    case "constant":
      return 1;
    case "constant_with_warmup":
      return k < warmup ? k / Math.max(1, warmup) : 1;
    case "linear":
      if (k < warmup) return k / Math.max(1, warmup);
      return Math.max(0, (total - k) / Math.max(1, total - warmup));
    case "cosine": {
      if (k < warmup) return k / Math.max(1, warmup);
      const progress = (k - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * (o.numCycles ?? 0.5) * 2 * progress)));
    }
    default:
      throw new Error(`unknown LR schedule "${(o as ScheduleOptions).name}" (known: ${SCHEDULE_NAMES.join(", ")})`);
  }
}

/** The LR of update k: base · factor(k), in double as LambdaLR computes it. */
export function learningRate(base: number, k: number, o: ScheduleOptions): number {
  return base * lrFactor(k, o);
}

export function parseScheduleName(name: string): ScheduleName {
  if (!(SCHEDULE_NAMES as readonly string[]).includes(name)) throw new Error(`unknown LR schedule "${name}" (known: ${SCHEDULE_NAMES.join(", ")})`);
  return name as ScheduleName;
}
