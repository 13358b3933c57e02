/**
 * ComfyUI's inpainting latents, run as the pipeline's inpaint (diffusers' algorithm: the masked area
 * denoised, the rest blended back from the image's noised latents every step, the decoded latents
 * returned as they are, with no paste of the original over them, as in ComfyUI):
 *   - VAEEncodeForInpaint(pixels, vae, mask, grow_mask_by): the pixels under the rounded mask are set
 *     to 0.5 grey before encoding, and the noise mask is the rounded mask grown by grow_mask_by;
 *   - SetLatentNoiseMask(samples from a VAEEncode, mask): the image as it is, the mask as the noise mask;
 *   - InpaintModelConditioning(positive, negative, vae, pixels, mask, noise_mask): the same as
 *     SetLatentNoiseMask for the latent; its concat inputs for an inpainting UNet (the image grey under
 *     the rounded mask, and the mask) are what the pipeline gives a 9-channel UNet (the image under the
 *     binarized mask). noise_mask false: no noise mask, the mask and grey image for an inpainting
 *     model's concat only; a 4-channel UNet, which ignores the concat, then runs plain img2img of the
 *     pixels, and a 9-channel one the same inpaint as noise_mask true (which diffusers never blends).
 * The sampler's denoise is the strength (KSampler at denoise 1 starts from pure noise, as diffusers at
 * strength 1). Where this differs from ComfyUI: the noise mask is binarized at 0.5 and scaled to the
 * latent as diffusers does (ComfyUI blends with the soft mask, scaled bilinearly), and a mask is cut
 * to whole multiples of 8 about its centre with the image (ComfyUI scales SetLatentNoiseMask's whole
 * mask onto the cropped image). A mask of another size than the image is scaled to it first, as
 * VAEEncodeForInpaint and InpaintModelConditioning do.
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";
import { growMask, readMask, roundMask, type UploadReader } from "./masks.js";
import { interpolate } from "../../image/latent-resize.js";
import { grayToRgb, maskToGray, type Mask } from "../../image/mask.js";
import { encodePng } from "../../image/png.js";
import type { NoiseMaskSpec } from "../job.js";

/** The latent classes that carry a noise mask. */
export const INPAINT_LATENTS = { VAEEncodeForInpaint: [0], SetLatentNoiseMask: [0], InpaintModelConditioning: [2] };

/** The VAE encode node of an inpainting latent: its pixels and vae inputs are the image's. */
export function inpaintEncoder(graph: Graph, latent: GraphNode): GraphNode {
  return latent.classType === "SetLatentNoiseMask"
    ? graph.follow(latent, "samples", { VAEEncode: [0] }, "a LATENT from a VAEEncode (the image to repaint)")
    : latent;
}

/**
 * The job's noise mask for an inpainting latent whose encoder's pixels are `pixels` (the upload, or
 * what the image nodes before the encoder make of it), before VAEEncode's crop to multiples of 8: a
 * mask of another size is scaled to them first (torch's bilinear interpolate, as the encode nodes
 * scale theirs), then cut with the image.
 */
export function inpaintNoiseMask(graph: Graph, latent: GraphNode, uploads: UploadReader, pixels: { width: number; height: number }): NoiseMaskSpec {
  const concatOnly = latent.classType === "InpaintModelConditioning" && nodeFields(latent).optionalBool("noise_mask") === false;
  let mask = readMask(graph, latent, "mask", uploads);
  if (mask.width !== pixels.width || mask.height !== pixels.height) {
    const scaled = interpolate({ data: mask.data, shape: [1, 1, mask.height, mask.width] }, pixels.height, pixels.width, "bilinear");
    mask = { width: pixels.width, height: pixels.height, data: scaled.data };
  }
  if (mask.width < 8 || mask.height < 8) throw new NodeError(latent, `the image and mask are ${mask.width}x${mask.height}, smaller than 8x8`, "mask");
  const cut = cropToEights(mask);
  const grey = latent.classType === "VAEEncodeForInpaint" ? roundMask(cut) : undefined;
  const noise = grey ? growMask(cut, nodeFields(latent).int("grow_mask_by", 0, 64)) : cut;
  // diffusers repaints where the mask is >= 0.5
  if (!noise.data.some((v) => v >= 0.5)) {
    throw new NodeError(latent, `the mask has nothing to repaint in the ${cut.width}x${cut.height} image (no value at or above 0.5${grey ? " after rounding" : ""}); 1 (white, or transparent in LoadImage) marks the area to repaint`, "mask");
  }
  return { mask: maskPng(noise), ...(grey ? { greyOut: maskPng(grey) } : {}), ...(concatOnly ? { concatOnly } : {}) };
}

/** ComfyUI's vae_encode_crop_pixels on a mask: whole multiples of 8 about the centre. */
function cropToEights(m: Mask): Mask {
  const w = m.width - (m.width % 8), h = m.height - (m.height % 8);
  const x0 = (m.width % 8) >> 1, y0 = (m.height % 8) >> 1;
  if (w === m.width && h === m.height) return m;
  const data = new Float32Array(w * h);
  for (let y = 0; y < h; y++) data.set(m.data.subarray((y + y0) * m.width + x0, (y + y0) * m.width + x0 + w), y * w);
  return { width: w, height: h, data };
}

/** A mask as the job carries it: a grey PNG, base64 (exact for masks read from 8-bit uploads). */
const maskPng = (m: Mask): string => encodePng(grayToRgb(maskToGray(m))).toString("base64");
