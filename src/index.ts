/** The ssd1b library: pipelines first; the building blocks for those who need them. */
export * from "./pipelines/index.js";
export { CLIPTokenizer } from "./tokenizer/index.js";
export { TorchGenerator, PerImageGenerator } from "./random/index.js";
export { createScheduler, loadSchedulerConfig } from "./schedulers/index.js";
export type { Scheduler } from "./schedulers/types.js";
export { TensorStore, saveTensors, writeSafetensors } from "./safetensors/index.js";
export { snapshotDownload, HubError, type HubOptions, type DownloadProgress, type DownloadResult } from "./hub/index.js";
export { generateHires, hiresTargetSize, upscaleLatents, builtinPixelUpscale, esrganPixelUpscale, type HiresOptions, type HiresOutput, type PixelUpscale } from "./recipes/hires-fix.js";
export { interpolate, type LatentInterpolation } from "./image/latent-resize.js";
export { a1111Inpaint, INPAINTING_FILLS, type A1111InpaintOptions, type A1111InpaintSettings } from "./recipes/a1111-inpaint.js";
export { outpaintImage, OUTPAINT_FILLS, type OutpaintRecipeOptions } from "./recipes/outpaint.js";
export { generateRefined, img2imgRefined, type RefinerSwitch } from "./recipes/refiner.js";
export { decodeImageRgba, type RgbaImage } from "./image/rgba.js";
