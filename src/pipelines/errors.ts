/** A bad argument to a pipeline call (size, steps, strength, prompts...): the caller's mistake, not the model's. */
export class PipelineInputError extends Error {}
