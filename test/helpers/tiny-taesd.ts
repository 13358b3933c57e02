import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { synthModel } from "../../src/cli/commands/synth.js";

/**
 * A tiny AutoencoderTiny that fits pipeline/tiny-ssd: two decoder stages, so it upscales latents 2x as
 * the tiny VAE does (taesdxl's 8x fits only a 4-stage VAE, see taesd-fixture.test.ts); synth weights.
 */
export const TINY_TAESD_CONFIG = {
  _class_name: "AutoencoderTiny", act_fn: "relu", latent_channels: 4,
  decoder_block_out_channels: [8, 8], num_decoder_blocks: [1, 1], encoder_block_out_channels: [8, 8], num_encoder_blocks: [1, 1],
};

/** That TAESD as a diffusers folder under `tmp` (made once). */
export function tinyTaesdIn(tmp: string, name = "tiny-taesd"): string {
  const dir = join(tmp, name);
  if (!existsSync(join(dir, "config.json"))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify(TINY_TAESD_CONFIG));
    synthModel(dir, "fp32");
  }
  return dir;
}
