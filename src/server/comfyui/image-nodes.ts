/**
 * ComfyUI's image nodes between VAEDecode and the outputs, as the job's image steps (image-ops.ts):
 *
 *   VAEDecode -> [ImageUpscaleWithModel <- UpscaleModelLoader | ImageScaleBy | ImageScale ...] -> SaveImage | PreviewImage
 *
 * (between two samplers, the same nodes before a VAEEncode are a pixel-space hires pass: hires.ts)
 *
 * UpscaleModelLoader names an --upscaler-dir model (looked up when the prompt is queued: routes.ts).
 * ImageScale's and ImageScaleBy's nearest-exact, bilinear, bicubic and lanczos are run; area and
 * bislerp are refused.
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";
import type { ImageOpSpec, ImageResizeMethod } from "../job.js";
import { loadUpload, readMask, type UploadReader } from "./masks.js";
import { grayToRgb, maskToGray } from "../../image/mask.js";
import { encodePng } from "../../image/png.js";

export const IMAGE_NODES = { ImageUpscaleWithModel: [0], ImageScaleBy: [0], ImageScale: [0], ImageCompositeMasked: [0] };

/** The input each image node takes its image from. */
const CHAIN_INPUT: Readonly<Record<string, string>> = { ImageCompositeMasked: "source" };
const chainInput = (node: GraphNode) => CHAIN_INPUT[node.classType] ?? "image";

/**
 * What decodes latents: VAEDecode, and VAEDecodeTiled, decoded whole here (tiling is a memory measure;
 * the server's --vae-tiling tiles every decode, diffusers' way).
 */
export const DECODERS: readonly string[] = ["VAEDecode", "VAEDecodeTiled"];

/** The methods run here, and ComfyUI's list (for /object_info). */
export const RESIZE_METHODS: readonly ImageResizeMethod[] = ["nearest-exact", "bilinear", "bicubic", "lanczos"];
export const COMFY_RESIZE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"];

/** A step of the graph; a model step's file is still a name. */
export type GraphImageOp = Exclude<ImageOpSpec, { op: "upscale-model" }> | { op: "upscale-model"; name: string; node: GraphNode };

/**
 * The VAEDecode an output (or a VAEEncode's pixels) shows, or the LoadImage a VAEEncode encodes, and
 * the image nodes on the way, in the order they run.
 */
export function imageChain(graph: Graph, output: GraphNode, input?: string): { decode: GraphNode; nodes: GraphNode[] };
export function imageChain(graph: Graph, output: GraphNode, input: string, from: "LoadImage"): { load: GraphNode; nodes: GraphNode[] };
export function imageChain(graph: Graph, output: GraphNode, input = "images", from: "VAEDecode" | "LoadImage" = "VAEDecode"): { decode?: GraphNode; load?: GraphNode; nodes: GraphNode[] } {
  const ends: readonly string[] = from === "VAEDecode" ? DECODERS : ["LoadImage"];
  const sources = { ...Object.fromEntries(ends.map((c) => [c, [0]])), ...IMAGE_NODES }, what = from === "VAEDecode" ? "an IMAGE from a VAEDecode" : "an IMAGE from LoadImage";
  const nodes: GraphNode[] = [];
  let node = graph.follow(output, input, sources, what);
  while (!ends.includes(node.classType)) {
    if (nodes.includes(node)) throw new NodeError(node, "the image nodes link in a loop", "image");
    nodes.unshift(node);
    node = graph.follow(node, chainInput(node), sources, what);
  }
  return from === "VAEDecode" ? { decode: node, nodes } : { load: node, nodes };
}

/** The class of the node an IMAGE input's chain of image nodes starts at (undefined for a broken link; checked when the chain is read). */
export function imageSource(graph: Graph, node: GraphNode, input: string): string | undefined {
  const seen = new Set<GraphNode>();
  for (let link = node.inputs[input]; Array.isArray(link);) {
    const from = graph.nodes.get(String(link[0]));
    if (!from || seen.has(from) || !(from.classType in IMAGE_NODES)) return from?.classType;
    seen.add(from);
    link = from.inputs[chainInput(from)];
  }
  return undefined;
}

/** The steps of the chain's nodes (`uploads`: where ImageCompositeMasked's destination and mask come from; without them it is refused). */
export function imageOps(graph: Graph, nodes: readonly GraphNode[], uploads?: UploadReader): GraphImageOp[] {
  return nodes.map((node) => {
    const f = nodeFields(node);
    if (node.classType === "ImageCompositeMasked") {
      if (!uploads) throw new NodeError(node, "ImageCompositeMasked is run after the last VAEDecode only (on the saved images)", "source");
      return compositeOp(graph, node, uploads);
    }
    if (node.classType === "ImageUpscaleWithModel") {
      const loader = graph.follow(node, "upscale_model", { UpscaleModelLoader: [0] }, "an UPSCALE_MODEL from UpscaleModelLoader");
      return { op: "upscale-model", name: nodeFields(loader).string("model_name", 300).replace(/^.*[\\/]/, "").replace(/\.(safetensors|pth|pt)$/i, ""), node: loader };
    }
    const method = f.string("upscale_method", 20) as ImageResizeMethod;
    if (!RESIZE_METHODS.includes(method)) {
      throw new NodeError(node, `upscale_method ${JSON.stringify(method)} is not run here (${RESIZE_METHODS.join(", ")} are)`, "upscale_method");
    }
    if (node.classType === "ImageScaleBy") return { op: "resize", method, scaleBy: f.number("scale_by", 0.01, 8) };
    const width = f.int("width", 0, 16384), height = f.int("height", 0, 16384);
    if (width === 0 && height === 0) throw new NodeError(node, "width and height are both 0: give at least one (0 keeps the aspect ratio)", "width");
    const crop = f.string("crop", 20);
    if (crop !== "disabled" && crop !== "center") throw new NodeError(node, `crop must be "disabled" or "center", got ${JSON.stringify(crop)}`, "crop");
    return { op: "resize", method, width, height, crop };
  });
}

/**
 * ImageCompositeMasked(destination from LoadImage, source, x, y, resize_source false, mask): ComfyUI's
 * composite with multiplier 1, the mask scaled to the source bilinearly (image-ops.ts).
 */
function compositeOp(graph: Graph, node: GraphNode, uploads: UploadReader): GraphImageOp {
  const f = nodeFields(node);
  if (f.optionalBool("resize_source")) throw new NodeError(node, "resize_source true is not run here (scale the image with ImageScale first)", "resize_source");
  const { image } = loadUpload(graph.follow(node, "destination", { LoadImage: [0] }, "an IMAGE from LoadImage (the image to paste onto)"), uploads);
  const n = image.width * image.height, rgb = new Uint8Array(3 * n);
  for (let p = 0; p < n; p++) rgb.set(image.data.subarray(4 * p, 4 * p + 3), 3 * p);
  const mask = node.inputs.mask === undefined ? undefined : readMask(graph, node, "mask", uploads);
  return {
    op: "composite", destination: encodePng({ width: image.width, height: image.height, data: rgb }).toString("base64"), width: image.width, height: image.height,
    x: f.int("x", 0, 16384), y: f.int("y", 0, 16384), ...(mask ? { mask: encodePng(grayToRgb(maskToGray(mask))).toString("base64") } : {}),
  };
}
