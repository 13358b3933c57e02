import { WeightError } from "../nn/weights.js";
import type { WeightDeltas } from "../nn/weight-deltas.js";

/**
 * After a model was built with `deltas`: deltas that no module asked for mean a LoRA for another
 * model. Say so, naming them (readLora already matches names against the configs; this catches the rest).
 */
export function rejectUnappliedDeltas(deltas: WeightDeltas | undefined, where: string): void {
  const left = deltas?.unapplied() ?? [];
  if (left.length === 0) return;
  throw new WeightError(`${where}: ${left.length} LoRA weight change(s) target weights this model does not have (a LoRA for another model?): ${left.slice(0, 10).map((k) => `"${k}"`).join(", ")}${left.length > 10 ? ", …" : ""}`);
}
