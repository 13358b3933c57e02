import { parseArgs } from "node:util";
import { readImageFile } from "../../image/image.js";
import { grayToRgb, rgbToGray } from "../../image/mask.js";
import { gaussianBlurGray } from "../../image/gaussian-blur.js";
import { UsageError } from "../usage-error.js";
import { COMMON_OPTIONS, intFlag, numberFlag, parseCommon, runAndSave } from "./generate.js";
import { REFINER_HELP, REFINER_OPTIONS, parseRefiner, refinerInfo, withRefiner } from "../refiner-flags.js";
import { inpaintRefined } from "../../recipes/refiner.js";

export const inpaintUsage = `ssd1b inpaint --image INIT.png --mask MASK.png --prompt TEXT [--strength S] [options]
  Inpainting, equal to diffusers' StableDiffusionXLInpaintPipeline: repaints the mask's white area.
  SSD-1B / SDXL (4-channel UNets) keep the rest by blending it back each step; 9-channel inpainting
  UNets (e.g. diffusers/stable-diffusion-xl-1.0-inpainting-0.1) get the mask and the masked image.
  --image FILE         the image to repaint (PNG or JPEG; width and height multiples of 8)
  --mask FILE          same size; white = repaint, black = keep (grey: thresholded at 0.5)
  --strength S         in (0, 1]; 1 starts from pure noise (default 0.9999, as diffusers)
  --invert-mask        repaint the black area instead
  --mask-blur B        blur the mask first (diffusers' mask_processor.blur, PIL GaussianBlur(B)): a
                       rounder edge, still thresholded at 0.5
  --padding-mask-crop PX  inpaint only the mask's box grown by PX (at full size: more detail) and paste
                       it back over the original (diffusers' padding_mask_crop)
${REFINER_HELP}
  (and the options of generate except --width/--height)`;

export async function inpaintCommand(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({
    args: argv, allowPositionals: true, tokens: true,
    options: {
      ...COMMON_OPTIONS, ...REFINER_OPTIONS, image: { type: "string" }, mask: { type: "string" }, strength: { type: "string" },
      "invert-mask": { type: "boolean" }, "mask-blur": { type: "string" }, "padding-mask-crop": { type: "string" },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (put the prompt in --prompt "...")`);
  const parsed = parseCommon(values, tokens);
  const strength = numberFlag(values, "strength") ?? 0.9999;
  if (!(strength > 0 && strength <= 1)) throw new UsageError(`--strength must be in (0, 1], got ${strength}`);
  if (!values.image) throw new UsageError("--image is required");
  if (!values.mask) throw new UsageError("--mask is required (white = repaint)");
  const image = readImageFile(values.image);
  const mask = readImageFile(values.mask);
  for (const [name, v] of [["width", image.width], ["height", image.height]] as const) {
    if (v % 8 !== 0) throw new UsageError(`${values.image}: ${name} ${v} is not a multiple of 8; crop or resize the image`);
  }
  if (mask.width !== image.width || mask.height !== image.height) {
    throw new UsageError(`${values.mask} is ${mask.width}x${mask.height} but ${values.image} is ${image.width}x${image.height}; the mask must have the image's size`);
  }
  const blur = numberFlag(values, "mask-blur") ?? 0;
  if (!(blur >= 0 && blur <= 64)) throw new UsageError(`--mask-blur must be in [0, 64], got ${blur}`);
  const paddingMaskCrop = intFlag(values, "padding-mask-crop", 0);
  let gray = rgbToGray(mask);
  if (values["invert-mask"] === true) gray = { ...gray, data: gray.data.map((v) => 255 - v) };
  if (blur > 0) gray = gaussianBlurGray(gray, blur);
  const maskImage = grayToRgb(gray);
  const refiner = parseRefiner(values, parsed);
  await runAndSave(parsed, (pipe, onStep, signal) => {
    const call = { ...parsed.options, image, maskImage, strength, paddingMaskCrop, onStep, signal };
    return refiner ? withRefiner(refiner, parsed, pipe, (r, at) => inpaintRefined(pipe, r, call, at)) : pipe.inpaint(call);
  }, { denoisingStrength: strength, extra: { ...(blur ? { "Mask blur": blur } : {}), ...(refiner ? refinerInfo(refiner) : {}) } });
}
