/**
 * Perturbed-attention guidance through every front end: the native API's pag_scale /
 * pag_adaptive_scale / pag_applied_layers, ComfyUI's PerturbedAttentionGuidance node (the middle
 * block; nothing to perturb in SSD-1B's, so the plain image there) and the CLI's --pag-* flags each
 * give the library's image, with the settings in the PNG's parameters; bad settings are refused.
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
import { nativeJob, nativeJobPng } from "./helpers/native-client.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import type { PagOptions } from "../src/pipelines/pag.js";
import type { RunningServer } from "../src/server/app.js";
import { decodePng } from "../src/image/png.js";

const tmp = mkdtempSync(join(tmpdir(), "server-pag-"));
let sdxl: StableDiffusionXLPipeline, ssd: StableDiffusionXLPipeline, server: RunningServer, ssdServer: RunningServer, model = "";

before(async () => {
  if (NO_FIXTURES) return;
  model = tinyModelIn(tmp, "tiny-sdxl");
  sdxl = await StableDiffusionXLPipeline.fromPretrained(model);
  server = await startLocalServer(sdxl);
  ssd = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-ssd"));
  ssdServer = await startLocalServer(ssd);
});
after(async () => {
  await server?.close();
  await ssdServer?.close();
  await sdxl?.release();
  await ssd?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const BASE = { prompt: "a lighthouse at dusk", negativePrompt: "blurry", seed: 11, width: 64, height: 64, numInferenceSteps: 3, guidanceScale: 5, scheduler: "Euler" };
const library = async (pipe: StableDiffusionXLPipeline, pag: PagOptions = {}, promptSyntax?: "comfyui") => (await pipe.generate({ ...BASE, ...pag, promptSyntax })).images.data;


const BODY = { prompt: BASE.prompt, negative_prompt: BASE.negativePrompt, seed: BASE.seed, width: 64, height: 64, steps: 3, guidance_scale: 5, scheduler: "Euler" };

test("native API: pag_scale, pag_adaptive_scale, pag_applied_layers are the library's PAG, written in the parameters", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const png = await nativeJobPng(server.url, { ...BODY, pag_scale: 3, pag_applied_layers: ["mid", "up_blocks.0"] });
  assert.ok(levelDiff(png, await library(sdxl, { pagScale: 3, pagAppliedLayers: ["mid", "up_blocks.0"] })) <= 1, "the library's PAG");
  assert.ok(levelDiff(png, await library(sdxl)) > 1, "another image than without");
  assert.match(decodePng(png).text.parameters, /PAG scale: 3, PAG layers: mid up_blocks\.0/);
  const adaptive = await nativeJobPng(server.url, { ...BODY, pag_scale: 3, pag_adaptive_scale: 0.005 });
  assert.ok(levelDiff(adaptive, await library(sdxl, { pagScale: 3, pagAdaptiveScale: 0.005 })) <= 1);
  // the job fails where the layers do not exist (SSD-1B's mid block), naming them
  const job = await nativeJob(ssdServer.url, { ...BODY, pag_scale: 3 });
  assert.equal(job.status, "failed");
  assert.match(JSON.stringify(job.error), /PAG layer \\"mid\\" matches no self-attention layer/);
  for (const [bad, param, message] of [[{ pag_scale: -1 }, "pag_scale", /pag_scale must be in \[0, 100\]/], [{ pag_scale: 3, pag_applied_layers: [1] }, "pag_applied_layers", /pag_applied_layers must be a layer pattern/]] as const) {
    const r = await fetch(`${server.url}/v1/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...BODY, ...bad }) });
    assert.equal(r.status, 400);
    const err = (await r.json() as any).error;
    assert.match(err.message, message);
    assert.equal(err.param, param);
  }
});

function pagGraph(scale: number, ckpt: string, extra: Record<string, unknown> = {}): Record<string, any> {
  return {
    3: { class_type: "KSampler", inputs: { seed: BASE.seed, steps: 3, cfg: 5, sampler_name: "euler", scheduler: "ddim_uniform", denoise: 1, model: ["10", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: ckpt } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 64, height: 64, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: BASE.prompt, clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: BASE.negativePrompt, clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
    10: { class_type: "PerturbedAttentionGuidance", inputs: { model: ["4", 0], scale } },
    ...extra,
  };
}

test("ComfyUI: PerturbedAttentionGuidance is the library's PAG on the mid block; on SSD-1B (no mid-block attention) the plain image; /object_info lists it", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const png = await runComfyPrompt(server.url, pagGraph(2.5, "tiny-sdxl"));
  assert.ok(levelDiff(png, await library(sdxl, { pagScale: 2.5 }, "comfyui")) <= 1);
  assert.ok(levelDiff(png, await library(sdxl, {}, "comfyui")) > 1);
  assert.ok(levelDiff(await runComfyPrompt(ssdServer.url, pagGraph(2.5, "tiny-ssd")), await library(ssd, {}, "comfyui")) <= 1, "SSD-1B: nothing to perturb");
  assert.ok(levelDiff(await runComfyPrompt(server.url, pagGraph(0, "tiny-sdxl")), await library(sdxl, {}, "comfyui")) <= 1, "scale 0: plain CFG");
  await comfyRefused(server.url, pagGraph(3, "tiny-sdxl", { 11: { class_type: "PerturbedAttentionGuidance", inputs: { model: ["10", 0], scale: 1 } }, 3: { ...pagGraph(3, "tiny-sdxl")[3], inputs: { ...pagGraph(3, "tiny-sdxl")[3].inputs, model: ["11", 0] } } }), "10", "model", /one PerturbedAttentionGuidance per model here/);
  const info = await (await fetch(`${server.url}/object_info`)).json() as any;
  assert.deepEqual(info.PerturbedAttentionGuidance.input.required.scale[1].default, 3);
});

test("ssd1b generate --pag-scale / --pag-layers: the library's PAG, in the parameters; bad flags are usage errors", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const out = join(tmp, "cli.png");
  const r = runCli(["generate", "--model", model, "--prompt", BASE.prompt, "--negative-prompt", BASE.negativePrompt, "--seed", "11", "--width", "64", "--height", "64", "--steps", "3", "--guidance", "5", "--scheduler", "Euler", "--pag-scale", "2", "--pag-layers", "mid,down_blocks.1", "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  const png = readFileSync(out);
  assert.ok(levelDiff(png, await library(sdxl, { pagScale: 2, pagAppliedLayers: ["mid", "down_blocks.1"] })) <= 1);
  assert.match(decodePng(png).text.parameters, /PAG scale: 2, PAG layers: mid down_blocks\.1/);
  for (const [flags, message] of [[["--pag-layers", "mid"], /--pag-adaptive-scale and --pag-layers need --pag-scale/], [["--pag-scale=-2"], /--pag-scale must be a number >= 0/]] as const) {
    const bad = runCli(["generate", "--model", model, "--prompt", "x", ...flags]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
});
