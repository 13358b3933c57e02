/**
 * An AutoencoderKL opened for inference: its weights checked against the config once, then an
 * encoder or decoder graph compiled per static shape (they run at different times and sizes).
 */
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import { unusedParameters } from "../models/components.js";
import { buildVaeDecoderGraph, buildVaeEncoderGraph, parseVaeConfig, type VaeConfig } from "../models/vae/autoencoder-kl.js";
import { rejectLeftovers, type WeightSource } from "../nn/weights.js";
import { folderComponent, type ComponentWeights, type Variant } from "./component.js";

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
  return openVaeWeights(folderComponent(dir, variant), `${dir}/config.json`);
}

/**
 * An AutoencoderKL from a config and weight source opened elsewhere (a single-file checkpoint's
 * `first_stage_model.*`); checks both halves against the config now.
 */
export function openVaeWeights(weights: ComponentWeights, configWhere = `${weights.where} config`): VaeComponent {
  const { source, where } = weights;
  const config = parseVaeConfig(weights.config, configWhere);
  const vae: VaeComponent = {
    config, source,
    encoder: async (shape, session) => CompiledGraph.create(buildVaeEncoderGraph(config, source, shape).graph, `VAE encoder (${where})`, session),
    decoder: async (shape, session) => CompiledGraph.create(buildVaeDecoderGraph(config, source, shape).graph, `VAE decoder (${where})`, session),
    unusedKeys: () => unusedParameters("vae", weights.config, source),
  };
  rejectLeftovers(vae.unusedKeys(), where);
  return vae;
}
