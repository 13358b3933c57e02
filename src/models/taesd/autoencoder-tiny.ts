/**
 * AutoencoderTiny (TAESD) from a diffusers folder (config.json + weights, keys `encoder.layers.N...`,
 * `decoder.layers.N...`) or a standalone decoder file: separate decode and encode graphs, each
 * compiled for one static shape. A decoder file has no encoder.
 */
import { Graph } from "../../ir/graph.js";
import { WeightBuilder, rejectLeftovers, type WeightSource } from "../../nn/weights.js";
import { CompiledGraph, type SessionOptions } from "../../runtime/session.js";
import { type TaesdConfig, parseTaesdConfig, taesdDownscale } from "./config.js";
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

export interface TaesdWeights {
  config: Record<string, any>;
  source: WeightSource;
  where: string;
  /** A standalone decoder file: no encoder. */
  decoderOnly?: boolean;
}

export interface TaesdComponent {
  config: TaesdConfig;
  source: WeightSource;
  where: string;
  hasEncoder: boolean;
  /** Compiles the decoder for one latent shape [B, C, h, w]; run with { latent } -> { decoded } in about [-1, 1]. */
  decoder(latentShape: readonly number[], session?: SessionOptions): Promise<CompiledGraph>;
  /** Compiles the encoder for one image shape [B, 3, H, W] in [-1, 1]; run with { image } -> { latents }. */
  encoder(imageShape: readonly number[], session?: SessionOptions): Promise<CompiledGraph>;
}

/** Checks the weights against the config now (missing, wrong-shape and leftover tensors throw, naming them). */
export function openTaesdWeights(weights: TaesdWeights): TaesdComponent {
  const { source, where } = weights;
  const config = parseTaesdConfig(weights.config, weights.decoderOnly ? where : `${where}/config.json`);
  const hasEncoder = !weights.decoderOnly;
  const vb = WeightBuilder.root(new Graph(), source);
  buildTaesdHalves(vb, config, { encoder: hasEncoder });
  rejectLeftovers(vb.unused(), where);
  return {
    config, source, where, hasEncoder,
    decoder: (shape, session) => CompiledGraph.create(buildTaesdDecoderGraph(config, source, shape).graph, `TAESD decoder (${where})`, session),
    encoder: async (shape, session) => {
      if (!hasEncoder) throw new Error(`${where}: a TAESD decoder file has no encoder`);
      return CompiledGraph.create(buildTaesdEncoderGraph(config, source, shape).graph, `TAESD encoder (${where})`, session);
    },
  };
}
