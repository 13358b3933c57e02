export {
  StableDiffusionXLPipeline, type PipelineLoadOptions, type CommonOptions, type GenerateOptions, type Img2ImgOptions, type PipelineOutput,
} from "./stable-diffusion-xl.js";
export { PromptEncoder, type PromptEmbeddings, type EncodePromptOptions } from "./prompt-encoding.js";
export type { MicroConditioning, Pair } from "./micro-conditioning.js";
export type { StepInfo, StepCallback } from "./denoise.js";
export { PipelineInputError } from "./errors.js";
export { resolveModelFolder, hubCacheDir, type ModelFolder } from "../loaders/model-folder.js";
export { encodePng, decodePng, ImageFormatError, type RgbImage } from "../image/png.js";
export { toRgb8, rgbToTensor, readImageFile, type FloatTensor } from "../image/image.js";
export { formatInfotext, samplerLabel, type GenerationInfo } from "../image/infotext.js";
