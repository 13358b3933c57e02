/**
 * ComfyUI's two-pass ("hires fix") graphs, read as the A1111 hires fix the server already runs
 * (recipes/hires-fix.ts): the first sampler is the first pass, the second sampler (denoise < 1) the
 * second pass (its steps counted as ComfyUI counts them, its own seed), and between them either
 *   KSampler -> LatentUpscaleBy | LatentUpscale -> KSampler: a latent upscaler of the same interpolation, or
 *   KSampler -> VAEDecode -> ImageUpscaleWithModel | ImageScaleBy | ImageScale ... -> VAEEncode -> KSampler:
 *     the image nodes (image-nodes.ts) as the pixel upscaler (on the first pass's 8-bit image, as A1111's).
 * Both samplers take one model and cfg; the second may have prompts of its own (CLIPTextEncode on the same CLIP).
 * The first sampler may start from a VAEEncode of an upload (img2img first: run-job's hires fix with firstPass).
 */
import { NodeError, nodeFields, nodeSide, type Graph, type GraphNode } from "./graph.js";
import { partialSchedule, readSampler, type SamplerSettings } from "./sampler-node.js";
import type { HiresSpec } from "../job.js";
import { DECODERS, imageChain, imageOps, imageSource, type GraphImageOp } from "./image-nodes.js";
import { hiresTargetSize } from "../../recipes/hires-size.js";
import type { Limits } from "../validation.js";
import { roundHalfEven } from "../../schedulers/common.js";
import { INPAINT_LATENTS } from "./inpaint.js";

const UPSCALES: Readonly<Record<string, number[]>> = { LatentUpscaleBy: [0], LatentUpscale: [0] };
const SAMPLED = { KSampler: [0], KSamplerAdvanced: [0] };
/** What a refiner graph's base may start from: noise, an image (img2img), an image and mask (inpainting). */
const REFINER_BASE_LATENTS = { EmptyLatentImage: 1, VAEEncode: 1, ...INPAINT_LATENTS };

/** ComfyUI's upscale_method as the A1111 latent mode of the same torch interpolation. */
const METHODS: Readonly<Record<string, string>> = { "nearest-exact": "Latent (nearest-exact)", bilinear: "Latent", bicubic: "Latent (bicubic)" };

export interface Passes {
  /** The sampler that starts from the empty latent or the image. */
  first: GraphNode;
  /** The second pass: its sampler, and the latent upscale or VAEEncode before it (with the VAEDecode and image nodes of a pixel upscale). */
  second?: { sampler: GraphNode; upscale: GraphNode; pixels?: { decode: GraphNode; nodes: GraphNode[] } };
  /** A base + refiner graph's refiner sampler (its latent is the first sampler's, unchanged). */
  refiner?: GraphNode;
}

const linkedClass = (graph: Graph, node: GraphNode, input: string) => {
  const link = node.inputs[input];
  return Array.isArray(link) ? graph.nodes.get(String(link[0]))?.classType : undefined;
};

/** The sampler the outputs show, and the one before it when its latent is an upscale of another's. */
export function findPasses(graph: Graph, last: GraphNode): Passes {
  const from = linkedClass(graph, last, "latent_image")!;
  if (from in SAMPLED) {
    const first = graph.follow(last, "latent_image", SAMPLED, "a LATENT");
    if (first === last) throw new NodeError(last, "the sampler's latent_image links to itself", "latent_image");
    if (!((linkedClass(graph, first, "latent_image") ?? "") in REFINER_BASE_LATENTS)) throw new NodeError(first, "the base sampler of a refiner graph must start from an EmptyLatentImage, a VAEEncode or an inpainting latent here", "latent_image");
    return { first, refiner: last };
  }
  if (from === "VAEEncode") {
    // a VAEEncode of another sampler's decoded (and upscaled) image is a pixel-space second pass
    const encode = graph.follow(last, "latent_image", { VAEEncode: [0] }, "a LATENT");
    if (!DECODERS.includes(imageSource(graph, encode, "pixels") ?? "")) return { first: last };
    const { decode, nodes } = imageChain(graph, encode, "pixels");
    const first = graph.follow(decode, "samples", SAMPLED, "a LATENT from a KSampler");
    if (first === last) throw new NodeError(encode, "the decode, upscale and sampler link in a loop", "pixels");
    if (!((linkedClass(graph, first, "latent_image") ?? "") in { EmptyLatentImage: 1, VAEEncode: 1 })) throw new NodeError(first, "this server runs at most two sampling passes, the first from an EmptyLatentImage or a VAEEncode", "latent_image");
    return { first, second: { sampler: last, upscale: encode, pixels: { decode, nodes } } };
  }
  if (!(from in UPSCALES)) return { first: last };
  const upscale = graph.follow(last, "latent_image", UPSCALES, "a LATENT");
  const first = graph.follow(upscale, "samples", SAMPLED, "a LATENT from a KSampler");
  if (first === last) throw new NodeError(upscale, "the upscale and the sampler link in a loop", "samples");
  if (linkedClass(graph, first, "latent_image")! in UPSCALES) throw new NodeError(first, "this server runs at most two sampling passes (one upscale between them)", "latent_image");
  return { first, second: { sampler: last, upscale } };
}

const sameLink = (a: GraphNode, b: GraphNode, input: string) => JSON.stringify(a.inputs[input]) === JSON.stringify(b.inputs[input]);

/**
 * The second pass as the job's hires settings. `first` holds the first sampler's settings, `size`
 * the first pass's; the prompts are the first pass's unless the second sampler has its own.
 */
export function hiresOf(graph: Graph, passes: Required<Passes>, first: SamplerSettings, size: { width: number; height: number }, limits: Limits): { hires: HiresSpec; pixelOps?: GraphImageOp[] } {
  const { sampler, upscale } = passes.second;
  const s = readSampler(sampler, limits);
  if (!sameLink(sampler, passes.first, "model")) throw new NodeError(sampler, "both samplers must take the same model here (the second pass runs on the first one's)", "model");
  if (s.cfg !== first.cfg) throw new NodeError(sampler, `the second sampler's cfg (${s.cfg}) must equal the first one's (${first.cfg}) here`, "cfg");
  const texts: Partial<Record<"positive" | "negative", string>> = {};
  for (const input of ["positive", "negative"] as const) {
    if (sameLink(sampler, passes.first, input)) continue;
    const own = graph.follow(sampler, input, { CLIPTextEncode: [0] }, "CONDITIONING from a CLIPTextEncode");
    const theirs = graph.follow(passes.first, input, { CLIPTextEncode: [0] }, "CONDITIONING from a CLIPTextEncode (a second pass with prompts of its own)");
    if (!sameLink(own, theirs, "clip")) throw new NodeError(own, "the second pass's prompt must be encoded with the first pass's CLIP (same LoRAs and layer)", "clip");
    texts[input] = nodeFields(own).string("text", limits.maxPromptChars);
    if (texts[input] === "" && nodeFields(theirs).string("text", limits.maxPromptChars) !== "") {
      throw new NodeError(own, `an empty ${input} prompt in the second pass only with an empty one in the first (the hires pass takes the first pass's when its own is empty)`, "text");
    }
  }
  let scheduler: string | undefined;
  if (s.scheduler.scheduler !== first.scheduler.scheduler || JSON.stringify(s.scheduler.overrides) !== JSON.stringify(first.scheduler.overrides)) {
    if (s.scheduler.overrides) throw new NodeError(sampler, "uni_pc in the second pass only when the first pass runs the same sampler and scheduler", "sampler_name");
    scheduler = s.scheduler.scheduler;
  }
  const { steps, strength } = partialSchedule(sampler, s, limits);
  if (strength === 1 && sampler.classType === "KSampler") throw new NodeError(sampler, "the second sampler must start from the upscaled image (denoise below 1)", "denoise");

  const common = { steps, strength, seed: s.seed, ...(scheduler ? { scheduler } : {}), ...(texts.positive !== undefined ? { prompt: texts.positive } : {}), ...(texts.negative ? { negativePrompt: texts.negative } : {}) };
  // the pixel upscale's size is known once its models are looked up (routes.ts sets width and height)
  if (passes.second.pixels) return { hires: { upscaler: COMFY_PIXEL_UPSCALER, ...common }, pixelOps: imageOps(graph, passes.second.pixels.nodes) };
  return { hires: latentHires(upscale, common, size, limits) };
}

/** What the job's hires upscaler is called when ComfyUI's image nodes make the second pass's image. */
export const COMFY_PIXEL_UPSCALER = "ComfyUI image nodes";

function latentHires(upscale: GraphNode, common: Omit<HiresSpec, "upscaler">, size: { width: number; height: number }, limits: Limits): HiresSpec {
  const f = nodeFields(upscale);
  const method = f.string("upscale_method", 30);
  const upscaler = METHODS[method];
  if (!upscaler) throw new NodeError(upscale, `upscale_method "${method}" is not run here; use ${Object.keys(METHODS).join(", ")}`, "upscale_method");
  const hires: HiresSpec = { upscaler, ...common };
  if (upscale.classType === "LatentUpscaleBy") {
    const scale = f.number("scale_by", 0.01, 8);
    // ComfyUI rounds the latent's sides (round(w / 8 * scale)); A1111 truncates the pixels' and rounds down to 8
    const comfy = { width: 8 * roundHalfEven((size.width / 8) * scale), height: 8 * roundHalfEven((size.height / 8) * scale) };
    const a1111 = hiresTargetSize(size.width, size.height, { scale });
    if (comfy.width !== a1111.width || comfy.height !== a1111.height) {
      throw new NodeError(upscale, `scale_by ${scale} makes ${comfy.width}x${comfy.height} in ComfyUI but ${a1111.width}x${a1111.height} in the hires fix run here; use LatentUpscale with that width and height, or a scale that gives whole latent sides`, "scale_by");
    }
    nodeSide(upscale, "width", comfy.width, limits, "the upscaled width");
    nodeSide(upscale, "height", comfy.height, limits, "the upscaled height");
    return { ...hires, scale };
  }
  const width = nodeSide(upscale, "width", f.int("width", 0, 1 << 16), limits, "the upscaled width");
  const height = nodeSide(upscale, "height", f.int("height", 0, 1 << 16), limits, "the upscaled height");
  const crop = f.string("crop", 20);
  // "center" covers the size then crops the middle, as A1111 does with both hr_resize sides; "disabled" stretches, the same only at the first pass's aspect ratio
  if (crop !== "center" && !(crop === "disabled" && width * size.height === height * size.width)) {
    throw new NodeError(upscale, `crop "${crop}" at ${width}x${height} from ${size.width}x${size.height} is not run here: use crop "center", or the first pass's aspect ratio`, "crop");
  }
  return { ...hires, width, height };
}
