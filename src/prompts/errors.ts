/** A prompt that cannot be parsed or is over a limit; the message says which. */
export class PromptSyntaxError extends Error {}
