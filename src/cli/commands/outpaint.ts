import { parseArgs } from "node:util";
import { readImageFile } from "../../image/image.js";
import { outpaintImage, OUTPAINT_FILLS } from "../../recipes/outpaint.js";
import type { OutpaintFill } from "../../image/outpaint.js";
import { UsageError } from "../usage-error.js";
import { COMMON_OPTIONS, intFlag, limitsAsUsage, numberFlag, parseCommon, runAndSave } from "./generate.js";
import { roundMargins } from "../../image/outpaint.js";

export const outpaintUsage = `ssd1b outpaint --image I.png --extend L,T,R,B --prompt TEXT [options]
  Outpainting: extends the canvas by L,T,R,B pixels (the size rounded up to a multiple of 8) and
  inpaints the new area (and --overlap pixels into the original, so the seam is repainted).
  --extend L,T,R,B     pixels to add left, top, right, bottom (e.g. 0,0,256,0)
  --fill F             pre-fill of the new area: ${OUTPAINT_FILLS.join(", ")} (default edge)
  --overlap PX         how far the mask reaches into the original (default 8)
  --strength S         in (0, 1] (default 1)
  (and the options of generate except --width/--height)`;

export async function outpaintCommand(argv: string[]): Promise<void> {
  const { values, positionals, tokens } = parseArgs({
    args: argv, allowPositionals: true, tokens: true,
    options: { ...COMMON_OPTIONS, image: { type: "string" }, extend: { type: "string" }, fill: { type: "string" }, overlap: { type: "string" }, strength: { type: "string" } },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (put the prompt in --prompt "...")`);
  const parsed = parseCommon(values, tokens);
  if (!values.image) throw new UsageError("--image is required");
  if (!values.extend) throw new UsageError("--extend L,T,R,B is required");
  const sides = values.extend.split(",").map((v) => v.trim());
  const nums = sides.map(Number);
  if (sides.length !== 4 || sides.some((v) => v === "") || !nums.every((v) => Number.isSafeInteger(v) && v >= 0)) throw new UsageError(`--extend takes four whole numbers L,T,R,B, got "${values.extend}"`);
  if (nums.every((v) => v === 0)) throw new UsageError("--extend: at least one side must be above 0");
  const fill = values.fill as OutpaintFill | undefined;
  if (fill !== undefined && !OUTPAINT_FILLS.includes(fill)) throw new UsageError(`--fill must be one of ${OUTPAINT_FILLS.join(", ")}, got "${fill}"`);
  const strength = numberFlag(values, "strength") ?? 1;
  if (!(strength > 0 && strength <= 1)) throw new UsageError(`--strength must be in (0, 1], got ${strength}`);
  const overlap = intFlag(values, "overlap", 0);
  const image = readImageFile(values.image);
  const [left, top, right, bottom] = nums;
  // before the model loads: the canvas within the limits (rounded up to 8 as the recipe rounds it)
  limitsAsUsage({ width: image.width + roundMargins(image.width, left, right, 8).reduce((a, b) => a + b), height: image.height + roundMargins(image.height, top, bottom, 8).reduce((a, b) => a + b) });
  await runAndSave(parsed, (pipe, onStep, signal) => outpaintImage(pipe, { ...parsed.options, image, extend: { left, top, right, bottom }, fill, overlap, strength, onStep, signal }),
    { denoisingStrength: strength });
}
