/**
 * A1111's refiner_checkpoint and refiner_switch_at: another served model finishes the run from the
 * switch (recipes/refiner.ts). As in A1111 "None" or "" is no refiner, and the loaded checkpoint
 * itself as refiner changes nothing; the switch defaults to the web UI's 0.8. With the hires fix the
 * refiner takes over in the second pass (A1111's default hires_fix_refiner_pass "second pass"): the
 * first pass is the base's, the hires img2img switches where its schedule reaches the fraction.
 */
import { invalid } from "./errors.js";
import type { JobSpec } from "./job.js";
import { findServedModel, notServedMessage } from "./model-catalog.js";
import { servedModels, type ModelInfo } from "./queue.js";
import type { Fields } from "./validation.js";

export const A1111_REFINER_SWITCH_AT = 0.8;

export function readA1111Refiner(f: Fields, spec: JobSpec, model: ModelInfo): void {
  const wanted = f.string("refiner_checkpoint");
  const switchAt = f.number("refiner_switch_at", 0, 1);
  if (wanted === undefined || wanted.trim() === "" || wanted === "None") return;
  const served = findServedModel(wanted, servedModels(model));
  if (!served) throw invalid(notServedMessage("refiner_checkpoint", wanted, servedModels(model)), "invalid_value", "refiner_checkpoint");
  const at = switchAt ?? A1111_REFINER_SWITCH_AT;
  if (!(at > 0 && at < 1)) throw invalid(`refiner_switch_at must be a fraction in (0, 1) (the share of the schedule the base model runs), got ${at}`, "invalid_value", "refiner_switch_at");
  // what the refiner is not combined with here (each would need its own rule for the second model)
  const refuse = (field: string, what: string) => { throw invalid(`the refiner (refiner_checkpoint) is not combined with ${what} here`, "unsupported_feature", field); };
  if (spec.controlnets?.length) refuse("alwayson_scripts", "ControlNet");
  if (spec.preset === "fast") refuse("refiner_checkpoint", "the fast preset");
  spec.refiner = { model: served.name, switchAt: at };
}
