/**
 * One training example as diffusers' train_text_to_image_lora_sdxl.py prepares it: remember the
 * original size, resize the shorter side to the resolution, maybe flip, then crop (center, or at a
 * random corner), and record SDXL's micro-conditioning (original_size, crop top-left, target_size).
 */
import { readImageFile } from "../../image/image.js";

/** Camera photos (24-50 MP) are fine as training data, unlike as server uploads; still bounded. */
export const TRAINING_MAX_PIXELS = 64_000_000;
import type { RgbImage } from "../../image/png.js";
import type { TrainingRng } from "../rng.js";
import type { DatasetItem } from "./dataset.js";
import { crop, flipHorizontal, pyRound, resizeShorterSide, toModelInput } from "./image-ops.js";

export interface AugmentOptions {
  resolution: number;
  centerCrop: boolean;
  randomFlip: boolean;
}

export interface Sample {
  /** [3, R, R] in [-1, 1]. */
  pixels: Float32Array;
  /** original (h, w), crop top-left (y, x), target (h, w): SDXL's add_time_ids. */
  timeIds: [number, number, number, number, number, number];
  caption: string;
}

export function prepareSample(item: DatasetItem, o: AugmentOptions, rng: TrainingRng, image: RgbImage = readImageFile(item.file, { maxPixels: TRAINING_MAX_PIXELS })): Sample {
  const R = o.resolution;
  const original: [number, number] = [image.height, image.width];
  let img = resizeShorterSide(image, R);
  if (o.randomFlip && rng.uniform() < 0.5) img = flipHorizontal(img);
  let y1: number, x1: number;
  if (o.centerCrop) {
    y1 = Math.max(0, pyRound((img.height - R) / 2));
    x1 = Math.max(0, pyRound((img.width - R) / 2));
  } else {
    // RandomCrop.get_params: torch.randint(0, h - th + 1)
    y1 = rng.int(img.height - R + 1);
    x1 = rng.int(img.width - R + 1);
  }
  img = crop(img, y1, x1, R, R);
  return { pixels: toModelInput(img), timeIds: [original[0], original[1], y1, x1, R, R], caption: item.caption };
}
