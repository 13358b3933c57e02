/** ControlNet folders for tests: a fixture config with synth weights; a photo-like image for Canny. */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { synthModel } from "../../src/cli/commands/synth.js";
import type { RgbImage } from "../../src/image/png.js";

/** `dir` holding `configFile` as config.json and synth weights (as `ssd1b synth DIR`). */
export function synthComponentFolder(dir: string, configFile: string): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(configFile, join(dir, "config.json"));
  synthModel(dir, "fp32");
  return dir;
}

/** 32x24: a bright box on a dark, slightly coloured ground (clear Canny edges). */
export function boxPhoto(): RgbImage {
  const img: RgbImage = { width: 32, height: 24, data: new Uint8Array(32 * 24 * 3) };
  for (let y = 0; y < 24; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) img.data[(y * 32 + x) * 3 + c] = (x > 8 && x < 24 && y > 6 && y < 18) ? 220 : 30 + c * 10;
  return img;
}
