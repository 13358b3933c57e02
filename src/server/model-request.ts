/** A request's choice among the served models (see model-catalog.ts), per API. */
import { invalid } from "./errors.js";
import type { JobSpec } from "./job.js";
import { findServedModel, notServedMessage } from "./model-catalog.js";
import { servedModels, type ModelInfo } from "./queue.js";
import type { Fields } from "./validation.js";

/** The native API's `model`: a served model (its name, title, file or source), else a 400 listing them. */
export function readNativeModel(f: Fields, spec: JobSpec, model: ModelInfo): void {
  const wanted = f.string("model");
  if (wanted === undefined) return;
  const served = findServedModel(wanted, servedModels(model));
  if (!served) throw invalid(notServedMessage("model", wanted, servedModels(model)), "invalid_value", "model");
  spec.model = served.name;
}

/**
 * OpenAI's `model`: a served model it names runs the job; any other name (the SDK's "dall-e-2",
 * "gpt-image-1") runs on the default model, as a server of one model always did.
 */
export function readOpenAiModel(f: Fields, spec: JobSpec, model: ModelInfo): void {
  const wanted = f.string("model");
  const served = wanted === undefined ? undefined : findServedModel(wanted, servedModels(model));
  if (served) spec.model = served.name;
}
