/**
 * A1111's latent upscale modes (GET /sdapi/v1/latent-upscale-modes). The pixel upscalers (None, Lanczos,
 * Nearest and the --upscaler-dir models) are listed by upscaler-library.ts, for GET /sdapi/v1/upscalers.
 */
export const LATENT_UPSCALE_MODES: readonly string[] = [
  "Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)",
];
