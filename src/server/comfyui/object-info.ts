/**
 * GET /object_info: the node classes this server runs, in ComfyUI's shape. Clients read their
 * choice lists from it: SillyTavern takes KSampler's sampler_name and scheduler lists,
 * CheckpointLoaderSimple's ckpt_name, UNETLoader's unet_name and VAELoader's vae_name (it fails
 * when one is missing, so UNETLoader, which this server does not run, is listed with no choices).
 */
import { COMFY_SAMPLER_NAMES, COMFY_SCHEDULER_NAMES } from "./samplers.js";
import { NODE_CLASSES } from "./workflow.js";
import { MASK_CHANNELS } from "./masks.js";
import { COMFY_RESIZE_METHODS } from "./image-nodes.js";

export interface Choices {
  checkpoints: string[];
  loras: string[];
  controlnets: string[];
  vaes: string[];
  upscaleModels: string[];
  inputs: string[];
  maxSide: number;
  maxImages: number;
  maxSteps: number;
}

type Input = [unknown, Record<string, unknown>?];

interface NodeInfo {
  required: Record<string, Input>;
  optional?: Record<string, Input>;
  output: string[];
  outputName?: string[];
  category: string;
  outputNode?: boolean;
  displayName: string;
  description: string;
}

const SEED_MAX = Number.MAX_SAFE_INTEGER;
/** The torch interpolations the hires fix's latent upscalers run (ComfyUI's area and bislerp are not). */
const UPSCALE_METHODS = ["nearest-exact", "bilinear", "bicubic"];

/** ComfyUI's FreeU / FreeU_V2 inputs with their defaults. */
function freeuNode(name: string, defaults: Record<string, number>, description: string): NodeInfo {
  const scale = (v: number): Input => ["FLOAT", { default: v, min: 0, max: 10, step: 0.01 }];
  return {
    required: { model: ["MODEL"], ...Object.fromEntries(Object.entries(defaults).map(([k, v]) => [k, scale(v)])) },
    output: ["MODEL"], category: "model_patches/unet", displayName: name, description,
  };
}

function nodes(c: Choices): Record<string, NodeInfo> {
  const side = (def: number): Input => ["INT", { default: def, min: 16, max: c.maxSide, step: 8 }];
  const size = (def: number): Input => ["INT", { default: def, min: 0, max: 16384 }];
  return {
    CheckpointLoaderSimple: { required: { ckpt_name: [c.checkpoints] }, output: ["MODEL", "CLIP", "VAE"], category: "loaders", displayName: "Load Checkpoint", description: "One of the models this server serves." },
    VAELoader: { required: { vae_name: [c.vaes] }, output: ["VAE"], category: "loaders", displayName: "Load VAE", description: "A VAE file of --vae-dir; it must encode and decode the whole graph." },
    LoraLoader: {
      required: {
        model: ["MODEL"], clip: ["CLIP"], lora_name: [c.loras],
        strength_model: ["FLOAT", { default: 1, min: -10, max: 10, step: 0.01 }], strength_clip: ["FLOAT", { default: 1, min: -10, max: 10, step: 0.01 }],
      },
      output: ["MODEL", "CLIP"], category: "loaders", displayName: "Load LoRA", description: "A LoRA of --lora-dir: strength_model on the UNet, strength_clip on the text encoders.",
    },
    LoraLoaderModelOnly: {
      required: { model: ["MODEL"], lora_name: [c.loras], strength_model: ["FLOAT", { default: 1, min: -10, max: 10, step: 0.01 }] },
      output: ["MODEL"], category: "loaders", displayName: "LoraLoaderModelOnly", description: "A LoRA of --lora-dir on the UNet alone.",
    },
    FreeU: freeuNode("FreeU", { b1: 1.1, b2: 1.2, s1: 0.9, s2: 0.2 }, "FreeU on the UNet's up blocks: the backbone's first half of channels times b, the skip states' lowest frequencies times s."),
    FreeU_V2: freeuNode("FreeU_V2", { b1: 1.3, b2: 1.4, s1: 0.9, s2: 0.2 }, "FreeU with the backbone's b weighted by each pixel's normalized channel mean."),
    PerturbedAttentionGuidance: {
      required: { model: ["MODEL"], scale: ["FLOAT", { default: 3, min: 0, max: 100, step: 0.01, round: 0.01 }] },
      output: ["MODEL"], category: "model_patches/unet", displayName: "PerturbedAttentionGuidance",
      description: "Perturbed-attention guidance on the middle block's self-attention (diffusers' PAG, pag_scale = scale; none where the model has no mid-block attention, as SSD-1B).",
    },
    CLIPSetLastLayer: { required: { clip: ["CLIP"], stop_at_clip_layer: ["INT", { default: -1, min: -24, max: -1, step: 1 }] }, output: ["CLIP"], category: "conditioning", displayName: "CLIP Set Last Layer", description: "hidden_states[N] of both text encoders (SDXL's default: -2)." },
    CLIPTextEncode: { required: { text: ["STRING", { multiline: true, dynamicPrompts: true }], clip: ["CLIP"] }, output: ["CONDITIONING"], category: "conditioning", displayName: "CLIP Text Encode (Prompt)", description: "A prompt." },
    CLIPTextEncodeSDXL: {
      required: {
        clip: ["CLIP"], width: size(1024), height: size(1024), crop_w: size(0), crop_h: size(0), target_width: size(1024), target_height: size(1024),
        text_g: ["STRING", { multiline: true, dynamicPrompts: true }], text_l: ["STRING", { multiline: true, dynamicPrompts: true }],
      },
      output: ["CONDITIONING"], category: "advanced/conditioning", displayName: "CLIPTextEncodeSDXL", description: "text_l and text_g are diffusers' prompt and prompt_2; the sizes are SDXL's micro-conditioning.",
    },
    CLIPTextEncodeSDXLRefiner: {
      required: { ascore: ["FLOAT", { default: 6, min: 0, max: 1000, step: 0.01 }], width: size(1024), height: size(1024), text: ["STRING", { multiline: true, dynamicPrompts: true }], clip: ["CLIP"] },
      output: ["CONDITIONING"], category: "advanced/conditioning", displayName: "CLIPTextEncodeSDXLRefiner", description: "A refiner's prompt (the base's text) and aesthetic score; width and height are the image's.",
    },
    ConditioningCombine: {
      required: { conditioning_1: ["CONDITIONING"], conditioning_2: ["CONDITIONING"] }, output: ["CONDITIONING"], category: "conditioning", displayName: "Conditioning (Combine)",
      description: "Prompts on the positive input, their predictions averaged (A1111's AND with weights 1/n).",
    },
    ConditioningZeroOut: { required: { conditioning: ["CONDITIONING"] }, output: ["CONDITIONING"], category: "advanced/conditioning", displayName: "ConditioningZeroOut", description: "As the negative: the zero embedding (diffusers' for no negative prompt)." },
    EmptyLatentImage: { required: { width: side(1024), height: side(1024), batch_size: ["INT", { default: 1, min: 1, max: c.maxImages }] }, output: ["LATENT"], category: "latent", displayName: "Empty Latent Image", description: "The image size." },
    LoadImage: { required: { image: [c.inputs, { image_upload: true }] }, output: ["IMAGE", "MASK"], category: "image", displayName: "Load Image", description: "An image uploaded with POST /upload/image; its MASK is 1 - alpha." },
    LoadImageMask: {
      required: { image: [c.inputs, { image_upload: true }], channel: [MASK_CHANNELS] }, output: ["MASK"], category: "mask", displayName: "Load Image (as Mask)",
      description: "One channel of an upload as a mask (alpha inverted, as LoadImage's MASK).",
    },
    InvertMask: { required: { mask: ["MASK"] }, output: ["MASK"], category: "mask", displayName: "InvertMask", description: "1 - mask." },
    GrowMask: {
      required: { mask: ["MASK"], expand: ["INT", { default: 0, min: -16384, max: 16384, step: 1 }], tapered_corners: ["BOOLEAN", { default: true }] },
      output: ["MASK"], category: "mask", displayName: "GrowMask", description: "Dilation (erosion when negative) by expand pixels, as scipy's grey_dilation repeated.",
    },
    ThresholdMask: { required: { mask: ["MASK"], value: ["FLOAT", { default: 0.5, min: 0, max: 1, step: 0.01 }] }, output: ["MASK"], category: "mask", displayName: "ThresholdMask", description: "1 where mask > value, else 0." },
    ImageToMask: { required: { image: ["IMAGE"], channel: [["red", "green", "blue", "alpha"]] }, output: ["MASK"], category: "mask", displayName: "Convert Image to Mask", description: "A channel of LoadImage's IMAGE (red, green or blue)." },
    VAEEncode: { required: { pixels: ["IMAGE"], vae: ["VAE"] }, output: ["LATENT"], category: "latent", displayName: "VAE Encode", description: "img2img: the KSampler's denoise is the strength." },
    VAEEncodeForInpaint: {
      required: { pixels: ["IMAGE"], vae: ["VAE"], mask: ["MASK"], grow_mask_by: ["INT", { default: 6, min: 0, max: 64, step: 1 }] },
      output: ["LATENT"], category: "latent/inpaint", displayName: "VAE Encode (for Inpainting)",
      description: "Inpainting: the masked pixels grey before encoding, the mask grown by grow_mask_by is repainted (diffusers' inpaint, the mask binarized at 0.5).",
    },
    InpaintModelConditioning: {
      required: { positive: ["CONDITIONING"], negative: ["CONDITIONING"], vae: ["VAE"], pixels: ["IMAGE"], mask: ["MASK"], noise_mask: ["BOOLEAN", { default: true }] },
      output: ["CONDITIONING", "CONDITIONING", "LATENT"], outputName: ["positive", "negative", "latent"], category: "conditioning/inpaint", displayName: "InpaintModelConditioning",
      description: "Inpainting: the mask (binarized at 0.5) is repainted at the sampler's denoise; an inpainting UNet gets the image and mask; noise_mask false: the mask for an inpainting UNet only (a plain UNet runs img2img).",
    },
    SetLatentNoiseMask: {
      required: { samples: ["LATENT"], mask: ["MASK"] }, output: ["LATENT"], category: "latent/inpaint", displayName: "Set Latent Noise Mask",
      description: "Inpainting on a VAEEncode's latent: the mask (binarized at 0.5) is repainted, at the sampler's denoise.",
    },
    Canny: {
      required: { image: ["IMAGE"], low_threshold: ["FLOAT", { default: 0.4, min: 0.01, max: 0.99, step: 0.01 }], high_threshold: ["FLOAT", { default: 0.8, min: 0.01, max: 0.99, step: 0.01 }] },
      output: ["IMAGE"], category: "image/preprocessors", displayName: "Canny", description: "ComfyUI's (kornia's) Canny edges of a LoadImage, as a ControlNet's image.",
    },
    ControlNetLoader: { required: { control_net_name: [c.controlnets] }, output: ["CONTROL_NET"], category: "loaders", displayName: "Load ControlNet Model", description: "A net of --controlnet-dir." },
    ControlNetApplyAdvanced: {
      required: {
        positive: ["CONDITIONING"], negative: ["CONDITIONING"], control_net: ["CONTROL_NET"], image: ["IMAGE"],
        strength: ["FLOAT", { default: 1, min: 0, max: 10, step: 0.01 }], start_percent: ["FLOAT", { default: 0, min: 0, max: 1, step: 0.001 }], end_percent: ["FLOAT", { default: 1, min: 0, max: 1, step: 0.001 }],
      },
      output: ["CONDITIONING", "CONDITIONING"], outputName: ["positive", "negative"], category: "conditioning/controlnet", displayName: "Apply ControlNet",
      description: "Both branches (diffusers' ControlNet); the image (from LoadImage) is the control map as it is.",
    },
    KSampler: {
      required: {
        model: ["MODEL"], seed: ["INT", { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }],
        steps: ["INT", { default: 20, min: 1, max: c.maxSteps }], cfg: ["FLOAT", { default: 8, min: 0, max: 100, step: 0.1, round: 0.01 }],
        sampler_name: [COMFY_SAMPLER_NAMES], scheduler: [COMFY_SCHEDULER_NAMES],
        positive: ["CONDITIONING"], negative: ["CONDITIONING"], latent_image: ["LATENT"],
        denoise: ["FLOAT", { default: 1, min: 0, max: 1, step: 0.01 }],
      },
      output: ["LATENT"], category: "sampling", displayName: "KSampler", description: "The diffusers scheduler of the same algorithm; a second one after a latent upscale is the hires fix.",
    },
    KSamplerAdvanced: {
      required: {
        model: ["MODEL"], add_noise: [["enable", "disable"]], noise_seed: ["INT", { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }],
        steps: ["INT", { default: 20, min: 1, max: c.maxSteps }], cfg: ["FLOAT", { default: 8, min: 0, max: 100, step: 0.1, round: 0.01 }],
        sampler_name: [COMFY_SAMPLER_NAMES], scheduler: [COMFY_SCHEDULER_NAMES],
        positive: ["CONDITIONING"], negative: ["CONDITIONING"], latent_image: ["LATENT"],
        start_at_step: ["INT", { default: 0, min: 0, max: 10000 }], end_at_step: ["INT", { default: 10000, min: 0, max: 10000 }],
        return_with_leftover_noise: [["disable", "enable"]],
      },
      output: ["LATENT"], category: "sampling", displayName: "KSampler (Advanced)", description: "From start_at_step (img2img: strength (steps - start) / steps) to the end; or a base stopping at end_at_step (leftover noise; from noise, an image or an inpainting latent) and a refiner's sampler (add_noise disable) continuing from there.",
    },
    SamplerCustomAdvanced: {
      required: { noise: ["NOISE"], guider: ["GUIDER"], sampler: ["SAMPLER"], sigmas: ["SIGMAS"], latent_image: ["LATENT"] },
      output: ["LATENT", "LATENT"], outputName: ["output", "denoised_output"], category: "sampling/custom_sampling", displayName: "SamplerCustomAdvanced",
      description: "Read as the KSampler it amounts to (RandomNoise or DisableNoise, CFGGuider or BasicGuider, KSamplerSelect, BasicScheduler or a scheduler node at its defaults, SplitSigmas).",
    },
    SamplerCustom: {
      required: {
        model: ["MODEL"], add_noise: ["BOOLEAN", { default: true }], noise_seed: ["INT", { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }],
        cfg: ["FLOAT", { default: 8, min: 0, max: 100, step: 0.1, round: 0.01 }], positive: ["CONDITIONING"], negative: ["CONDITIONING"], sampler: ["SAMPLER"], sigmas: ["SIGMAS"], latent_image: ["LATENT"],
      },
      output: ["LATENT", "LATENT"], outputName: ["output", "denoised_output"], category: "sampling/custom_sampling", displayName: "SamplerCustom", description: "Read as the KSampler it amounts to.",
    },
    RandomNoise: { required: { noise_seed: ["INT", { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }] }, output: ["NOISE"], category: "sampling/custom_sampling/noise", displayName: "RandomNoise", description: "The sampler's seed." },
    CFGGuider: { required: { model: ["MODEL"], positive: ["CONDITIONING"], negative: ["CONDITIONING"], cfg: ["FLOAT", { default: 8, min: 0, max: 100, step: 0.1, round: 0.01 }] }, output: ["GUIDER"], category: "sampling/custom_sampling/guiders", displayName: "CFGGuider", description: "The prompts and guidance scale." },
    BasicGuider: { required: { model: ["MODEL"], conditioning: ["CONDITIONING"] }, output: ["GUIDER"], category: "sampling/custom_sampling/guiders", displayName: "BasicGuider", description: "One prompt, guidance scale 1." },
    KSamplerSelect: { required: { sampler_name: [COMFY_SAMPLER_NAMES] }, output: ["SAMPLER"], category: "sampling/custom_sampling/samplers", displayName: "KSamplerSelect", description: "KSampler's sampler_name." },
    BasicScheduler: {
      required: { model: ["MODEL"], scheduler: [COMFY_SCHEDULER_NAMES], steps: ["INT", { default: 20, min: 1, max: c.maxSteps }], denoise: ["FLOAT", { default: 1, min: 0, max: 1, step: 0.01 }] },
      output: ["SIGMAS"], category: "sampling/custom_sampling/schedulers", displayName: "BasicScheduler", description: "KSampler's scheduler, steps and denoise.",
    },
    DisableNoise: { required: {}, output: ["NOISE"], category: "sampling/custom_sampling/noise", displayName: "DisableNoise", description: "No noise added: a sampler on SplitSigmas' low_sigmas continuing another's latents (a refiner)." },
    KarrasScheduler: {
      required: { steps: ["INT", { default: 20, min: 1, max: c.maxSteps }], sigma_max: ["FLOAT", { default: 14.614642, min: 0, max: 5000, step: 0.01, round: false }], sigma_min: ["FLOAT", { default: 0.0291675, min: 0, max: 5000, step: 0.01, round: false }], rho: ["FLOAT", { default: 7, min: 0, max: 100, step: 0.01, round: false }] },
      output: ["SIGMAS"], category: "sampling/custom_sampling/schedulers", displayName: "KarrasScheduler", description: "BasicScheduler's karras: at the default sigma_max, sigma_min and rho only.",
    },
    ExponentialScheduler: {
      required: { steps: ["INT", { default: 20, min: 1, max: c.maxSteps }], sigma_max: ["FLOAT", { default: 14.614642, min: 0, max: 5000, step: 0.01, round: false }], sigma_min: ["FLOAT", { default: 0.0291675, min: 0, max: 5000, step: 0.01, round: false }] },
      output: ["SIGMAS"], category: "sampling/custom_sampling/schedulers", displayName: "ExponentialScheduler", description: "BasicScheduler's exponential: at the default sigma_max and sigma_min only.",
    },
    BetaSamplingScheduler: {
      required: { model: ["MODEL"], steps: ["INT", { default: 20, min: 1, max: c.maxSteps }], alpha: ["FLOAT", { default: 0.6, min: 0, max: 50, step: 0.01, round: false }], beta: ["FLOAT", { default: 0.6, min: 0, max: 50, step: 0.01, round: false }] },
      output: ["SIGMAS"], category: "sampling/custom_sampling/schedulers", displayName: "BetaSamplingScheduler", description: "BasicScheduler's beta: at the default alpha and beta only.",
    },
    SDTurboScheduler: {
      required: { model: ["MODEL"], steps: ["INT", { default: 1, min: 1, max: 10 }], denoise: ["FLOAT", { default: 1, min: 0, max: 1, step: 0.01 }] },
      output: ["SIGMAS"], category: "sampling/custom_sampling/schedulers", displayName: "SDTurboScheduler", description: "SDXL Turbo's one step from timestep 999 (steps 1, denoise 1 only).",
    },
    SplitSigmas: {
      required: { sigmas: ["SIGMAS"], step: ["INT", { default: 0, min: 0, max: 10000 }] },
      output: ["SIGMAS", "SIGMAS"], outputName: ["high_sigmas", "low_sigmas"], category: "sampling/custom_sampling/sigmas", displayName: "SplitSigmas",
      description: "high_sigmas: the steps before `step` (a base handing over to a refiner); low_sigmas: the steps from `step` (img2img, or the refiner with DisableNoise).",
    },
    LatentUpscaleBy: { required: { samples: ["LATENT"], upscale_method: [UPSCALE_METHODS], scale_by: ["FLOAT", { default: 1.5, min: 0.01, max: 8, step: 0.01 }] }, output: ["LATENT"], category: "latent", displayName: "Upscale Latent By", description: "Between two samplers: the hires fix (a latent upscale, then the second sampler's img2img)." },
    LatentUpscale: { required: { samples: ["LATENT"], upscale_method: [UPSCALE_METHODS], width: side(1024), height: side(1024), crop: [["disabled", "center"]] }, output: ["LATENT"], category: "latent", displayName: "Upscale Latent", description: "Between two samplers: the hires fix to this size." },
    VAEDecode: { required: { samples: ["LATENT"], vae: ["VAE"] }, output: ["IMAGE"], category: "latent", displayName: "VAE Decode", description: "The images." },
    VAEDecodeTiled: {
      required: { samples: ["LATENT"], vae: ["VAE"], tile_size: ["INT", { default: 512, min: 64, max: 4096, step: 32 }], overlap: ["INT", { default: 64, min: 0, max: 4096, step: 32 }] },
      output: ["IMAGE"], category: "_for_testing", displayName: "VAE Decode (Tiled)", description: "The images, decoded whole here (serve --vae-tiling tiles every decode).",
    },
    UpscaleModelLoader: { required: { model_name: [c.upscaleModels] }, output: ["UPSCALE_MODEL"], category: "loaders", displayName: "Load Upscale Model", description: "An ESRGAN-family model of --upscaler-dir." },
    ImageUpscaleWithModel: {
      required: { upscale_model: ["UPSCALE_MODEL"], image: ["IMAGE"] }, output: ["IMAGE"], category: "image/upscaling", displayName: "Upscale Image (using Model)",
      description: "After the VAEDecode: the model at its own scale, in 512-pixel tiles.",
    },
    ImageScaleBy: {
      required: { image: ["IMAGE"], upscale_method: [COMFY_RESIZE_METHODS], scale_by: ["FLOAT", { default: 1, min: 0.01, max: 8, step: 0.01 }] },
      output: ["IMAGE"], category: "image/upscaling", displayName: "Upscale Image By", description: "After the VAEDecode: a resize by scale_by (area is not run).",
    },
    ImageScale: {
      required: { image: ["IMAGE"], upscale_method: [COMFY_RESIZE_METHODS], width: ["INT", { default: 512, min: 0, max: 16384, step: 1 }], height: ["INT", { default: 512, min: 0, max: 16384, step: 1 }], crop: [["disabled", "center"]] },
      output: ["IMAGE"], category: "image/upscaling", displayName: "Upscale Image", description: "After the VAEDecode: a resize to width x height (0 keeps the aspect ratio; area is not run).",
    },
    PrimitiveString: { required: { value: ["STRING", {}] }, output: ["STRING"], category: "utils/primitive", displayName: "String", description: "A value for another node's input." },
    PrimitiveStringMultiline: { required: { value: ["STRING", { multiline: true }] }, output: ["STRING"], category: "utils/primitive", displayName: "String (Multiline)", description: "A value for another node's input." },
    PrimitiveInt: { required: { value: ["INT", { min: -SEED_MAX, max: SEED_MAX }] }, output: ["INT"], category: "utils/primitive", displayName: "Int", description: "A value for another node's input." },
    PrimitiveFloat: { required: { value: ["FLOAT", { min: -SEED_MAX, max: SEED_MAX }] }, output: ["FLOAT"], category: "utils/primitive", displayName: "Float", description: "A value for another node's input." },
    PrimitiveBoolean: { required: { value: ["BOOLEAN", {}] }, output: ["BOOLEAN"], category: "utils/primitive", displayName: "Boolean", description: "A value for another node's input." },
    ImageCompositeMasked: {
      required: { destination: ["IMAGE"], source: ["IMAGE"], x: ["INT", { default: 0, min: 0, max: 16384, step: 1 }], y: ["INT", { default: 0, min: 0, max: 16384, step: 1 }], resize_source: ["BOOLEAN", { default: false }] },
      optional: { mask: ["MASK"] },
      output: ["IMAGE"], category: "image", displayName: "ImageCompositeMasked", description: "After the VAEDecode: the image laid onto a LoadImage where the mask (scaled to it) is set; resize_source false.",
    },
    SaveImage: { required: { images: ["IMAGE"], filename_prefix: ["STRING", { default: "ComfyUI" }] }, output: [], category: "image", outputNode: true, displayName: "Save Image", description: "Images served by /view (type output)." },
    PreviewImage: { required: { images: ["IMAGE"] }, output: [], category: "image", outputNode: true, displayName: "Preview Image", description: "Images served by /view (type temp)." },
  };
}

/** Loaders clients expect to find, with nothing to choose (this server runs whole checkpoints). */
const LISTED_ONLY: Record<string, NodeInfo> = {
  UNETLoader: { required: { unet_name: [[]], weight_dtype: [["default"]] }, output: ["MODEL"], category: "advanced/loaders", displayName: "Load Diffusion Model", description: "Not run here: no separate UNet files." },
};

function info(name: string, n: NodeInfo): Record<string, unknown> {
  return {
    input: { required: n.required, optional: n.optional ?? {} }, input_order: { required: Object.keys(n.required), ...(n.optional ? { optional: Object.keys(n.optional) } : {}) },
    output: n.output, output_is_list: n.output.map(() => false), output_name: n.outputName ?? n.output,
    name, display_name: n.displayName, description: n.description, python_module: "nodes", category: n.category, output_node: n.outputNode ?? false,
  };
}

export function objectInfo(c: Choices): Record<string, unknown> {
  const all = { ...nodes(c), ...LISTED_ONLY };
  const order = [...NODE_CLASSES, ...Object.keys(LISTED_ONLY)];
  return Object.fromEntries(order.map((name) => [name, info(name, all[name])]));
}
