/**
 * A1111's AND (composable diffusion): sub-prompts split as A1111's re_AND / re_weight split them; the
 * guidance is uncond + cfg·Σ w·(cond_i - uncond), so "x AND x" at cfg 5 is "x" at cfg 10 and
 * "x:0.5 AND x:0.5" is "x" itself; sub-prompts compose with prompt editing; what it is not combined
 * with is refused naming it. ComfyUI's ConditioningCombine is the same composition with weights 1/n.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isComposable, splitComposable } from "../src/prompts/composable.js";
import { applyComposableGuidance } from "../src/pipelines/guidance.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { diff, levelDiff, NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { startLocalServer } from "./helpers/local-server.js";
import { comfyRefused, runComfyPrompt } from "./helpers/comfy-client.js";
import { decodePng } from "../src/image/png.js";

const tmp = mkdtempSync(join(tmpdir(), "composable-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("sub-prompts and weights as A1111 splits them", () => {
  assert.deepEqual(splitComposable("a cat AND a dog:1.2"), [{ text: "a cat", weight: 1 }, { text: " a dog", weight: 1.2 }]);
  assert.deepEqual(splitComposable("a cat : 0.5 AND a (dog:1.3)"), [{ text: "a cat", weight: 0.5 }, { text: " a (dog:1.3)", weight: 1 }]);
  assert.deepEqual(splitComposable("ANDROID and ANDes"), [{ text: "ANDROID and ANDes", weight: 1 }], "AND as a word only");
  assert.deepEqual(splitComposable("a castle:1.5"), [{ text: "a castle", weight: 1.5 }], "a lone prompt's weight");
  assert.ok(!isComposable("a castle, (tower:1.2), [old:new:0.5]"));
  assert.ok(isComposable("a AND b"));
  const [u, a, b] = [Float32Array.of(1, 2), Float32Array.of(3, 2), Float32Array.of(0, 5)];
  assert.deepEqual(Array.from(applyComposableGuidance(Float32Array.from([...u, ...a, ...b]), 4, [1, 0.5])), [1 + 4 * 2 + 2 * -1, 2 + 0 + 2 * 3]);
});

test("pipeline: x AND x is x at twice the guidance, x:0.5 AND x:0.5 is x; sub-prompts take prompt editing; refusals", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  try {
    const common = { width: 64, height: 64, numInferenceSteps: 3, scheduler: "Euler", negativePrompt: "blurry", promptSyntax: "a1111" as const, outputType: "latent" as const, numImagesPerPrompt: 2 };
    const run = async (prompt: string | string[], guidanceScale = 5, o: Record<string, unknown> = {}) => (await pipe.generate({ ...common, prompt, guidanceScale, seed: 2, ...o })).latents.data;
    const plain = await run("a red cube");
    const twice = await run("a red cube AND a red cube");
    assert.ok(diff(twice, await run("a red cube", 10)).relL2 < 1e-5, "x AND x = x at twice the scale");
    assert.ok(diff(twice, plain).relL2 > 1e-3);
    assert.ok(diff(await run("a red cube:0.5 AND a red cube:0.5"), plain).relL2 < 1e-5, "halves add up to x");
    assert.ok(diff(await run("a red cube:2"), await run("a red cube", 10)).relL2 < 1e-5, "a lone weight scales the guidance");
    const composed = await run("a red cube AND a blue sphere");
    assert.ok(diff(composed, plain).relL2 > 1e-3 && diff(composed, await run("a blue sphere")).relL2 > 1e-3);
    // a list of prompts splitting alike; each sub-prompt with its own prompt editing
    const pair = await pipe.generate({ ...common, numImagesPerPrompt: 1, guidanceScale: 5, seed: 2, prompt: ["a red cube AND a [blue:green:0.5] sphere", "a red cube AND a blue sphere"] });
    assert.ok(pair.latents.data.every(Number.isFinite));
    for (const [o, message] of [
      [{ guidanceScale: 1 }, /AND \(composable prompts\) needs classifier-free guidance/],
      [{ pagScale: 2, pagAppliedLayers: "up_blocks.0" }, /not combined with PAG/],
      [{ guidanceRescale: 0.5 }, /not combined with guidance rescale/],
      [{ prompt: ["a AND b", "c"] }, /must split alike at AND/],
      [{ prompt2: "x" }, /prompt2 is not combined with AND/],
    ] as [Record<string, unknown>, RegExp][]) {
      await assert.rejects(pipe.generate({ ...common, guidanceScale: 5, prompt: "a red cube AND a blue sphere", ...o } as Parameters<typeof pipe.generate>[0]), (e: Error) => e instanceof PipelineInputError && message.test(e.message), JSON.stringify(o));
    }
    // the diffusers syntax reads AND as a word
    assert.ok(diff(await run("a red cube AND a red cube", 5, { promptSyntax: "diffusers" }), twice).relL2 > 1e-3);
  } finally {
    await pipe.release();
  }
});

test("ComfyUI's ConditioningCombine: the prompts' predictions averaged (sub-prompts of weight 1/n); Combine(x, x) is x; refusals", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const server = await startLocalServer(pipe);
  try {
    const graph = (a: string, b: string, extra: Record<string, unknown> = {}) => ({
      3: { class_type: "KSampler", inputs: { seed: 6, steps: 3, cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", denoise: 1, model: ["4", 0], positive: ["10", 0], negative: ["7", 0], latent_image: ["5", 0] } },
      4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
      5: { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
      6: { class_type: "CLIPTextEncode", inputs: { text: a, clip: ["4", 1] } },
      11: { class_type: "CLIPTextEncode", inputs: { text: b, clip: ["4", 1] } },
      7: { class_type: "CLIPTextEncode", inputs: { text: "blurry", clip: ["4", 1] } },
      10: { class_type: "ConditioningCombine", inputs: { conditioning_1: ["6", 0], conditioning_2: ["11", 0] } },
      8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
      9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
      ...extra,
    });
    const lib = async (o: Record<string, unknown>) => (await pipe.generate({ negativePrompt: "blurry", numInferenceSteps: 3, guidanceScale: 5, seed: 6, width: 64, height: 64, scheduler: "Euler", promptSyntax: "comfyui", prompt: "", ...o })).images.data;
    const png = await runComfyPrompt(server.url, graph("a red cube", "a blue sphere"));
    assert.ok(levelDiff(png, await lib({ subPrompts: [{ prompt: "a red cube", weight: 0.5 }, { prompt: "a blue sphere", weight: 0.5 }] })) <= 1);
    assert.ok(levelDiff(png, await lib({ prompt: "a red cube" })) > 1);
    assert.ok(levelDiff(await runComfyPrompt(server.url, graph("a red cube", "a red cube")), await lib({ prompt: "a red cube" })) <= 1, "Combine(x, x) = x");
    assert.match(decodePng(png).text.parameters, /^a red cube AND a blue sphere\n/);
    // nested: three prompts at 1/3 each
    const nested = graph("a red cube", "a blue sphere", { 12: { class_type: "CLIPTextEncode", inputs: { text: "a green cone", clip: ["4", 1] } }, 13: { class_type: "ConditioningCombine", inputs: { conditioning_1: ["10", 0], conditioning_2: ["12", 0] } } });
    (nested[3] as any).inputs.positive = ["13", 0];
    const third = 1 / 3;
    assert.ok(levelDiff(await runComfyPrompt(server.url, nested), await lib({ subPrompts: ["a red cube", "a blue sphere", "a green cone"].map((prompt) => ({ prompt, weight: third })) })) <= 1);
    const other = graph("a", "b", { 14: { class_type: "CLIPSetLastLayer", inputs: { clip: ["4", 1], stop_at_clip_layer: -3 } } });
    (other[11] as any).inputs.clip = ["14", 0];
    await comfyRefused(server.url, other, "11", "clip", /the combined prompts must take the same CLIP here/);
  } finally {
    await server.close();
    await pipe.release();
  }
});
