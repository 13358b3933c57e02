/**
 * AutoencoderKL from a diffusers `vae/` folder: separate encode and decode graphs (they run at
 * different times and sizes), each compiled for one static shape.
 */
import { Graph } from "../../ir/graph.js";
import { WeightBuilder, rejectLeftovers, type WeightSource } from "../../nn/weights.js";
import { openComponent, openWeights, type Variant } from "../../loaders/component.js";
import { CompiledGraph, type SessionOptions } from "../../runtime/session.js";
import { type VaeConfig, parseVaeConfig, vaeDownscale } from "./config.js";
import { buildVaeEncoder } from "./encoder.js";
import { buildVaeDecoder } from "./decoder.js";

export { buildVaeEncoder } from "./encoder.js";
export { buildVaeDecoder } from "./decoder.js";
export { parseVaeConfig, vaeDownscale, type VaeConfig } from "./config.js";

/** Encoder graph with outputs "mean" and "logvar" (input "image"). */
export function buildVaeEncoderGraph(config: VaeConfig, source: WeightSource, imageShape: readonly number[]) {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source);
  const out = buildVaeEncoder(vb, config, imageShape);
  graph.output("mean", out.mean);
  graph.output("logvar", out.logvar);
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

export interface VaeComponent {
  config: VaeConfig;
  source: WeightSource;
  /** Compiles the encoder for one image shape [B, C, H, W]; run with { image } -> { mean, logvar }. */
  encoder(imageShape: readonly number[], session?: SessionOptions): Promise<CompiledGraph>;
  /** Compiles the decoder for one latent shape [B, C, h, w]; run with { latent } -> { decoded }. */
  decoder(latentShape: readonly number[], session?: SessionOptions): Promise<CompiledGraph>;
  /** Keys in the weight files used by neither half (empty for a clean AutoencoderKL checkpoint). */
  unusedKeys(): string[];
}

/** Opens a diffusers `vae/` folder (config.json + diffusion_pytorch_model[.fp16].safetensors). */
export function openVae(dir: string, variant?: Variant): VaeComponent {
  const files = openComponent(dir, variant);
  return openVaeWeights({ config: files.config, source: openWeights(files), where: dir }, `${dir}/config.json`);
}

/**
 * An AutoencoderKL from a config and weight source opened elsewhere (a single-file checkpoint's
 * `first_stage_model.*`); checks both halves against the config now.
 */
export function openVaeWeights(weights: { config: Record<string, any>; source: WeightSource; where: string }, configWhere = `${weights.where} config`): VaeComponent {
  const { source, where } = weights;
  const config = parseVaeConfig(weights.config, configWhere);
  const vae: VaeComponent = {
    config, source,
    encoder: async (shape, session) => CompiledGraph.create(buildVaeEncoderGraph(config, source, shape).graph, `VAE encoder (${where})`, session),
    decoder: async (shape, session) => CompiledGraph.create(buildVaeDecoderGraph(config, source, shape).graph, `VAE decoder (${where})`, session),
    unusedKeys() {
      const vb = WeightBuilder.root(new Graph(), source);
      const f = vaeDownscale(config);
      buildVaeEncoder(vb, config, [1, config.inChannels, f, f]);
      buildVaeDecoder(vb, config, [1, config.latentChannels, 1, 1]);
      return vb.unused();
    },
  };
  rejectLeftovers(vae.unusedKeys(), where);
  return vae;
}
