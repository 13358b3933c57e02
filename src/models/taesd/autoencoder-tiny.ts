/**
 * AutoencoderTiny (TAESD) from a diffusers folder (config.json + weights, keys `encoder.layers.N...`,
 * `decoder.layers.N...`) or a standalone decoder file: separate decode and encode graphs. Opening
 * and compiling is in loaders/taesd.ts.
 */
import { Graph } from "../../ir/graph.js";
import { WeightBuilder, type WeightSource } from "../../nn/weights.js";
import { type TaesdConfig, taesdDownscale } from "./config.js";
import { buildTaesdDecoder } from "./decoder.js";
import { buildTaesdEncoder } from "./encoder.js";

export { buildTaesdDecoder, DecoderTiny } from "./decoder.js";
export { buildTaesdEncoder, EncoderTiny } from "./encoder.js";
export { parseTaesdConfig, taesdDownscale, taesdUpscale, TaesdConfigError, TAESDXL_CONFIG, type TaesdConfig } from "./config.js";
export { decoderFileConfig, decoderFileSource, decoderFileKey, diffusersDecoderKey } from "./decoder-file.js";
export { scaleTaesdLatents, unscaleTaesdLatents } from "./latent-scaling.js";

/** Decoder graph with output "decoded" (input "latent"). */
export function buildTaesdDecoderGraph(config: TaesdConfig, source: WeightSource, latentShape: readonly number[]) {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source);
  const out = buildTaesdDecoder(vb, config, latentShape);
  graph.output("decoded", out.decoded);
  return { graph, vb, outputs: out };
}

/** Encoder graph with output "latents" (input "image"). */
export function buildTaesdEncoderGraph(config: TaesdConfig, source: WeightSource, imageShape: readonly number[]) {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source);
  const out = buildTaesdEncoder(vb, config, imageShape);
  graph.output("latents", out.latents);
  return { graph, vb, outputs: out };
}

/** Builds the halves a checkpoint holds (for parameter lists and checks) with tiny shapes. */
export function buildTaesdHalves(vb: WeightBuilder, config: TaesdConfig, halves: { encoder: boolean }): void {
  buildTaesdDecoder(vb, config, [1, config.latentChannels, 1, 1]);
  if (halves.encoder) {
    const f = taesdDownscale(config);
    buildTaesdEncoder(vb, config, [1, config.inChannels, f, f]);
  }
}
