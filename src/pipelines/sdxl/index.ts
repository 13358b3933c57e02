export { StableDiffusionXLPipeline } from "./pipeline.js";
export type { PipelineLoadOptions, CommonOptions, GenerateOptions, Img2ImgOptions, InpaintOptions, PipelineOutput } from "./options.js";
export { lcmLoraFor } from "./load-options.js";
export type { StepInfo, StepCallback, DenoiseHook, StepContext } from "./denoise.js";
export { UNetConditioning } from "./conditioning.js";
export type { MaskInput } from "./inpaint.js";
