/**
 * The component kinds of a diffusers SDXL-family model folder, detected from config.json, and what
 * each needs: the full parameter list a checkpoint must hold (for synth and for checking files).
 */
import { Graph } from "../ir/graph.js";
import { WeightBuilder, rejectLeftovers, shapeOnlySource, type WeightSource } from "../nn/weights.js";
import { ConfigError, buildUNetGraph, parseUNetConfig } from "./unet/index.js";
import { buildClipTextModel } from "./clip/clip-text-model.js";
import { parseClipTextConfig } from "./clip/config.js";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig, vaeDownscale } from "./vae/autoencoder-kl.js";
import { buildTaesdHalves, parseTaesdConfig } from "./taesd/autoencoder-tiny.js";
import { buildControlNetGraph, parseControlNetConfig } from "./controlnet/index.js";

/** "autoencoder-tiny": diffusers AutoencoderTiny (TAESD), for previews and fast decoding; "controlnet": ControlNetModel. */
export type ComponentKind = "unet" | "vae" | "clip-text" | "clip-text-projection" | "autoencoder-tiny" | "controlnet";

/**
 * What a component folder holds. Text encoder configs often lack `architectures`: then the weights
 * decide (a `text_projection.weight` means CLIPTextModelWithProjection), else the folder name.
 */
export function detectComponentKind(config: Record<string, any>, folderName = "", weightKeys?: Iterable<string>): ComponentKind {
  const cls = config._class_name as string | undefined;
  if (cls === "UNet2DConditionModel") return "unet";
  if (cls === "AutoencoderKL") return "vae";
  if (cls === "AutoencoderTiny") return "autoencoder-tiny";
  if (cls === "ControlNetModel") return "controlnet";
  const arch = (config.architectures ?? []) as string[];
  if (arch.includes("CLIPTextModelWithProjection")) return "clip-text-projection";
  if (arch.includes("CLIPTextModel")) return "clip-text";
  if (config.model_type === "clip_text_model") {
    if (weightKeys) return [...weightKeys].includes("text_projection.weight") ? "clip-text-projection" : "clip-text";
    return folderName.endsWith("text_encoder_2") ? "clip-text-projection" : "clip-text";
  }
  // Configs saved without _class_name: recognise them by their characteristic keys.
  if (config.conditioning_embedding_out_channels !== undefined && config.block_out_channels) return "controlnet";
  if (config.cross_attention_dim !== undefined && config.block_out_channels) return "unet";
  if (config.decoder_block_out_channels !== undefined && config.num_decoder_blocks !== undefined) return "autoencoder-tiny";
  if (config.latent_channels !== undefined && config.block_out_channels) return "vae";
  if (cls) throw new ConfigError(`unsupported model class "${cls}" (supported: UNet2DConditionModel, ControlNetModel, AutoencoderKL, AutoencoderTiny, CLIPTextModel, CLIPTextModelWithProjection)`);
  throw new ConfigError(`config.json does not say what model it is (no _class_name, architectures or model_type, and no UNet/VAE keys)`);
}

/** Builds every graph of the component against `source` (both halves of the VAE). */
function buildAll(kind: ComponentKind, config: Record<string, any>, source: WeightSource): WeightBuilder {
  const graph = new Graph();
  const vb = WeightBuilder.root(graph, source);
  switch (kind) {
    case "unet":
      buildUNetGraph(graph, vb, parseUNetConfig(config), { batch: 1, height: 16, width: 16 });
      break;
    case "controlnet":
      buildControlNetGraph(graph, vb, parseControlNetConfig(config), { batch: 1, height: 16, width: 16 });
      break;
    case "vae": {
      const c = parseVaeConfig(config);
      const f = vaeDownscale(c);
      buildVaeEncoder(vb, c, [1, c.inChannels, f, f]);
      buildVaeDecoder(vb, c, [1, c.latentChannels, 1, 1]);
      break;
    }
    case "autoencoder-tiny":
      buildTaesdHalves(vb, parseTaesdConfig(config), { encoder: true });
      break;
    default:
      buildClipTextModel(vb, parseClipTextConfig(config), { batch: 1, withProjection: kind === "clip-text-projection" });
  }
  return vb;
}

/** Every parameter key and shape a checkpoint for this config must contain. */
export function expectedParameters(kind: ComponentKind, config: Record<string, any>): Map<string, number[]> {
  return buildAll(kind, config, shapeOnlySource()).requested();
}

/**
 * Checks a checkpoint against its config before any session is built: missing tensors and wrong
 * shapes throw (from WeightBuilder); leftover tensors mean the config describes another model.
 */
export function checkCheckpoint(kind: ComponentKind, config: Record<string, any>, source: WeightSource, where: string): void {
  rejectLeftovers(buildAll(kind, config, source).unused(), where);
}
