/**
 * The last stage: the final latents to images, with the VAE (diffusers' decode and postprocess) or,
 * with fastDecode, the loaded TAESD; nothing for outputType "latent".
 */
import type { FloatTensor } from "../../image/image.js";
import { decodeLatents } from "../vae-io.js";
import type { SdxlComponents } from "./components.js";
import type { CommonOptions } from "./options.js";

export async function decode(c: SdxlComponents, latents: FloatTensor, opts: CommonOptions): Promise<FloatTensor> {
  opts.signal?.throwIfAborted();
  await c.afterDenoise();
  const images = opts.outputType === "latent" ? { data: new Float32Array(0), shape: [0, 0, 0, 3] }
    : opts.fastDecode ? await c.requireTaesd("fastDecode").decodeLatents(latents, opts.signal)
      : await decodeLatents(c.vae, latents, opts.signal, opts.tiling);
  await c.afterDecode();
  return images;
}
