/**
 * What a ComfyUI prompt asks this server to make: its sampling chain read into a JobSpec, the same
 * job the other APIs queue. The nodes understood are those of ComfyUI's default SDXL graphs (the
 * default workflow, SillyTavern's and Open WebUI's, the two-pass "hires fix" graph):
 *
 *   CheckpointLoaderSimple -> [LoraLoader ...] -> KSampler <- CLIPTextEncode[SDXL] (positive, negative)
 *                          -> [CLIPSetLastLayer]      ^- EmptyLatentImage | LoadImage -> VAEEncode
 *                                                     ^- LoadImage (IMAGE, MASK) -> VAEEncodeForInpaint | VAEEncode -> SetLatentNoiseMask
 *   KSampler [-> LatentUpscale(By) -> KSampler] -> VAEDecode [-> image nodes] -> SaveImage | PreviewImage
 *   (CLIPTextEncode -> [ControlNetApplyAdvanced <- ControlNetLoader, LoadImage] -> KSampler)
 *   (VAELoader in place of the checkpoint's VAE everywhere; image nodes: image-nodes.ts)
 *
 * Mapping to diffusers: KSampler's seed draws the batch's noise from one generator (ComfyUI's
 * prepare_noise, diffusers' batch draw); sampler_name / scheduler become the diffusers scheduler of
 * the same algorithm (samplers.ts); cfg is guidance_scale; CLIPTextEncodeSDXL's text_l and text_g are
 * diffusers' prompt and prompt_2, its sizes the micro-conditioning. With a VAEEncode latent, denoise d
 * and steps s run as ComfyUI does: the last s steps of a schedule of s / d steps (diffusers' img2img
 * with strength d and num_inference_steps floor(s / d)); KSamplerAdvanced from start_at_step k of s
 * steps is strength (s - k) / s with s steps (sampler-node.ts). A VAEEncodeForInpaint or
 * SetLatentNoiseMask latent makes it the pipeline's inpaint with that mask (inpaint.ts). A KSamplerAdvanced whose latent is
 * another's leftover noise is a base + refiner graph's refiner (refiner.ts; the base from noise, an image or an inpainting latent). A sampler whose latent is a
 * LatentUpscale(By) of another's is the hires fix's second pass (hires.ts). ControlNetApplyAdvanced nodes on both prompts are ControlNet
 * units (controlnet.ts). A ConditioningCombine of prompts on the positive input averages their predictions
 * (combined.ts). FreeU and FreeU_V2 on the model are the job's FreeU in ComfyUI's placement, PerturbedAttentionGuidance its PAG. LoraLoader's strength_model and strength_clip are the LoRA's UNet and text-encoder
 * weights (its MODEL and CLIP outputs must both be used); LoraLoaderModelOnly applies the UNet's part alone. ComfyUI reads only the nodes an output needs; so
 * does this, but every node must be of a known class (ComfyUI refuses unknown ones too).
 */
import { Graph, NodeError, PromptError, forInput, nodeFields, nodeSide, type GraphNode } from "./graph.js";
import { checkFullSchedule, partialSchedule, readSampler } from "./sampler-node.js";
import { findPasses, hiresOf, type Passes } from "./hires.js";
import { refinerOf } from "./refiner.js";
import { CUSTOM_SAMPLING_CLASSES, rewriteCustomSamplers } from "./custom-sampling.js";
import { INPAINT_LATENTS, inpaintEncoder, inpaintNoiseMask } from "./inpaint.js";
import { uploadName, type UploadReader } from "./masks.js";
import { imageChain, imageOps, type GraphImageOp } from "./image-nodes.js";
import { resizedSize } from "../image-ops.js";
import { checkImageSize } from "../../image/limits.js";
import { hiresTargetSize } from "../../recipes/hires-size.js";
import { conditioningChain, controlNetUnits } from "./controlnet.js";
import { checkCombinedTexts, combinedPositive } from "./combined.js";
import type { ControlNetSpec } from "../controlnet-spec.js";
import type { JobSpec } from "../job.js";
import type { ModelInfo } from "../queue.js";
import { servedModels } from "../queue.js";
import { findServedModel } from "../model-catalog.js";
import type { Limits } from "../validation.js";
import type { MicroConditioning } from "../../pipelines/micro-conditioning.js";
import { FREEU_MAX, type FreeUOptions } from "../../pipelines/freeu.js";
import { PAG_SCALE_MAX, type PagSpec } from "../pag-request.js";

/** The node classes understood (the /object_info list). */
export const NODE_CLASSES = [
  "CheckpointLoaderSimple", "VAELoader", "LoraLoader", "LoraLoaderModelOnly", "FreeU", "FreeU_V2", "PerturbedAttentionGuidance", "CLIPSetLastLayer", "CLIPTextEncode", "CLIPTextEncodeSDXL", "EmptyLatentImage",
  "CLIPTextEncodeSDXLRefiner", "ConditioningZeroOut", "ConditioningCombine", "LoadImage", "LoadImageMask", "InvertMask", "GrowMask", "ThresholdMask", "ImageToMask", "VAEEncode", "VAEEncodeForInpaint", "SetLatentNoiseMask", "InpaintModelConditioning", "ControlNetLoader", "ControlNetApplyAdvanced", "Canny", "KSampler", "KSamplerAdvanced", "LatentUpscaleBy", "LatentUpscale", "VAEDecode", "VAEDecodeTiled",
  "UpscaleModelLoader", "ImageUpscaleWithModel", "ImageScaleBy", "ImageScale", "ImageCompositeMasked", "SaveImage", "PreviewImage",
  "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveInt", "PrimitiveFloat", "PrimitiveBoolean",
  ...CUSTOM_SAMPLING_CLASSES,
] as const;

const OUTPUT_CLASSES: readonly string[] = ["SaveImage", "PreviewImage"];

/** Classes /object_info lists (clients look for them) that no prompt may use here, and why. */
const NOT_RUN: Readonly<Record<string, string>> = {
  UNETLoader: "this server runs whole checkpoints (CheckpointLoaderSimple), not separate UNet files",
  CheckpointLoader: "load the checkpoint with CheckpointLoaderSimple (the configs are built in or come with the model)",
  CLIPLoader: "the text encoders come with the checkpoint here (CheckpointLoaderSimple's CLIP)",
  DualCLIPLoader: "the text encoders come with the checkpoint here (CheckpointLoaderSimple's CLIP)",
  ControlNetApply: "it conditions the positive prompt only; use ControlNetApplyAdvanced (both prompts, as diffusers' ControlNet)",
};

// what may feed each kind of input: class -> output indices
const MODEL = { CheckpointLoaderSimple: [0], LoraLoader: [0], LoraLoaderModelOnly: [0], FreeU: [0], FreeU_V2: [0], PerturbedAttentionGuidance: [0] };
const CLIP = { CheckpointLoaderSimple: [1], LoraLoader: [1], CLIPSetLastLayer: [0] };
const VAE = { CheckpointLoaderSimple: [2], VAELoader: [0] };
const LATENT = { EmptyLatentImage: [0], VAEEncode: [0], ...INPAINT_LATENTS };
const SAMPLED = { KSampler: [0], KSamplerAdvanced: [0] };

/** ComfyUI's MAX_RESOLUTION, the bound of CLIPTextEncodeSDXL's size inputs. */
const MAX_CONDITIONING_SIZE = 16384;

export interface WorkflowContext {
  limits: Limits;
  model: ModelInfo;
  /** An uploaded input image (LoadImage's `image`) as VAEEncode takes it (base64 PNG) and its size, or undefined when there is none by that name. */
  inputImage: (name: string) => { png: string; width: number; height: number } | undefined;
  /** An upload as LoadImage reads it for its MASK (alpha kept, not cropped), or undefined. */
  upload: UploadReader;
  /** An upload's bytes (base64) as they came: a control image, or an image the job resizes first; undefined when there is none. */
  uploadBytes: (name: string) => string | undefined;
  /** An --upscaler-dir model's scale by name (UpscaleModelLoader's file without extension), or undefined when there is none. */
  upscaleScale?: (name: string) => number | undefined;
}

/** One output node and the type of the files it makes ("output" for SaveImage, "temp" for PreviewImage). */
export interface OutputNode {
  id: string;
  classType: string;
  type: "output" | "temp";
}

export interface CompiledPrompt {
  spec: JobSpec;
  /** The LoRA files asked for (LoraLoader's lora_name) with their weights; names as --lora-dir lists them. */
  loras: ComfyLora[];
  /** The ControlNetApplyAdvanced units (names not yet looked up in --controlnet-dir). */
  controlnets: ControlNetSpec[];
  /** The image nodes after the VAEDecode (model names not yet looked up in --upscaler-dir), and the decoded size they start from. */
  imageOps: GraphImageOp[];
  decodedSize: { width: number; height: number };
  /** A pixel-space hires pass's image nodes (looked up with imageOps); their output size is the second pass's, and the decoded size. */
  hiresPixelOps?: GraphImageOp[];
  /** The image nodes between LoadImage and the first VAEEncode (model names not yet looked up in --upscaler-dir). */
  initImageOps?: GraphImageOp[];
  /** A VAELoader's file (not yet looked up in --vae-dir), when the graph encodes and decodes with one. */
  vae?: { name: string; node: GraphNode };
  /** The node ids the socket messages name: the sampler the outputs show, the VAEDecode before them. */
  sampler: string;
  decoder: string;
  outputs: OutputNode[];
}

/** A LoRA of the graph: strength_model, and strength_clip where it differs (0 for LoraLoaderModelOnly). */
export interface ComfyLora { name: string; weight: number; textEncoderWeight?: number }

interface ClipChain { checkpoint: GraphNode; loras: GraphNode[]; clipSkip?: number }

export function compileWorkflow(prompt: unknown, ctx: WorkflowContext): CompiledPrompt {
  const graph = new Graph(prompt);
  for (const node of graph.nodes.values()) {
    if (NOT_RUN[node.classType]) throw new NodeError(node, `${node.classType} is not run here: ${NOT_RUN[node.classType]}`, undefined, "exception_during_validation");
    if (!(NODE_CLASSES as readonly string[]).includes(node.classType)) {
      throw new PromptError("invalid_prompt", `Cannot execute because node ${node.classType} does not exist (node ${node.id}); this server runs ${NODE_CLASSES.join(", ")}`);
    }
  }
  rewriteCustomSamplers(graph);
  const outputs = [...graph.nodes.values()].filter((n) => OUTPUT_CLASSES.includes(n.classType));
  if (outputs.length === 0) throw new PromptError("prompt_no_outputs", "Prompt has no outputs (add a SaveImage or PreviewImage node)");

  // every output must show the images of one sampler (one job)
  let sampler: GraphNode | undefined, shown: GraphNode[] | undefined;
  const decoders = new Set<GraphNode>(), decoderVaes = new Set<GraphNode>();
  for (const out of outputs) {
    const { decode, nodes } = imageChain(graph, out);
    if (shown && (nodes.length !== shown.length || nodes.some((n, i) => n !== shown![i]))) {
      throw new NodeError(out, "the outputs here must all show the same images (the same image nodes after the VAEDecode); queue the others as another prompt", "images");
    }
    shown = nodes;
    const s = graph.follow(decode, "samples", SAMPLED, "a LATENT from a KSampler");
    decoderVaes.add(graph.follow(decode, "vae", VAE, "a VAE"));
    if (sampler && s !== sampler) throw new NodeError(out, `the outputs here must all show one sampler's images, and they show two (nodes ${sampler.id} and ${s.id}); queue them as two prompts`, "images");
    sampler = s;
    decoders.add(decode);
  }
  const last = sampler!;
  // the first sampler (the only one, or the first pass of an upscale-and-resample graph)
  const passes = findPasses(graph, last);
  const ks = passes.first;
  const refinerSampler = passes.refiner;

  // model, text and latent chains
  const model = modelChain(graph, graph.follow(ks, "model", MODEL, "a MODEL"));
  // ConditioningCombine on the positive input: its prompts as sub-prompts averaged (combined.ts)
  const combined = combinedPositive(graph, ks);
  const posChain = combined ? { text: combined[0], applies: [], inpaint: [], zeroed: false } : conditioningChain(graph, ks, "positive");
  const negChain = conditioningChain(graph, ks, "negative");
  const positive = posChain.text, negative = negChain.text;
  const controlnets = controlNetUnits(graph, posChain.applies, negChain.applies, ctx.uploadBytes, ctx.upload);
  const clips = [positive, negative].map((n) => clipChain(graph, graph.follow(n, "clip", CLIP, "a CLIP")));
  const latent = graph.follow(ks, "latent_image", LATENT, "a LATENT");
  const inpainting = latent.classType in INPAINT_LATENTS;
  for (const node of [...posChain.inpaint, ...negChain.inpaint]) {
    if (node !== latent) throw new NodeError(node, "the sampler's prompts pass this InpaintModelConditioning, so its latent_image must be that node's latent (output 2)", "positive");
  }
  // the VAEEncode (ForInpaint) whose pixels are the image, or the EmptyLatentImage
  const encoder = inpainting ? inpaintEncoder(graph, latent) : latent;
  const pixelPass = passes.second?.pixels ? [passes.second.pixels.decode, passes.second.upscale] : [];
  // the first sampler's image encoder, and a pixel-space hires pass's decoder and encoder
  const encoderVae = [...(encoder.classType === "EmptyLatentImage" ? [] : [encoder]), ...pixelPass].map((n) => graph.follow(n, "vae", VAE, "a VAE"));
  // one VAE encodes and decodes: a VAELoader's, or a checkpoint's (with a refiner the decoder may take either checkpoint's, checked below)
  const vaeLoader = readVaeLoader([...decoderVaes, ...encoderVae]);
  const checkpoints = new Set([model.checkpoint, ...clips.map((c) => c.checkpoint), ...(refinerSampler || vaeLoader ? [] : decoderVaes), ...(vaeLoader ? [] : encoderVae)]);
  const ckptNames = new Set([...checkpoints].map((c) => nodeFields(c).string("ckpt_name", 1000)));
  if (ckptNames.size > 1) throw new NodeError(ks, `the model, text encoders and VAE must come from one checkpoint here, but the prompt loads ${[...ckptNames].map((n) => JSON.stringify(n)).join(" and ")}`, "model");
  const ckpt = [...checkpoints][0];
  const ckptName = [...ckptNames][0];
  const served = findServedModel(ckptName, servedModels(ctx.model)) ?? findServedModel(ckptName.replace(/\.safetensors$/i, ""), servedModels(ctx.model));
  if (!served) throw new NodeError(ckpt, `Value not in list: ckpt_name: ${JSON.stringify(ckptName)} not in ${JSON.stringify(checkpointNames(ctx.model))}`, "ckpt_name");

  // LoRAs: one set for the UNet and both prompts' text encoders
  const loras = loraSet(model.loras, clips);
  const clipSkip = clips[0].clipSkip;
  if (clips[1].clipSkip !== clipSkip) throw new NodeError(negative, `the positive and negative prompts must stop at the same CLIP layer (CLIPSetLastLayer ${clipSkip ?? -2} and ${clips[1].clipSkip ?? -2})`, "clip");

  const pos = readText(positive, ctx.limits), neg = readText(negative, ctx.limits);
  if (!negChain.zeroed && neg.l === "" && neg.g) throw new NodeError(negative, "text_l is empty but text_g is not: an empty negative prompt is SDXL's zero embedding here; give text_l too", "text_l");
  const settings = readSampler(ks, ctx.limits, refinerSampler ? "base" : "whole");
  const { seed, steps, cfg, scheduler } = settings;
  const spec: JobSpec = {
    prompt: pos.l, negativePrompt: neg.l || undefined, steps, guidanceScale: cfg, seed,
    ...(pos.g !== undefined ? { prompt2: pos.g } : {}), ...(neg.g ? { negativePrompt2: neg.g } : {}),
    scheduler: scheduler.scheduler, ...(scheduler.overrides ? { schedulerOverrides: scheduler.overrides } : {}),
    batchSize: 1, iterations: 1, model: served.name, promptSyntax: "comfyui",
  };
  if (combined) {
    if (passes.second || refinerSampler) throw new NodeError(ks, "a ConditioningCombine positive prompt is not combined with a second sampler here", "positive");
    const texts = combined.map((n) => readText(n, ctx.limits));
    checkCombinedTexts(combined, texts);
    spec.subPrompts = texts.map((t) => ({ prompt: t.l, ...(t.g !== undefined ? { prompt2: t.g } : {}), weight: 1 / texts.length }));
    // the infotext names them as A1111's AND would
    spec.prompt = texts.map((t) => t.l).join(" AND ");
    delete spec.prompt2;
  }
  if (model.freeu) spec.freeu = model.freeu;
  if (model.pag) spec.pag = model.pag;
  if (posChain.zeroed) throw new NodeError(ks, "a ConditioningZeroOut positive prompt is not run here (it is the zero embedding a missing negative prompt has)", "positive");
  // ConditioningZeroOut: the zero embedding, what diffusers gives for no negative prompt
  if (negChain.zeroed) { delete spec.negativePrompt2; spec.negativePrompt = ""; }
  if (!spec.negativePrompt) delete spec.negativePrompt;
  if (clipSkip !== undefined) {
    const layers = ctx.model.textEncoderLayers;
    if (layers && clipSkip > Math.min(...layers) - 1) {
      throw new NodeError(positive, `CLIPSetLastLayer ${-clipSkip - 2} goes below the first layer: the text encoders have ${layers.join(" and ")} layers (at most ${Math.min(...layers) + 1} from the end)`, "clip");
    }
    spec.clipSkip = { textEncoder: clipSkip, textEncoder2: clipSkip };
  }

  let initImageOps: GraphImageOp[] | undefined;
  if (latent.classType === "EmptyLatentImage") {
    const l = nodeFields(latent);
    spec.width = nodeSide(latent, "width", l.int("width", -(2 ** 31), 2 ** 31), ctx.limits);
    spec.height = nodeSide(latent, "height", l.int("height", -(2 ** 31), 2 ** 31), ctx.limits);
    spec.batchSize = l.optionalInt("batch_size", 1, ctx.limits.maxImages) ?? 1;
    checkFullSchedule(ks, settings, "an image to start from (LoadImage -> VAEEncode -> latent_image)");
  } else {
    const { load, nodes } = imageChain(graph, encoder, "pixels", "LoadImage");
    const name = uploadName(nodeFields(load).string("image", 300));
    const resized = nodes.length ? resizedUpload(load, name, imageOps(graph, nodes), ctx) : undefined;
    const image = nodes.length ? resized : ctx.inputImage(name);
    if (image === undefined) throw new NodeError(load, `Invalid image file: ${JSON.stringify(name)} was not uploaded here (POST /upload/image first)`, "image", "custom_validation_failed");
    nodeSide(load, "image", image.width, ctx.limits, "the image width");
    nodeSide(load, "image", image.height, ctx.limits, "the image height");
    spec.initImage = image.png;
    if (resized) initImageOps = resized.ops;
    if (inpainting) spec.noiseMask = inpaintNoiseMask(graph, latent, ctx.upload, resized?.uncropped ?? ctx.upload(name) ?? image);
    Object.assign(spec, { width: image.width, height: image.height });
    Object.assign(spec, partialSchedule(ks, settings, ctx.limits));
  }
  if (refinerSampler) {
    const r = refinerOf(graph, refinerSampler, settings, { prompt: spec.prompt, negative: spec.negativePrompt ?? "" }, { width: spec.width!, height: spec.height! }, ctx.limits);
    for (const vae of vaeLoader ? [] : decoderVaes) {
      if (vae !== ckpt && vae !== r.checkpoint) throw new NodeError([...decoders][0], "the VAE must be the base's or the refiner's checkpoint's", "vae");
    }
    const name = r.refiner.model;
    const refinerServed = findServedModel(name, servedModels(ctx.model)) ?? findServedModel(name.replace(/\.safetensors$/i, ""), servedModels(ctx.model));
    if (!refinerServed) throw new NodeError(r.checkpoint, `Value not in list: ckpt_name: ${JSON.stringify(name)} not in ${JSON.stringify(checkpointNames(ctx.model))}`, "ckpt_name");
    if (controlnets.length) throw new NodeError(ks, "ControlNet is not combined with a refiner here", "positive");
    spec.refiner = { ...r.refiner, model: refinerServed.name };
  }
  let hiresPixelOps: GraphImageOp[] | undefined;
  if (passes.second) {
    if (spec.noiseMask) throw new NodeError(passes.second.upscale, "an upscale pass after inpainting is not run here (the first pass starts from an EmptyLatentImage or a VAEEncode)", "samples");
    const read = hiresOf(graph, passes as Required<Passes>, settings, { width: spec.width!, height: spec.height! }, ctx.limits);
    spec.hires = read.hires;
    hiresPixelOps = read.pixelOps;
  }
  if (pos.sizes || neg.sizes) spec.microConditioning = sizeConditioning(pos.sizes, neg.sizes, [spec.height!, spec.width!]);
  // a pixel upscale's size is known once its models are looked up (routes.ts)
  const decodedSize = spec.hires && !hiresPixelOps ? hiresTargetSize(spec.width!, spec.height!, spec.hires) : { width: spec.width!, height: spec.height! };
  if (spec.initImage) { delete spec.width; delete spec.height; }
  return {
    spec, loras, controlnets, ...(vaeLoader ? { vae: vaeLoader } : {}), ...(initImageOps ? { initImageOps } : {}), imageOps: imageOps(graph, shown!, ctx.upload), decodedSize, ...(hiresPixelOps ? { hiresPixelOps } : {}), sampler: last.id, decoder: [...decoders][0].id,
    outputs: outputs.map((o) => ({ id: o.id, classType: o.classType, type: o.classType === "SaveImage" ? "output" : "temp" })),
  };
}

/**
 * An upload the job upscales or resizes (ImageUpscaleWithModel, ImageScale, ImageScaleBy) before its
 * VAEEncode (then cropped to multiples of 8, as VAEEncode does): its bytes as they came, and the size it will have.
 */
function resizedUpload(load: GraphNode, name: string, ops: GraphImageOp[], ctx: WorkflowContext): { png: string; width: number; height: number; uncropped: { width: number; height: number }; ops: GraphImageOp[] } | undefined {
  const rgba = ctx.upload(name), bytes = ctx.uploadBytes(name);
  if (!rgba || !bytes) return undefined;
  let size = { width: rgba.width, height: rgba.height };
  for (const op of ops) {
    if (op.op === "composite") throw new NodeError(load, "only ImageUpscaleWithModel, ImageScale and ImageScaleBy run between LoadImage and VAEEncode here", "image");
    if (op.op === "resize") { size = resizedSize(op, size.width, size.height); continue; }
    const scale = ctx.upscaleScale?.(op.name);
    if (scale === undefined) throw new NodeError(op.node, `Value not in list: model_name: ${JSON.stringify(op.name)} (not an upscale model of this server's --upscaler-dir)`, "model_name");
    size = { width: size.width * scale, height: size.height * scale };
    forInput(load, "image", () => checkImageSize(`${name} upscaled`, size.width, size.height, { maxPixels: ctx.limits.maxSide * ctx.limits.maxSide }));
  }
  forInput(load, "image", () => checkImageSize(`${name} resized`, size.width, size.height, { maxPixels: ctx.limits.maxSide * ctx.limits.maxSide }));
  const w = size.width - (size.width % 8), h = size.height - (size.height % 8);
  if (w === 0 || h === 0) throw new NodeError(load, `${name} resized to ${size.width}x${size.height} is smaller than 8x8`, "image");
  return { png: bytes, width: w, height: h, uncropped: size, ops };
}

/** The VAELoader every VAE input takes, or undefined when they all take a checkpoint's VAE. */
function readVaeLoader(vaes: GraphNode[]): { name: string; node: GraphNode } | undefined {
  const loaders = vaes.filter((v) => v.classType === "VAELoader");
  if (loaders.length === 0) return undefined;
  const names = new Set(loaders.map((v) => nodeFields(v).string("vae_name", 1000).replace(/^.*[\\/]/, "")));
  if (names.size > 1 || loaders.length < vaes.length) {
    throw new NodeError(loaders[0], `the image must be encoded and decoded with one VAE here, but the prompt uses ${names.size > 1 ? [...names].map((n) => JSON.stringify(n)).join(" and ") : "a VAELoader's and a checkpoint's"}`, "vae_name");
  }
  return { name: [...names][0], node: loaders[0] };
}

type Pair = [number, number];
interface Sizes { original: Pair; crops: Pair; target: Pair }

/** A CLIPTextEncode's text, or a CLIPTextEncodeSDXL's two texts (text_l: CLIP-L, text_g: CLIP-G) and size conditioning. */
function readText(node: GraphNode, limits: Limits): { l: string; g?: string; sizes?: Sizes } {
  const f = nodeFields(node);
  if (node.classType === "CLIPTextEncode") return { l: f.string("text", limits.maxPromptChars) };
  const px = (input: string) => f.int(input, 0, MAX_CONDITIONING_SIZE);
  return {
    l: f.string("text_l", limits.maxPromptChars), g: f.string("text_g", limits.maxPromptChars),
    sizes: { original: [px("height"), px("width")], crops: [px("crop_h"), px("crop_w")], target: [px("target_height"), px("target_width")] },
  };
}

/**
 * SDXL's six size numbers for each branch, as ComfyUI gives them: a CLIPTextEncodeSDXL's own, a plain
 * CLIPTextEncode's the image size with no crop (diffusers would reuse the positive ones for the
 * negative branch, so both are always given here). In diffusers' img2img the negative crop is the
 * positive one.
 */
function sizeConditioning(pos: Sizes | undefined, neg: Sizes | undefined, size: Pair): MicroConditioning {
  const plain: Sizes = { original: size, crops: [0, 0], target: size };
  const p = pos ?? plain, n = neg ?? plain;
  return { originalSize: p.original, cropsCoordsTopLeft: p.crops, targetSize: p.target, negativeOriginalSize: n.original, negativeCropsCoordsTopLeft: n.crops, negativeTargetSize: n.target };
}

/** What /object_info lists as ckpt_name: each served model's file or folder name. */
export function checkpointNames(model: ModelInfo): string[] {
  return servedModels(model).map((m) => (/\.safetensors$/i.test(m.source) ? m.source.replace(/^.*[\\/]/, "") : m.name));
}

function modelChain(graph: Graph, node: GraphNode): { checkpoint: GraphNode; loras: GraphNode[]; freeu?: FreeUOptions; pag?: PagSpec } {
  const loras: GraphNode[] = [];
  const seen = new Set<GraphNode>();
  let freeu: FreeUOptions | undefined, pag: PagSpec | undefined, pagNode: GraphNode | undefined;
  while (node.classType !== "CheckpointLoaderSimple") {
    if (seen.has(node)) throw new NodeError(node, "the MODEL nodes link in a loop", "model");
    seen.add(node);
    if (node.classType === "FreeU" || node.classType === "FreeU_V2") {
      // ComfyUI would run two FreeU patches one after the other
      if (freeu) throw new NodeError(node, "one FreeU patch per model here (this MODEL passes two)", "model");
      const f = nodeFields(node), scale = (k: string) => f.number(k, 0, FREEU_MAX);
      freeu = { b1: scale("b1"), b2: scale("b2"), s1: scale("s1"), s2: scale("s2"), variant: node.classType === "FreeU" ? "comfyui" : "comfyui-v2" };
    } else if (node.classType === "PerturbedAttentionGuidance") {
      if (pagNode) throw new NodeError(node, "one PerturbedAttentionGuidance per model here (this MODEL passes two)", "model");
      pagNode = node;
      // ComfyUI's node: the middle block's self-attention (nothing to perturb where it has none), guidance scale `scale`
      const scale = nodeFields(node).number("scale", 0, PAG_SCALE_MAX);
      if (scale > 0) pag = { scale, layers: ["mid"], optional: true };
    } else loras.push(node);
    node = graph.follow(node, "model", MODEL, "a MODEL");
  }
  return { checkpoint: node, loras, ...(freeu ? { freeu } : {}), ...(pag ? { pag } : {}) };
}

function clipChain(graph: Graph, node: GraphNode): ClipChain {
  const loras: GraphNode[] = [];
  const seen = new Set<GraphNode>();
  let clipSkip: number | undefined, layerSet = false;
  while (node.classType !== "CheckpointLoaderSimple") {
    if (seen.has(node)) throw new NodeError(node, "the CLIP nodes link in a loop", "clip");
    seen.add(node);
    if (node.classType === "LoraLoader") loras.push(node);
    else if (!layerSet) {
      // the CLIPSetLastLayer nearest the text encoder node wins, as in ComfyUI
      layerSet = true;
      const last = nodeFields(node).int("stop_at_clip_layer", -24, -1);
      // ComfyUI -N is hidden_states[-N] of both encoders; SDXL's default is -2 (diffusers' clip_skip N - 2)
      clipSkip = last === -2 ? undefined : -last - 2;
    }
    node = graph.follow(node, "clip", CLIP, "a CLIP");
  }
  return { checkpoint: node, loras, clipSkip };
}

/** The LoRAs of the model chain, which both prompts' CLIP chains must apply too, at the same strengths. */
function loraSet(modelLoras: GraphNode[], clips: ClipChain[]): ComfyLora[] {
  const out: ComfyLora[] = [];
  for (const node of modelLoras) {
    const f = nodeFields(node);
    const name = f.libraryName("lora_name");
    const strength = f.number("strength_model", -100, 100);
    // LoraLoaderModelOnly: the UNet's part alone (the text encoders at weight 0)
    const clipStrength = node.classType === "LoraLoaderModelOnly" ? 0 : f.number("strength_clip", -100, 100);
    out.push({ name, weight: strength, ...(clipStrength !== strength ? { textEncoderWeight: clipStrength } : {}) });
  }
  for (const c of clips) {
    for (const node of c.loras) {
      if (!modelLoras.includes(node)) throw new NodeError(node, "this LoraLoader's CLIP output is used without its MODEL output; here a LoRA applies to the UNet and the text encoders together", "clip");
    }
    for (const node of modelLoras) {
      if (node.classType === "LoraLoader" && !c.loras.includes(node)) throw new NodeError(node, "this LoraLoader's MODEL output is used without its CLIP output by a CLIPTextEncode; here a LoRA applies to the UNet and the text encoders together", "clip");
    }
  }
  return out;
}
