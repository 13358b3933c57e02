export * from "./config.js";
export * from "./unet-2d-condition.js";
export { UNetEncoder, skipShapes, skipCount, type EmbeddingInputs } from "./encoder.js";
export { FREEU_VARIANTS, FREEU_INPUT, FREEU_INPUT_ORDER, freeuStages, lowFrequencyProjection, type FreeUVariant } from "./freeu.js";
export { PAG_DEFAULT_LAYERS, PagLayerError, pagTargets, selfAttentionNames, type PagGraphOptions } from "./pag.js";
