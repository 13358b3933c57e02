/**
 * AUTOMATIC1111's hires fix as a composition of the pipeline's own calls: txt2img at the first-phase
 * size, an upscale (of the latents, or of the decoded image), then img2img at the target size with
 * the same seed(s) and `strength` (A1111's denoising_strength, default 0.7).
 *
 *   const out = await generateHires(pipe, { prompt, width: 512, height: 512, seed: 1 }, { scale: 2, upscaler: "Latent" });
 */
import { DEFAULT_STEPS } from "../pipelines/sdxl/prepare.js";
import type { GenerateOptions, Img2ImgOptions, PipelineOutput, StableDiffusionXLPipeline } from "../pipelines/sdxl/index.js";
import type { FloatTensor } from "../image/image.js";
import { PipelineInputError } from "../pipelines/errors.js";
import { decodeLatents } from "../pipelines/vae-io.js";
import { hiresTargetSize, type HiresSize } from "./hires-size.js";
import { builtinPixelUpscale, checkLatentMode, isLatentMode, upscaleFirstPass, type PixelUpscale } from "./hires-upscale.js";

export { hiresTargetSize, type HiresSize } from "./hires-size.js";
export { LATENT_MODES, builtinPixelUpscale, checkLatentMode, esrganPixelUpscale, isLatentMode, upscaleLatents, type PixelUpscale } from "./hires-upscale.js";

export interface HiresOptions {
  /** Target = first-phase size x scale (A1111 hr_scale, default 2) unless width / height are given. */
  scale?: number;
  /** A1111 hr_resize_x / hr_resize_y: one of them keeps the aspect ratio; both crop to fill. */
  width?: number;
  height?: number;
  /** A latent mode ("Latent", "Latent (bicubic)", ...), "Lanczos", "Nearest", "None", or a function (e.g. esrganPixelUpscale). Default "Latent". */
  upscaler?: string | PixelUpscale;
  /** Second-pass steps before the strength cut (A1111 hr_second_pass_steps; 0 or absent: the first pass's). */
  steps?: number;
  /** The second pass's img2img strength (A1111 denoising_strength). Default 0.7. */
  strength?: number;
  /** The second pass's scheduler (A1111 hr_sampler_name); default the first pass's. */
  scheduler?: GenerateOptions["scheduler"];
  /** The second pass's prompts (hr_prompt, hr_negative_prompt); default the first pass's. */
  prompt?: GenerateOptions["prompt"];
  negativePrompt?: GenerateOptions["negativePrompt"];
  /** The second pass's seed, for the whole batch (ComfyUI's second KSampler); default the first pass's seed(s), as A1111. */
  seed?: number;
  /**
   * Runs the second pass's img2img (default: the pipeline's); e.g. A1111's refiner in the hires pass:
   * `(o) => img2imgRefined(pipe, refiner, o, { switchAt })`.
   */
  secondPass?: (opts: Img2ImgOptions) => Promise<PipelineOutput>;
  /**
   * Runs the first pass (default: the pipeline's text to image); e.g. ComfyUI's img2img before an upscale
   * pass: `(o) => pipe.img2img({ ...o, image, strength })`, with the image's size as width and height.
   */
  firstPass?: (opts: GenerateOptions) => Promise<PipelineOutput>;
}

export interface HiresOutput extends PipelineOutput {
  /** The first pass as it came out (latents always; images unless a latent upscaler was used). */
  firstPass: PipelineOutput;
  size: HiresSize;
  /** The second pass's strength, resolved. */
  strength: number;
}

export const DEFAULT_HIRES_STRENGTH = 0.7;

export async function generateHires(pipe: StableDiffusionXLPipeline, opts: GenerateOptions, hires: HiresOptions = {}): Promise<HiresOutput> {
  const asked = hires.upscaler ?? "Latent";
  const latent = typeof asked === "string" && isLatentMode(asked);
  // a bad name or an unimplemented mode fails before the first pass runs
  if (latent) checkLatentMode(asked);
  const upscaler = typeof asked === "string" && !latent ? builtinPixelUpscale(asked) : asked;
  const strength = hires.strength ?? DEFAULT_HIRES_STRENGTH;
  // absent: the first pass's (which may be the pipeline's call default, e.g. the fast preset's 4)
  const steps = hires.steps || opts.numInferenceSteps;
  const size = hiresTargetSize(opts.width ?? pipe.defaultSize, opts.height ?? pipe.defaultSize, hires);
  // a generator would go on where the first pass left it; A1111's second pass starts from the seed again
  if (opts.generator) throw new PipelineInputError("the hires fix takes seed or seeds (the second pass draws from them again), not a generator");
  // 1. the first pass, kept as latents when the upscale works on them
  const firstPass = await (hires.firstPass ?? ((o: GenerateOptions) => pipe.generate(o)))({ ...opts, outputType: latent ? "latent" : "np" });
  opts.signal?.throwIfAborted();
  // interrupted (or skipped) during the first pass: A1111 returns it as it is, without the second pass
  if (opts.stopEarly?.aborted) {
    const images = latent && opts.outputType !== "latent" ? await decodeFirstPass(pipe, firstPass, opts) : firstPass.images;
    return { ...firstPass, images, firstPass, size, strength };
  }
  // 2. the upscale to the target size
  const image: FloatTensor = await upscaleFirstPass(firstPass, size, upscaler, pipe.vaeScaleFactor, opts.signal);
  // 3. img2img at the target size, from the same seed(s) as A1111 does
  const { width: _w, height: _h, latents: _l, ...common } = opts;
  const second: Img2ImgOptions = {
    // A1111's hires pass: prompt editing counts on from the first pass
    ...common, image, strength, numInferenceSteps: steps, promptEditingBaseSteps: opts.numInferenceSteps ?? DEFAULT_STEPS,
    scheduler: hires.scheduler ?? opts.scheduler,
    prompt: hires.prompt ?? opts.prompt, negativePrompt: hires.negativePrompt ?? opts.negativePrompt,
    ...(hires.seed !== undefined ? { seed: hires.seed, seeds: undefined }
      : firstPass.seeds ? { seeds: firstPass.seeds, seed: undefined } : firstPass.seed !== undefined ? { seed: firstPass.seed } : {}),
  };
  const out = await (hires.secondPass ?? ((o: Img2ImgOptions) => pipe.img2img(o)))(second);
  return { ...out, firstPass, size, strength };
}

/** The first pass's latents decoded as generate would have (VAE, or TAESD with fastDecode). */
function decodeFirstPass(pipe: StableDiffusionXLPipeline, first: PipelineOutput, opts: GenerateOptions): Promise<FloatTensor> {
  if (opts.fastDecode && pipe.taesd) return pipe.taesd.decodeLatents(first.latents, opts.signal);
  return decodeLatents(pipe.vae, first.latents, opts.signal, opts.tiling);
}
