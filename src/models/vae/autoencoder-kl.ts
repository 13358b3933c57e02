/**
 * AutoencoderKL (diffusers): separate encode and decode graphs, since they run at different times
 * and sizes. Opening and compiling is in loaders/vae.ts.
 */
import { Graph } from "../../ir/graph.js";
import { WeightBuilder, type WeightSource } from "../../nn/weights.js";
import type { VaeConfig } from "./config.js";
import { buildVaeEncoder } from "./encoder.js";
import { buildVaeDecoder } from "./decoder.js";

export { buildVaeEncoder } from "./encoder.js";
export { buildVaeDecoder } from "./decoder.js";
export { parseVaeConfig, vaeDownscale, type VaeConfig } from "./config.js";

/** Encoder graph with outputs "mean", "logvar" and "raw_logvar" (before the clamp; input "image"). */
export function buildVaeEncoderGraph(config: VaeConfig, source: WeightSource, imageShape: readonly number[]) {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source);
  const out = buildVaeEncoder(vb, config, imageShape);
  graph.output("mean", out.mean);
  graph.output("logvar", out.logvar);
  graph.output("raw_logvar", out.rawLogvar);
  return { graph, vb, outputs: out };
}

/** Decoder graph with output "decoded" (input "latent"). */
export function buildVaeDecoderGraph(config: VaeConfig, source: WeightSource, latentShape: readonly number[]) {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source);
  const out = buildVaeDecoder(vb, config, latentShape);
  graph.output("decoded", out.decoded);
  return { graph, vb, outputs: out };
}
