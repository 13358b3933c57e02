import { parseArgs } from "node:util";
import { readImageFile } from "../../image/image.js";
import { a1111Inpaint } from "../../recipes/a1111-inpaint.js";
import { UsageError } from "../usage-error.js";
import { COMMON_OPTIONS, intFlag, numberFlag, parseCommon, runAndSave } from "./generate.js";

export const inpaintUsage = `ssd1b inpaint --image INIT.png --mask MASK.png --prompt TEXT [--strength S] [options]
  Inpainting, equal to diffusers' StableDiffusionXLInpaintPipeline: repaints the mask's white area.
  SSD-1B / SDXL (4-channel UNets) keep the rest by blending it back each step; 9-channel inpainting
  UNets (e.g. diffusers/stable-diffusion-xl-1.0-inpainting-0.1) get the mask and the masked image.
  --image FILE         the image to repaint (PNG or JPEG; width and height multiples of 8)
  --mask FILE          same size; white = repaint, black = keep (grey: thresholded at 0.5)
  --strength S         in (0, 1]; 1 starts from pure noise (default 0.9999, as diffusers)
  --invert-mask        repaint the black area instead
  --mask-blur B        AUTOMATIC1111's mask blur in pixels (default 0)
  (and the options of generate except --width/--height)`;

export async function inpaintCommand(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({
    args: argv, allowPositionals: true, tokens: true,
    options: {
      ...COMMON_OPTIONS, image: { type: "string" }, mask: { type: "string" }, strength: { type: "string" },
      "invert-mask": { type: "boolean" }, "mask-blur": { type: "string" },
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
  const blur = intFlag(values, "mask-blur", 0) ?? 0;
  const settings = { invertMask: values["invert-mask"] === true, maskBlurX: blur, maskBlurY: blur };
  await runAndSave(parsed, (pipe, onStep, signal) => a1111Inpaint(pipe, { ...parsed.options, image, maskImage: mask, strength, settings, onStep, signal }),
    { denoisingStrength: strength, ...(blur ? { extra: { "Mask blur": blur } } : {}) });
}
