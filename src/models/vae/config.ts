/**
 * diffusers' AutoencoderKL config (vae/config.json). Only the block types the Stable Diffusion /
 * SDXL VAEs use are supported; anything else is rejected with the key and value.
 */

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  /** Activation of the resnets (the encoder/decoder output stage always uses SiLU, as diffusers does). */
  actFn: "silu" | "gelu";
  latentChannels: number;
  normNumGroups: number;
  scalingFactor: number;
  shiftFactor: number | null;
  latentsMean: number[] | null;
  latentsStd: number[] | null;
  forceUpcast: boolean;
  /** Later diffusers versions: attention in the mid blocks (default true). */
  midBlockAddAttention: boolean;
  /** Later diffusers versions: quant_conv / post_quant_conv present (default true). */
  useQuantConv: boolean;
  usePostQuantConv: boolean;
  /** sample_size (its first entry when a list): the image side it was trained at; diffusers' default VAE tile. */
  sampleSize: number;
}

/** The eps diffusers passes to every VAE norm. */
export const VAE_EPS = 1e-6;

export class VaeConfigError extends Error {}

export function parseVaeConfig(c: Record<string, any>, where = "VAE config"): VaeConfig {
  if (c === null || typeof c !== "object") throw new VaeConfigError(`${where}: not a JSON object`);
  if (c._class_name !== undefined && c._class_name !== "AutoencoderKL") {
    throw new VaeConfigError(`${where}: _class_name "${c._class_name}" is not supported (only AutoencoderKL)`);
  }
  const int = (key: string, dflt: number, min = 1, value: any = c[key]): number => {
    const v = value ?? dflt;
    if (!Number.isInteger(v) || v < min) throw new VaeConfigError(`${where}: ${key} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = c[key] ?? dflt;
    if (typeof v !== "boolean") throw new VaeConfigError(`${where}: ${key} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const numList = (key: string): number[] | null => {
    const v = c[key];
    if (v === null || v === undefined) return null;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "number")) throw new VaeConfigError(`${where}: ${key} must be a list of numbers or null`);
    return v;
  };
  const boc = c.block_out_channels ?? [64];
  if (!Array.isArray(boc) || boc.length === 0 || !boc.every((x) => Number.isInteger(x) && x > 0)) {
    throw new VaeConfigError(`${where}: block_out_channels must be a non-empty list of positive integers, got ${JSON.stringify(boc)}`);
  }
  const blockTypes = (key: string, only: string) => {
    const v = c[key] ?? [only];
    if (!Array.isArray(v) || v.length !== boc.length) {
      throw new VaeConfigError(`${where}: ${key} must list ${boc.length} blocks (one per block_out_channels entry), got ${JSON.stringify(v)}`);
    }
    const bad = v.find((t) => t !== only);
    if (bad !== undefined) throw new VaeConfigError(`${where}: ${key} entry "${bad}" is not supported (only ${only})`);
  };
  blockTypes("down_block_types", "DownEncoderBlock2D");
  blockTypes("up_block_types", "UpDecoderBlock2D");
  const act = c.act_fn ?? "silu";
  const actFn = act === "swish" ? "silu" : act;
  if (actFn !== "silu" && actFn !== "gelu") throw new VaeConfigError(`${where}: act_fn "${act}" is not supported (supported: silu, gelu)`);
  const cfg: VaeConfig = {
    inChannels: int("in_channels", 3),
    outChannels: int("out_channels", 3),
    blockOutChannels: [...boc],
    layersPerBlock: int("layers_per_block", 1),
    actFn,
    latentChannels: int("latent_channels", 4),
    normNumGroups: int("norm_num_groups", 32),
    scalingFactor: typeof c.scaling_factor === "number" ? c.scaling_factor : 0.18215,
    shiftFactor: typeof c.shift_factor === "number" ? c.shift_factor : null,
    latentsMean: numList("latents_mean"),
    latentsStd: numList("latents_std"),
    forceUpcast: bool("force_upcast", true),
    midBlockAddAttention: bool("mid_block_add_attention", true),
    useQuantConv: bool("use_quant_conv", true),
    usePostQuantConv: bool("use_post_quant_conv", true),
    sampleSize: Array.isArray(c.sample_size) ? int("sample_size", 32, 1, c.sample_size[0]) : int("sample_size", 32),
  };
  for (const ch of cfg.blockOutChannels) {
    if (ch % cfg.normNumGroups !== 0) throw new VaeConfigError(`${where}: block_out_channels entry ${ch} is not divisible by norm_num_groups ${cfg.normNumGroups}`);
  }
  return cfg;
}

/** Spatial reduction of the encoder (2 per down block except the last). */
export function vaeDownscale(cfg: VaeConfig): number {
  return 2 ** (cfg.blockOutChannels.length - 1);
}
