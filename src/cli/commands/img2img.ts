import { parseArgs } from "node:util";
import { readImageFile } from "../../image/image.js";
import { UsageError } from "../usage-error.js";
import { COMMON_OPTIONS, numberFlag, parseCommon, runAndSave } from "./generate.js";
import { REFINER_HELP, REFINER_OPTIONS, parseRefiner, refinerInfo, withRefiner } from "../refiner-flags.js";
import { img2imgRefined } from "../../recipes/refiner.js";

export const img2imgUsage = `ssd1b img2img --image INIT.png --prompt TEXT [--strength S] [options]
  Image to image, equal to diffusers' StableDiffusionXLImg2ImgPipeline; the output has the init image's size.
  --image FILE.png     the init image (PNG; width and height multiples of 8)
  --strength S         how much to change it, in (0, 1]: the last S of the schedule runs (default 0.3)
  (and the options of generate except --width/--height: single-file checkpoints with --config, --vae,
  --lora FILE[:W], --prompt-syntax a1111, LCM models with --scheduler LCM, --taesd DIR|FILE --fast-decode;
  the init image is still encoded by the VAE)
${REFINER_HELP}`;

export async function img2imgCommand(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({
    args: argv, allowPositionals: true, tokens: true,
    options: { ...COMMON_OPTIONS, ...REFINER_OPTIONS, image: { type: "string" }, strength: { type: "string", default: "0.3" } },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (put the prompt in --prompt "...")`);
  const parsed = parseCommon(values, tokens);
  const strength = numberFlag(values, "strength")!;
  if (!(strength > 0 && strength <= 1)) throw new UsageError(`--strength must be in (0, 1], got ${strength}`);
  if (!values.image) throw new UsageError("--image is required");
  const image = readImageFile(values.image);
  for (const [name, v] of [["width", image.width], ["height", image.height]] as const) {
    if (v % 8 !== 0) throw new UsageError(`${values.image}: ${name} ${v} is not a multiple of 8; crop or resize the image`);
  }
  const refiner = parseRefiner(values, parsed);
  await runAndSave(parsed, (pipe, onStep, signal) => {
    const call = { ...parsed.options, image, strength, onStep, signal };
    return refiner ? withRefiner(refiner, parsed, pipe, (r, at) => img2imgRefined(pipe, r, call, at)) : pipe.img2img(call);
  }, { denoisingStrength: strength, ...(refiner ? { extra: refinerInfo(refiner) } : {}) });
}
