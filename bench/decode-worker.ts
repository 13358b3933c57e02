/**
 * One decoder benchmark in its own process: the full-size synth SDXL VAE decoder or TAESDXL decoder
 * (fp16 weights) on one latent [1, 4, size/8, size/8]. Prints one JSON line.
 * Usage: node decode-worker.js vae|vae-tiled:<tile>|taesd <component-dir> <size> <runs> [cpu|webgpu] [<output file>]
 * vae-tiled:<tile>: the VAE runner with tiling at <tile> pixels (--vae-tile-size); each run includes the tile
 * sessions' creation (one shape's session at a time). With an output file, the last decode is written there (float32).
 */
import { performance } from "node:perf_hooks";
import { openVae } from "../src/loaders/vae.js";
import { openTaesdWeights } from "../src/loaders/taesd.js";
import { openTaesdSource } from "../src/loaders/model-source.js";
import { folderComponent } from "../src/loaders/component.js";
import { VaeRunner } from "../src/pipelines/sessions.js";
import { writeFileSync } from "node:fs";

const [kind, dir, sizeArg, runsArg, deviceArg, outFile] = process.argv.slice(2);
const session = { device: deviceArg === "webgpu" ? "webgpu" as const : "cpu" as const };
const size = Number(sizeArg), runs = Number(runsArg);
const shape = [1, 4, size / 8, size / 8];
const latent = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37) * 2);

let t = performance.now();
const tiled = kind.startsWith("vae-tiled:") ? VaeRunner.fromWeights(folderComponent(dir, "fp16"), session) : undefined;
if (tiled) tiled.tiling = { tileSize: Number(kind.slice("vae-tiled:".length)) };
const graph = tiled ? undefined : kind === "taesd"
  ? await openTaesdWeights(openTaesdSource(dir, "fp16")).decoder(shape, session)
  : await openVae(dir, "fp16").decoder(shape, session);
const sessionSeconds = (performance.now() - t) / 1000;
const times: number[] = [];
let decoded: Float32Array | undefined;
for (let r = 0; r < runs; r++) {
  t = performance.now();
  decoded = tiled ? await tiled.decode(latent, shape[2], shape[3]) : (await graph!.run({ latent })).decoded;
  times.push((performance.now() - t) / 1000);
}
if (outFile && decoded) writeFileSync(outFile, new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength));
console.log(JSON.stringify({ kind, size, sessionSeconds, times, flops: graph?.flops ?? NaN, peakRss: process.resourceUsage().maxRSS * 1024 }));
await (tiled ?? graph)!.release();
