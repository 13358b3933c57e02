/**
 * The AUTOMATIC1111 "parameters" text stored in a PNG tEXt chunk, which A1111, ComfyUI and image
 * viewers read back: "prompt\nNegative prompt: ...\nSteps: 25, Sampler: Euler, CFG scale: 5, ...".
 */
export interface GenerationInfo {
  prompt: string;
  negativePrompt?: string;
  steps: number;
  sampler: string;
  cfgScale: number;
  seed: number | bigint;
  width: number;
  height: number;
  model?: string;
  /** A1111's variation seed of this image and its strength (after Model, as A1111 orders them). */
  variationSeed?: number | bigint;
  variationStrength?: number;
  /** A1111's "Seed resize from: WxH" (after the variation seed). */
  seedResizeFrom?: { width: number; height: number };
  /** img2img and the hires fix. */
  denoisingStrength?: number;
  /**
   * A1111's "Clip skip: N" (after Denoising strength, only when N > 1): N counts from the last layer, so
   * diffusers' clip_skip k is N = k + 2 on SDXL (ComfyUI's CLIPSetLastLayer -N).
   */
  clipSkip?: number;
  /** A1111's tiling: "Tiling: True" (after Denoising strength, before the extra fields, as A1111 orders it). */
  tiling?: boolean;
  /** The hires fix's fields, after the others ("Hires upscale", "Hires steps", "Hires upscaler"). */
  extra?: Record<string, string | number>;
}

/** A1111 quotes a value that holds its separators (commas, colons) or a quote. */
function quote(v: string): string {
  return /[,:\n"]/.test(v) ? JSON.stringify(v) : v;
}

export function formatInfotext(info: GenerationInfo): string {
  const fields: [string, string | number | bigint | undefined][] = [
    ["Steps", info.steps],
    ["Sampler", info.sampler],
    ["CFG scale", info.cfgScale],
    ["Seed", info.seed],
    ["Size", `${info.width}x${info.height}`],
    ["Model", info.model],
    ["Variation seed", info.variationSeed],
    ["Variation seed strength", info.variationStrength],
    ["Seed resize from", info.seedResizeFrom && `${info.seedResizeFrom.width}x${info.seedResizeFrom.height}`],
    ["Denoising strength", info.denoisingStrength],
    ["Clip skip", info.clipSkip !== undefined && info.clipSkip > 1 ? info.clipSkip : undefined],
    ["Tiling", info.tiling ? "True" : undefined],
    ...Object.entries(info.extra ?? {}),
  ];
  const params = fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${typeof v === "string" ? quote(v) : String(v)}`).join(", ");
  const lines = [info.prompt];
  if (info.negativePrompt) lines.push(`Negative prompt: ${info.negativePrompt}`);
  lines.push(params);
  return lines.join("\n");
}

/** A1111's labels of the schedule types that EulerConfig.custom_sigmas names. */
const CUSTOM_LABELS: Record<string, string> = { polyexponential: "Polyexponential", kl_optimal: "KL Optimal", align_your_steps: "Align Your Steps" };

/** The AUTOMATIC1111 sampler name of a diffusers scheduler class and config (the class name when A1111 has none). */
export function samplerLabel(className: string, config: Record<string, unknown>): string {
  // the sigma schedule as A1111's old combined names carry it ("DPM++ 2M Karras", "DPM++ 3M SDE Exponential")
  // Euler's A1111 custom sigmas (custom_sigmas: "align_your_steps") take precedence, as in the scheduler
  const custom = typeof config.custom_sigmas === "string" ? CUSTOM_LABELS[config.custom_sigmas] : undefined;
  const schedule = custom ? ` ${custom}` : config.use_karras_sigmas === true ? " Karras" : config.use_exponential_sigmas === true ? " Exponential"
    : config.use_beta_sigmas === true ? " Beta" : "";
  switch (className) {
    case "EulerDiscreteScheduler": return `Euler${schedule}`;
    case "EulerAncestralDiscreteScheduler": return "Euler a";
    case "DPMSolverMultistepScheduler": {
      const order = config.solver_order === 3 ? "3M" : config.solver_order === 1 ? "1M" : "2M";
      const sde = String(config.algorithm_type).startsWith("sde-");
      return `DPM++ ${order}${sde ? " SDE" : ""}${sde && config.solver_type === "heun" ? " Heun" : ""}${schedule}`;
    }
    case "DDIMScheduler": return "DDIM";
    case "UniPCMultistepScheduler": return `UniPC${schedule}`;
    case "LCMScheduler": return "LCM";
    case "HeunDiscreteScheduler": return `Heun${schedule}`;
    case "LMSDiscreteScheduler": return `LMS${schedule}`;
    case "KDPM2DiscreteScheduler": return `DPM2${schedule}`;
    case "KDPM2AncestralDiscreteScheduler": return `DPM2 a${schedule}`;
    case "PNDMScheduler": return "PLMS";
    case "DDPMScheduler": return "DDPM";
    default: return className;
  }
}
