/**
 * diffusers' AutoencoderTiny config (TAESD, e.g. madebyollin/taesdxl config.json). Unknown values of
 * the keys that change the structure are rejected with the key and value.
 */
import { withoutDefaultedKeys } from "../config-defaults.js";

export interface TaesdConfig {
  inChannels: number;
  outChannels: number;
  encoderBlockOutChannels: number[];
  decoderBlockOutChannels: number[];
  /** Activation inside the blocks and after the decoder's first conv (the blocks' fuse is always ReLU). */
  actFn: "relu" | "silu" | "gelu";
  latentChannels: number;
  upsamplingScalingFactor: number;
  numEncoderBlocks: number[];
  numDecoderBlocks: number[];
  latentMagnitude: number;
  latentShift: number;
  /** 1.0 for TAESD: it works on the diffusion model's (already scaled) latents. */
  scalingFactor: number;
  forceUpcast: boolean;
}

export class TaesdConfigError extends Error {}

/** madebyollin/taesdxl's config.json (also the diffusers defaults): for synth models and benchmarks. */
export const TAESDXL_CONFIG: Readonly<Record<string, unknown>> = {
  _class_name: "AutoencoderTiny",
  act_fn: "relu",
  decoder_block_out_channels: [64, 64, 64, 64],
  encoder_block_out_channels: [64, 64, 64, 64],
  force_upcast: false,
  in_channels: 3,
  latent_channels: 4,
  latent_magnitude: 3,
  latent_shift: 0.5,
  num_decoder_blocks: [3, 3, 3, 1],
  num_encoder_blocks: [1, 3, 3, 3],
  out_channels: 3,
  scaling_factor: 1.0,
  upsampling_scaling_factor: 2,
};

export function parseTaesdConfig(file: Record<string, any>, where = "AutoencoderTiny config"): TaesdConfig {
  if (file === null || typeof file !== "object") throw new TaesdConfigError(`${where}: not a JSON object`);
  // Keys listed in _use_default_values take the class defaults, as in diffusers' from_config.
  const c = withoutDefaultedKeys(file);
  if (c._class_name !== undefined && c._class_name !== "AutoencoderTiny") {
    throw new TaesdConfigError(`${where}: _class_name "${c._class_name}" is not an AutoencoderTiny (TAESD)`);
  }
  const int = (key: string, dflt: number): number => {
    const v = c[key] ?? dflt;
    if (!Number.isInteger(v) || v < 1) throw new TaesdConfigError(`${where}: ${key} must be an integer >= 1, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (key: string, dflt: number): number => {
    const v = c[key] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new TaesdConfigError(`${where}: ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const ints = (key: string, dflt: number[], min: number): number[] => {
    const v = c[key] ?? dflt;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x >= min)) {
      throw new TaesdConfigError(`${where}: ${key} must be a non-empty list of integers >= ${min}, got ${JSON.stringify(v)}`);
    }
    return [...v];
  };
  const act = c.act_fn ?? "relu";
  const actFn = act === "swish" ? "silu" : act;
  if (actFn !== "relu" && actFn !== "silu" && actFn !== "gelu") throw new TaesdConfigError(`${where}: act_fn "${act}" is not supported (supported: relu, silu, gelu)`);
  const upsampleFn = c.upsample_fn ?? "nearest";
  if (upsampleFn !== "nearest") throw new TaesdConfigError(`${where}: upsample_fn "${upsampleFn}" is not supported (only nearest)`);
  const cfg: TaesdConfig = {
    inChannels: int("in_channels", 3),
    outChannels: int("out_channels", 3),
    encoderBlockOutChannels: ints("encoder_block_out_channels", [64, 64, 64, 64], 1),
    decoderBlockOutChannels: ints("decoder_block_out_channels", [64, 64, 64, 64], 1),
    actFn,
    latentChannels: int("latent_channels", 4),
    upsamplingScalingFactor: int("upsampling_scaling_factor", 2),
    numEncoderBlocks: ints("num_encoder_blocks", [1, 3, 3, 3], 0),
    numDecoderBlocks: ints("num_decoder_blocks", [3, 3, 3, 1], 0),
    latentMagnitude: num("latent_magnitude", 3),
    latentShift: num("latent_shift", 0.5),
    scalingFactor: num("scaling_factor", 1.0),
    forceUpcast: c.force_upcast === true,
  };
  for (const half of ["encoder", "decoder"] as const) {
    const boc = half === "encoder" ? cfg.encoderBlockOutChannels : cfg.decoderBlockOutChannels;
    const blocks = half === "encoder" ? cfg.numEncoderBlocks : cfg.numDecoderBlocks;
    if (boc.length !== blocks.length) {
      throw new TaesdConfigError(`${where}: ${half}_block_out_channels (${boc.length} entries) and num_${half}_blocks (${blocks.length}) must have the same length`);
    }
    // The stage-to-stage convs of EncoderTiny/DecoderTiny keep the channel count, so diffusers can
    // only run configs whose stages all have the same width.
    if (boc.some((ch) => ch !== boc[0])) {
      throw new TaesdConfigError(`${where}: ${half}_block_out_channels ${JSON.stringify(boc)} must all be equal (diffusers' ${half === "encoder" ? "EncoderTiny" : "DecoderTiny"} keeps the channel count between stages)`);
    }
  }
  return cfg;
}

/** Pixels per latent pixel of the decoder: upsampling_scaling_factor per stage except the last. */
export function taesdUpscale(cfg: TaesdConfig): number {
  return cfg.upsamplingScalingFactor ** (cfg.decoderBlockOutChannels.length - 1);
}

/** Pixels per latent pixel of the encoder: a stride-2 conv per stage except the first. */
export function taesdDownscale(cfg: TaesdConfig): number {
  return 2 ** (cfg.encoderBlockOutChannels.length - 1);
}
