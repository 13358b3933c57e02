import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { fixture } from "./fixtures.js";
import { synthModel } from "../../src/cli/commands/synth.js";

/** A copy of a fixture pipeline folder (configs, tokenizers) under `tmp`, with synth weights; made once per folder. */
export function tinyModelIn(tmp: string, name: "tiny-ssd" | "tiny-sdxl" = "tiny-ssd"): string {
  const dir = join(tmp, name);
  if (!existsSync(join(dir, "unet", "diffusion_pytorch_model.safetensors"))) {
    cpSync(fixture("pipeline", name), dir, { recursive: true });
    synthModel(dir, "fp32");
  }
  return dir;
}
