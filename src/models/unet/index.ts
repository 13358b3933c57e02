export * from "./config.js";
export * from "./unet-2d-condition.js";
export { UNetEncoder, skipShapes, skipCount, type EmbeddingInputs } from "./encoder.js";
