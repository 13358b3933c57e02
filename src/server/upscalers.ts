/**
 * The upscalers this server names, in the one place that lists them (GET /sdapi/v1/upscalers and
 * /sdapi/v1/latent-upscale-modes answer from here; whoever adds an upscaler, ESRGAN models say,
 * adds it here). A1111's entry shape: { name, model_name, model_path, model_url, scale }.
 */
export interface UpscalerEntry {
  name: string;
  model_name: string | null;
  model_path: string | null;
  model_url: string | null;
  scale: number;
}

/** As A1111 lists its built-in ones ("None" first: clients put the latent modes after it). */
export const UPSCALERS: readonly UpscalerEntry[] = [
  { name: "None", model_name: null, model_path: null, model_url: null, scale: 4 },
  { name: "Lanczos", model_name: null, model_path: null, model_url: null, scale: 4 },
  { name: "Nearest", model_name: null, model_path: null, model_url: null, scale: 4 },
];

/** A1111's latent upscale modes (the hires fix's "Latent ..." upscalers), by name. */
export const LATENT_UPSCALE_MODES: readonly string[] = [
  "Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)",
];
