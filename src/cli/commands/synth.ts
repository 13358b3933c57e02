import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { readConfig } from "../../loaders/component.js";
import { detectComponentKind, expectedParameters } from "../../models/components.js";
import { writeSynthFile, type SynthDtype } from "../../synth/write-synth.js";
import { UsageError } from "../usage-error.js";

export const synthUsage = `ssd1b synth <model-dir> [--dtype fp32|fp16]
  Writes deterministic "synth" weights (the fixtures' formula) for every component folder of a
  diffusers-layout model (unet/, vae/, text_encoder/, text_encoder_2/, taesd/ for a TAESD, controlnet/)
  that has a config.json, under the real file names (fp16: *.fp16.safetensors). <model-dir> may also be
  one component folder (e.g. an AutoencoderTiny folder with taesdxl's config.json, or a ControlNetModel).`;

const COMPONENT_FOLDERS = ["unet", "vae", "text_encoder", "text_encoder_2", "taesd", "controlnet"];

export function synthComponent(dir: string, dtype: SynthDtype): string {
  const config = readConfig(dir);
  const kind = detectComponentKind(config, basename(dir));
  const base = kind === "unet" || kind === "vae" || kind === "autoencoder-tiny" || kind === "controlnet" ? "diffusion_pytorch_model" : "model";
  const file = join(dir, `${base}${dtype === "fp16" ? ".fp16" : ""}.safetensors`);
  writeSynthFile(file, expectedParameters(kind, config), dtype);
  return file;
}

export function synthModel(modelDir: string, dtype: SynthDtype, log: (line: string) => void = () => {}): string[] {
  if (!existsSync(modelDir)) throw new UsageError(`model folder not found: ${modelDir}`);
  const dirs = existsSync(join(modelDir, "config.json"))
    ? [modelDir]
    : COMPONENT_FOLDERS.map((c) => join(modelDir, c)).filter((d) => existsSync(join(d, "config.json")));
  if (dirs.length === 0) throw new UsageError(`${modelDir}: no component folder with a config.json (looked for ${COMPONENT_FOLDERS.join(", ")})`);
  return dirs.map((d) => {
    const t = Date.now();
    const file = synthComponent(d, dtype);
    log(`wrote ${file} (${((Date.now() - t) / 1000).toFixed(1)} s)`);
    return file;
  });
}

export async function synthCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { dtype: { type: "string", default: "fp32" } } });
  if (positionals.length !== 1) throw new UsageError("synth needs exactly one <model-dir>");
  const dtype = values.dtype;
  if (dtype !== "fp32" && dtype !== "fp16") throw new UsageError(`--dtype must be fp32 or fp16, got "${dtype}"`);
  synthModel(positionals[0], dtype, (l) => process.stderr.write(l + "\n"));
}
