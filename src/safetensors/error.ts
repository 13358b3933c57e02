/** A safetensors file that cannot be read: the message names the file and the problem. */
export class SafetensorsError extends Error {}
