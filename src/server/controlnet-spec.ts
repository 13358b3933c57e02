/**
 * A job's ControlNet units as plain JSON (JobSpec.controlnets, so they travel through Redis), in
 * sd-webui-controlnet's terms, with its defaults.
 */

/** The preprocessors this server runs: none (the image is the control map) and canny. */
export const CONTROLNET_MODULES = ["none", "canny"] as const;
export type ControlNetModule = (typeof CONTROLNET_MODULES)[number];

/** sd-webui-controlnet's resize modes (external_code.ResizeMode), by their UI labels. */
export const RESIZE_MODES = ["Just Resize", "Crop and Resize", "Resize and Fill"] as const;
export type ResizeMode = (typeof RESIZE_MODES)[number];

/** sd-webui-controlnet's control modes (0 Balanced, 1 My prompt is more important, 2 ControlNet is more important). */
export const CONTROL_MODES = ["Balanced", "My prompt is more important", "ControlNet is more important"] as const;

/** Canny's defaults in sd-webui-controlnet (threshold_a / threshold_b = low / high; processor_res 512). */
export const CANNY_DEFAULTS = { low: 100, high: 200, processorRes: 512 } as const;

export interface ControlNetSpec {
  /** A net of --controlnet-dir (its folder or file name). */
  name: string;
  /** The control image (or, with module canny, the photo) as base64 PNG or JPEG. */
  image: string;
  module: ControlNetModule;
  /** Canny's low / high thresholds. */
  thresholdA: number;
  thresholdB: number;
  /** controlnet_conditioning_scale. */
  weight: number;
  guidanceStart: number;
  guidanceEnd: number;
  /** 0 Balanced or 2 ControlNet is more important (then the job's guessMode is set); 1 is refused at the request. */
  controlMode: 0 | 2;
  resizeMode: ResizeMode;
  /** The preprocessor resolution follows the output size (sd-webui-controlnet's pixel perfect). */
  pixelPerfect: boolean;
  /** The short side the image is resized to before canny; -1: the module's default (512). */
  processorRes: number;
}
