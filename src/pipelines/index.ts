export {
  StableDiffusionXLPipeline, type PipelineLoadOptions, type CommonOptions, type GenerateOptions, type Img2ImgOptions, type InpaintOptions, type MaskInput, type PipelineOutput,
} from "./sdxl/index.js";
export { PromptEncoder, PROMPT_SYNTAXES, type PromptEmbeddings, type EncodePromptOptions, type PromptSyntax } from "./prompt-encoding.js";
export { guidanceScaleEmbedding } from "./guidance.js";
export type { MicroConditioning, Pair } from "./micro-conditioning.js";
export type { StepInfo, StepCallback } from "./sdxl/index.js";
export { PipelineInputError } from "./errors.js";
export { TaesdRunner, taesdPreviewMaker, type OpenTaesdOptions } from "./taesd-runner.js";
export { resolveModelFolder, hubCacheDir, type ModelFolder } from "../loaders/model-folder.js";
export { openModelSource, ModelSourceError, type ModelSource, type ComponentWeights, type OpenModelOptions } from "../loaders/model-source.js";
export { LoraError, parseLoraArg, type LoraFile } from "../loaders/lora.js";
export { SingleFileError } from "../loaders/single-file.js";
export { encodePng, decodePng, ImageFormatError, type RgbImage } from "../image/png.js";
export { toRgb8, rgbToTensor, readImageFile, type FloatTensor } from "../image/image.js";
export { formatInfotext, samplerLabel, type GenerationInfo } from "../image/infotext.js";
export { Upscaler, DEFAULT_TILE, DEFAULT_TILE_OVERLAP, DEFAULT_MAX_UPSCALED_PIXELS, type UpscalerOptions, type UpscaleOptions, type TileOptions } from "./upscaler.js";
export { EsrganModelError, type RrdbNetConfig } from "../models/esrgan/index.js";
export { ControlNetRunner, checkControlNetFits, type ControlNetFeeds, type ControlNetOpenOptions } from "./controlnet-runner.js";
export { guessModeScales, scaleResiduals, sumResiduals, withZeroUnconditionalHalf, type ControlNetResiduals } from "./controlnet-residuals.js";
export { canny, rgbToGray, type CannyOptions } from "../image/canny.js";
export type { ControlNetUnit } from "./sdxl/controlnet.js";
export { UNetConditioning, type DenoiseHook, type StepContext } from "./sdxl/index.js";
export { FREEU_SDXL, checkFreeU, type FreeUOptions } from "./freeu.js";
export { checkPag, type PagOptions, type PagSettings } from "./pag.js";
