/**
 * One UNet benchmark in its own process (so peak memory is this model's alone): loads a synth
 * checkpoint as a user would, then times forward passes. Prints one JSON line.
 * Usage: node unet-worker.js <model-dir> <size> <batch> <runs> [cpu|webgpu] [float32|float16] [plain|freeu|pag:LAYER,...]
 * float16 is the pipeline's float16 UNet (unetSession: GroupNorm, softmax, sinusoids in float32).
 * freeu: the FreeU graph (diffusers' placement, the SDXL scales); pag: the last third of the batch
 * perturbed in those self-attention layers (the batch should be 3: PAG under CFG).
 */
import { performance } from "node:perf_hooks";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { openComponent } from "../src/loaders/component.js";
import { compileComponent } from "../src/loaders/compile.js";
import { buildUNetGraph, parseUNetConfig } from "../src/models/unet/index.js";
import type { ExecutionDevice } from "../src/runtime/session.js";
import { unetSession } from "../src/pipelines/sessions.js";

const [dir, sizeArg, batchArg, runsArg, deviceArg, precisionArg, variantArg = "plain"] = process.argv.slice(2);
const precision = precisionArg === "float16" ? "float16" : "float32";
const size = Number(sizeArg), batch = Number(batchArg), runs = Number(runsArg);
const device = (deviceArg ?? "cpu") as ExecutionDevice;
// The fp16 files (what the bench writes); a tiny fixture folder has fp32 ones.
const files = openComponent(dir, existsSync(join(dir, "diffusion_pytorch_model.fp16.safetensors")) ? "fp16" : "fp32");
const config = parseUNetConfig(files.config);
const lat = size / 8;
let t = performance.now();
const pag = variantArg.startsWith("pag:") ? { layers: variantArg.slice(4).split(","), perturbedRows: batch / 3 } : undefined;
const freeu = variantArg === "freeu" ? "diffusers" as const : undefined;
const model = await compileComponent(files, "unet", "unet bench", (g, vb) => buildUNetGraph(g, vb, config, { batch, height: lat, width: lat }, { freeu, pag }), unetSession({ device }, precision));
const sessionSeconds = (performance.now() - t) / 1000;
const rssAfterLoad = process.memoryUsage().rss;

const feeds = {
  sample: Float32Array.from({ length: batch * 4 * lat * lat }, (_, i) => Math.sin(i)),
  timestep: new Float32Array(batch).fill(500),
  encoder_hidden_states: Float32Array.from({ length: batch * 77 * config.crossAttentionDim[0] }, (_, i) => Math.cos(i) * 0.5),
  text_embeds: new Float32Array(batch * (config.projectionClassEmbeddingsInputDim - 6 * config.additionTimeEmbedDim)).fill(0.1),
  time_ids: Float32Array.from({ length: batch * 6 }, (_, i) => [size, size, 0, 0, size, size][i % 6]),
  ...(freeu ? { freeu: Float32Array.of(1.1, 1.2, 0.6, 0.4) } : {}),
};
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  t = performance.now();
  const out = await model.run(feeds);
  times.push((performance.now() - t) / 1000);
  if (!Number.isFinite(out.sample_out[0])) throw new Error("non-finite output");
}
console.log(JSON.stringify({
  sessionSeconds, times, flops: model.flops, rssAfterLoad,
  peakRss: process.resourceUsage().maxRSS * 1024,
}));
await model.release();
