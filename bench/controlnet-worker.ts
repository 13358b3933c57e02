/**
 * One ControlNet or ControlNet-fed UNet benchmark in its own process: loads a synth fp16 checkpoint,
 * times forward passes at batch 2 (CFG) on zero-free inputs. Prints one JSON line.
 * Usage: node controlnet-worker.js controlnet|unet|unet-residuals <dir> <size> <runs>
 */
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { openComponent } from "../src/loaders/component.js";
import { compileComponent } from "../src/loaders/compile.js";
import { buildUNetGraph, parseUNetConfig, skipShapes, type UNetConfig } from "../src/models/unet/index.js";
import { buildControlNetGraph, conditioningDownscale, parseControlNetConfig } from "../src/models/controlnet/index.js";

const [kind, dir, sizeArg, runsArg] = process.argv.slice(2);
const size = Number(sizeArg), runs = Number(runsArg), batch = 2, lat = size / 8;
const files = openComponent(dir, "fp16");
const isNet = kind === "controlnet";
const cn = isNet ? parseControlNetConfig(files.config) : undefined;
const config: UNetConfig = cn ? cn.encoder : parseUNetConfig(files.config);
const wave = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.5);
let t = performance.now();
const model = await compileComponent(files, isNet ? "controlnet" : "unet", `${kind} bench`, (g, vb) => {
  if (cn) buildControlNetGraph(g, vb, cn, { batch, height: lat, width: lat });
  else buildUNetGraph(g, vb, config, { batch, height: lat, width: lat }, { controlnetResiduals: kind === "unet-residuals" });
});
const sessionSeconds = (performance.now() - t) / 1000;
const feeds: Record<string, Float32Array> = {
  sample: wave(batch * 4 * lat * lat, 1),
  timestep: new Float32Array(batch).fill(500),
  encoder_hidden_states: wave(batch * 77 * config.crossAttentionDim[0], 0.7),
  text_embeds: new Float32Array(batch * (config.projectionClassEmbeddingsInputDim - 6 * config.additionTimeEmbedDim)).fill(0.1),
  time_ids: Float32Array.from({ length: batch * 6 }, (_, i) => [size, size, 0, 0, size, size][i % 6]),
};
if (cn) {
  const f = conditioningDownscale(cn);
  feeds.controlnet_cond = wave(batch * cn.conditioningChannels * lat * f * lat * f, 0.3).map((v) => v + 0.5);
} else if (kind === "unet-residuals") {
  const s = skipShapes(config, batch, lat, lat);
  const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  s.down.forEach((shape, i) => { feeds[`down_block_additional_residual_${i}`] = wave(numel(shape), 0.1 + i); });
  feeds.mid_block_additional_residual = wave(numel(s.mid), 0.05);
}
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  t = performance.now();
  const out = await model.run(feeds);
  times.push((performance.now() - t) / 1000);
  if (!Object.values(out).every((o) => Number.isFinite(o[0]))) throw new Error("non-finite output");
}
console.log(JSON.stringify({ kind, size, sessionSeconds, times, loadAverage: loadavg()[0], flops: model.flops, peakRss: process.resourceUsage().maxRSS * 1024 }));
await model.release();
