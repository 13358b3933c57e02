import { basename } from "node:path";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { readImageFile } from "../../image/image.js";
import { encodePng } from "../../image/png.js";
import { TensorStore, saveTensors } from "../../safetensors/index.js";
import { Upscaler } from "../../pipelines/upscaler.js";
import { writeAtomically } from "../../util/atomic-write.js";
import { UsageError } from "../usage-error.js";

export const upscaleUsage = `ssd1b upscale --model MODEL.safetensors --image IN.png --output OUT.png [--scale S] [--tile N] [--tile-overlap N] [--bgr] [--device cpu|webgpu]
  Upscales an image with an ESRGAN-family model (RRDBNet: RealESRGAN_x4plus, x2plus, 4x-UltraSharp, ...;
  basicsr or old ESRGAN key names, .safetensors). --scale (default: the model's) other than the model's
  runs it until the image is at least that size, then resizes with Lanczos, as AUTOMATIC1111 does.
  --tile 192 (input pixels, 0 = whole image at once) with --tile-overlap 16 pixels of context per side;
  --bgr feeds the network BGR as A1111 does (default RGB, as Real-ESRGAN and ComfyUI).
  --tensors IN.safetensors (instead of --image): runs the network on every in.NAME [1, 3, H, W] and
  writes the unclamped out.NAME to --output (.safetensors).`;

const int = (v: string | undefined, flag: string, dflt: number): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be an integer >= 0, got "${v}"`);
  return n;
};

export async function upscaleCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      model: { type: "string" }, image: { type: "string" }, tensors: { type: "string" }, output: { type: "string" },
      scale: { type: "string" }, tile: { type: "string" }, "tile-overlap": { type: "string" }, bgr: { type: "boolean", default: false },
      device: { type: "string", default: "cpu" },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.model) throw new UsageError("upscale needs --model FILE.safetensors");
  if (!values.output) throw new UsageError("upscale needs --output");
  if (!values.image === !values.tensors) throw new UsageError("upscale needs exactly one of --image and --tensors");
  if (values.device !== "cpu" && values.device !== "webgpu") throw new UsageError(`--device must be cpu or webgpu, got "${values.device}"`);
  let scale: number | undefined;
  if (values.scale !== undefined) {
    scale = Number(values.scale);
    if (!(scale > 0 && Number.isFinite(scale))) throw new UsageError(`--scale must be a positive number, got "${values.scale}"`);
  }
  const tile = int(values.tile, "--tile", 192), tileOverlap = int(values["tile-overlap"], "--tile-overlap", 16);
  const up = await Upscaler.fromFile(values.model, { session: { device: values.device }, channelOrder: values.bgr ? "bgr" : "rgb" });
  try {
    if (values.tensors) {
      const store = TensorStore.open(values.tensors);
      const out: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
      for (const [k, e] of store.tensors) {
        if (!k.startsWith("in.")) continue;
        const y = await up.forward({ data: store.float32(k), shape: e.shape }, { tile, tileOverlap });
        out[`out.${k.slice(3)}`] = { dtype: "F32", shape: y.shape, data: y.data };
      }
      if (!Object.keys(out).length) throw new UsageError(`${values.tensors}: no in.NAME tensors`);
      writeAtomically(values.output, (tmp) => saveTensors(tmp, out));
      process.stderr.write(`wrote ${Object.keys(out).join(", ")} to ${values.output}\n`);
      return;
    }
    const image = readImageFile(values.image!);
    const result = await up.upscale(image, { scale, tile, tileOverlap });
    const by = scale ?? up.scale;
    // The fields A1111's Extras tab writes.
    const text = { parameters: `Postprocess upscale by: ${by}, Postprocess upscaler: ${basename(values.model).replace(/\.safetensors$/i, "")}` };
    writeAtomically(values.output, (tmp) => writeFileSync(tmp, encodePng(result, text)));
    process.stderr.write(`${image.width}x${image.height} -> ${result.width}x${result.height} (RRDBNet x${up.scale}, ${up.layout} names) written to ${values.output}\n`);
  } finally {
    await up.release();
  }
}
