/**
 * FreeU through every front end: the native API's `freeu` field, ComfyUI's FreeU and FreeU_V2 nodes
 * (ComfyUI's placement) and the CLI's --freeu each give the library's image with the same settings,
 * another image than without, and the settings in the PNG's parameters; bad settings are refused
 * naming the field, node input or flag.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { startLocalServer } from "./helpers/local-server.js";
import { comfyRefused, runComfyPrompt } from "./helpers/comfy-client.js";
import { runCli } from "./helpers/cli.js";
import { nativeJobPng } from "./helpers/native-client.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import type { FreeUOptions } from "../src/pipelines/freeu.js";
import type { RunningServer } from "../src/server/app.js";
import { decodePng } from "../src/image/png.js";

const tmp = mkdtempSync(join(tmpdir(), "server-freeu-"));
let pipe: StableDiffusionXLPipeline, server: RunningServer, model = "";

before(async () => {
  if (NO_FIXTURES) return;
  model = tinyModelIn(tmp);
  pipe = await StableDiffusionXLPipeline.fromPretrained(model);
  server = await startLocalServer(pipe);
});
after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const BASE = { prompt: "a lighthouse at dusk", negativePrompt: "blurry", seed: 11, width: 64, height: 64, numInferenceSteps: 3, guidanceScale: 5, scheduler: "Euler" };
const library = async (freeu?: FreeUOptions, promptSyntax?: "comfyui") => (await pipe.generate({ ...BASE, freeu, promptSyntax })).images.data;


test("native API: freeu {b1, b2, s1, s2, variant} (or true: the SDXL values) is the library's FreeU, written in the parameters", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const body = { prompt: BASE.prompt, negative_prompt: BASE.negativePrompt, seed: BASE.seed, width: 64, height: 64, steps: 3, guidance_scale: 5, scheduler: "Euler" };
  const freeu = { b1: 1.3, b2: 1.4, s1: 0.9, s2: 0.2, variant: "comfyui" as const };
  const png = await nativeJobPng(server.url, { ...body, freeu });
  assert.ok(levelDiff(png, await library(freeu)) <= 1, "the library's FreeU");
  assert.ok(levelDiff(png, await library()) > 1, "another image than without");
  assert.match(decodePng(png).text.parameters, /freeu_enabled: True, freeu_b1: 1\.3, freeu_b2: 1\.4, freeu_s1: 0\.9, freeu_s2: 0\.2, freeu_variant: comfyui/);
  const sdxl = await nativeJobPng(server.url, { ...body, freeu: true });
  assert.ok(levelDiff(sdxl, await library({ b1: 1.1, b2: 1.2, s1: 0.6, s2: 0.4 })) <= 1);
  for (const [bad, message] of [[{ b1: 11 }, /FreeU b1 must be a number in \[0, 10\]/], [{ gain: 1 }, /freeu has no field "gain"/], ["yes", /freeu must be true or an object/], [{ variant: "v9" }, /FreeU variant "v9"/]] as const) {
    const r = await fetch(`${server.url}/v1/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, freeu: bad }) });
    assert.equal(r.status, 400);
    const err = (await r.json() as any).error;
    assert.match(err.message, message);
    assert.equal(err.param, "freeu");
  }
});

/** ComfyUI's default graph with a model patch node (id 10) between the checkpoint and the sampler. */
function patchedGraph(patches: Record<string, { class_type: string; inputs: Record<string, unknown> }>, samplerModel: string): Record<string, any> {
  return {
    3: { class_type: "KSampler", inputs: { seed: BASE.seed, steps: 3, cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", denoise: 1, model: [samplerModel, 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: BASE.prompt, clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: BASE.negativePrompt, clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
    ...patches,
  };
}

test("ComfyUI: FreeU and FreeU_V2 on the MODEL are the library's FreeU in ComfyUI's placement; two patches are refused; /object_info lists them", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const scales = { b1: 1.3, b2: 1.4, s1: 0.9, s2: 0.2 };
  for (const [node, variant] of [["FreeU", "comfyui"], ["FreeU_V2", "comfyui-v2"]] as const) {
    const png = await runComfyPrompt(server.url, patchedGraph({ 10: { class_type: node, inputs: { model: ["4", 0], ...scales } } }, "10"));
    assert.ok(levelDiff(png, await library({ ...scales, variant }, "comfyui")) <= 1, node);
    assert.ok(levelDiff(png, await library(undefined, "comfyui")) > 1, `${node} changes the image`);
  }
  await comfyRefused(server.url, patchedGraph({
    10: { class_type: "FreeU", inputs: { model: ["4", 0], ...scales } },
    11: { class_type: "FreeU_V2", inputs: { model: ["10", 0], ...scales } },
  }, "11"), "10", "model", /one FreeU patch per model here/);
  await comfyRefused(server.url, patchedGraph({ 10: { class_type: "FreeU", inputs: { model: ["4", 0], ...scales, s2: 12 } } }, "10"), "10", "s2", /s2/);
  const info = await (await fetch(`${server.url}/object_info`)).json() as any;
  assert.deepEqual(info.FreeU.input.required.b1, ["FLOAT", { default: 1.1, min: 0, max: 10, step: 0.01 }]);
  assert.deepEqual(info.FreeU_V2.output, ["MODEL"]);
});

test("ssd1b generate --freeu: the library's FreeU, in the parameters; bad values are usage errors", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const out = join(tmp, "cli.png");
  const r = runCli(["generate", "--model", model, "--prompt", BASE.prompt, "--negative-prompt", BASE.negativePrompt, "--seed", "11", "--width", "64", "--height", "64", "--steps", "3", "--guidance", "5", "--scheduler", "Euler", "--freeu", "sdxl", "--freeu-variant", "comfyui", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const png = readFileSync(out);
  assert.ok(levelDiff(png, await library({ b1: 1.1, b2: 1.2, s1: 0.6, s2: 0.4, variant: "comfyui" })) <= 1);
  assert.match(decodePng(png).text.parameters, /freeu_b1: 1\.1, freeu_b2: 1\.2, freeu_s1: 0\.6, freeu_s2: 0\.4, freeu_variant: comfyui/);
  for (const [flags, message] of [[["--freeu", "1,2,3"], /--freeu takes B1,B2,S1,S2/], [["--freeu", "1,1,1,20"], /--freeu: FreeU s2 must be a number in \[0, 10\]/], [["--freeu-variant", "comfyui"], /--freeu-variant needs --freeu/]] as const) {
    const bad = runCli(["generate", "--model", model, "--prompt", "x", ...flags]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
});
