/**
 * One decoder benchmark in its own process: the full-size synth SDXL VAE decoder or TAESDXL decoder
 * (fp16 weights) on one latent [1, 4, size/8, size/8]. Prints one JSON line.
 * Usage: node decode-worker.js vae|taesd <component-dir> <size> <runs> [cpu|webgpu]
 */
import { performance } from "node:perf_hooks";
import { openVae } from "../src/loaders/vae.js";
import { openTaesdWeights } from "../src/loaders/taesd.js";
import { openTaesdSource } from "../src/loaders/model-source.js";

const [kind, dir, sizeArg, runsArg, deviceArg] = process.argv.slice(2);
const session = { device: deviceArg === "webgpu" ? "webgpu" as const : "cpu" as const };
const size = Number(sizeArg), runs = Number(runsArg);
const shape = [1, 4, size / 8, size / 8];
const latent = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37) * 2);

let t = performance.now();
const graph = kind === "taesd"
  ? await openTaesdWeights(openTaesdSource(dir, "fp16")).decoder(shape, session)
  : await openVae(dir, "fp16").decoder(shape, session);
const sessionSeconds = (performance.now() - t) / 1000;
const times: number[] = [];
for (let r = 0; r < runs; r++) {
  t = performance.now();
  await graph.run({ latent });
  times.push((performance.now() - t) / 1000);
}
console.log(JSON.stringify({ kind, size, sessionSeconds, times, flops: graph.flops, peakRss: process.resourceUsage().maxRSS * 1024 }));
await graph.release();
