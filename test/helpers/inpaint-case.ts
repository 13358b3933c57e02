/**
 * One case of ../shared/fixtures/inpaint/tiny-ssd as a client would send it: the stored init image and
 * mask (uint8 / 255 in the fixture, so exact) as 8-bit RGB images and PNGs, with diffusers' image.
 */
import { readFileSync } from "node:fs";
import { encodePng, type RgbImage } from "../../src/image/png.js";
import { fixture, openFixture } from "./fixtures.js";

export interface InpaintFixtureCase {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  guidanceScale: number;
  seed: number;
  strength: number;
  width: number;
  height: number;
  init: RgbImage;
  /** White = repaint, replicated to RGB. */
  mask: RgbImage;
  initPng: Buffer;
  maskPng: Buffer;
  /** diffusers' output image [1, H, W, 3] in [0, 1]. */
  images: Float32Array;
  /**
   * What A1111 makes of it: diffusers' image inside the (binary) mask and the init image outside, as
   * its final overlay (apply_overlay) pastes the original back; [1, H, W, 3] in [0, 1].
   */
  a1111Images: Float32Array;
}

/** [1, C, H, W] floats in [0, 1] as interleaved 8-bit RGB (C 1: grey). */
function toRgb(data: Float32Array, c: number, h: number, w: number): RgbImage {
  const out = new Uint8Array(h * w * 3);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < 3; k++) out[3 * i + k] = Math.round(data[(c === 1 ? 0 : k) * h * w + i] * 255);
  return { width: w, height: h, data: out };
}

export function inpaintFixtureCase(name: string): InpaintFixtureCase {
  const c = JSON.parse(readFileSync(fixture("inpaint", "tiny-ssd", "cases.json"), "utf8").replace(/-Infinity/g, "-1e999"))[name];
  const ref = openFixture("inpaint", "tiny-ssd", "cases.safetensors");
  const [, , h, w] = ref.get(`${name}.init_image`).shape;
  const init = toRgb(ref.float32(`${name}.init_image`), 3, h, w);
  const maskShape = ref.get(`${name}.mask`).shape;
  const mask = toRgb(ref.float32(`${name}.mask`), maskShape.length === 4 ? maskShape[1] : 1, h, w);
  const images = ref.float32(`${name}.images`);
  const a1111Images = images.map((v, i) => (mask.data[i] >= 128 ? v : init.data[i] / 255));
  return {
    prompt: c.prompt, negativePrompt: c.negative_prompt ?? undefined, steps: c.num_inference_steps, guidanceScale: c.guidance_scale,
    seed: c.seed, strength: c.strength, width: w, height: h, init, mask, initPng: encodePng(init), maskPng: encodePng(mask),
    images, a1111Images,
  };
}
