import assert from "node:assert/strict";
import { diff } from "./fixtures.js";
import { StableDiffusionXLPipeline, type GenerateOptions, type PipelineLoadOptions } from "../../src/pipelines/sdxl/index.js";

/**
 * A tiny pipeline's images with `load("float")` and `load("q8")` against a diffusers reference: float
 * equal to it, q8 measurably off (so the 8-bit weights ran) but within the q8 error.
 */
export async function assertQ8ImagesClose(
  t: { diagnostic(message: string): void }, model: string, opts: GenerateOptions, ref: Float32Array,
  load: (weights: "float" | "q8") => PipelineLoadOptions,
): Promise<void> {
  const images = async (weights: "float" | "q8") => {
    const pipe = await StableDiffusionXLPipeline.fromPretrained(model, load(weights));
    try {
      return (await pipe.generate(opts)).images.data;
    } finally {
      await pipe.release();
    }
  };
  const float = diff(await images("float"), ref);
  const q8 = diff(await images("q8"), ref);
  t.diagnostic(`images against diffusers: float relL2 ${float.relL2.toExponential(2)}, q8 ${q8.relL2.toExponential(2)} (max|d| ${q8.maxAbs.toExponential(2)})`);
  assert.ok(float.relL2 < 1e-4, `float: relL2 ${float.relL2}`);
  assert.ok(q8.relL2 > 10 * float.relL2 && q8.relL2 < 1e-2, `q8: relL2 ${q8.relL2}`);
}
