/**
 * A TAESD (AutoencoderTiny) opened for inference: weights checked against the config once, then a
 * decoder or encoder graph compiled per static shape. A standalone decoder file has no encoder.
 */
import { Graph } from "../ir/graph.js";
import { WeightBuilder, rejectLeftovers, type WeightSource } from "../nn/weights.js";
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import { buildTaesdDecoderGraph, buildTaesdEncoderGraph, buildTaesdHalves, parseTaesdConfig, type TaesdConfig } from "../models/taesd/autoencoder-tiny.js";
import type { ComponentWeights } from "./component.js";

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
export function openTaesdWeights(weights: ComponentWeights): TaesdComponent {
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
