/**
 * The infotext fields A1111 writes for inpainting (processing.py's extra_generation_params), shared
 * by the runner (the PNG "parameters" text) and the A1111 routes (info.extra_generation_params).
 */
import type { InpaintSpec } from "./job.js";

/** A1111's labels of inpainting_fill ("Masked content"). */
const FILL_LABELS = ["fill", "original", "latent noise", "latent nothing"] as const;

export function inpaintInfoFields(s: InpaintSpec): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  // A1111 writes "Mask blur" only when blurring, and only as one number (mask_blur is x when x == y)
  if (s.maskBlurX > 0 || s.maskBlurY > 0) {
    if (s.maskBlurX === s.maskBlurY) out["Mask blur"] = s.maskBlurX;
    else { out["Mask blur X"] = s.maskBlurX; out["Mask blur Y"] = s.maskBlurY; }
  }
  if (s.invertMask) out["Mask mode"] = "Inpaint not masked";
  out["Masked content"] = FILL_LABELS[s.inpaintingFill];
  if (s.inpaintFullRes) {
    out["Inpaint area"] = "Only masked";
    out["Masked area padding"] = s.inpaintFullResPadding;
  }
  return out;
}
