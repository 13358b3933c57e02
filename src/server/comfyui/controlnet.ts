/**
 * ComfyUI's ControlNet nodes as the server's ControlNet units (controlnet-spec.ts):
 *
 *   CLIPTextEncode (positive, negative) -> ControlNetApplyAdvanced [-> ControlNetApplyAdvanced ...] -> KSampler
 *                     ControlNetLoader -^  LoadImage (the control image) -^
 *
 * ControlNetApplyAdvanced conditions both CFG branches, as diffusers' ControlNet pipelines do:
 * strength is controlnet_conditioning_scale, start_percent / end_percent control_guidance_start / end.
 * The control image is used as it is (module "none"; preprocess it first) and fitted to the output
 * size as sd-webui-controlnet's "Crop and Resize" (ComfyUI: nearest-exact after a centre crop; the
 * two agree when the image already has the output size).
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";
import { loadUpload, uploadName, type UploadReader } from "./masks.js";
import { korniaCanny } from "../../image/kornia-canny.js";
import { grayToRgb } from "../../image/mask.js";
import { encodePng } from "../../image/png.js";
import type { RgbaImage } from "../../image/rgba.js";
import type { ControlNetSpec } from "../controlnet-spec.js";
import { CANNY_DEFAULTS } from "../controlnet-spec.js";

const APPLY = "ControlNetApplyAdvanced";
/** Passes both prompts on (outputs 0 and 1) with an inpainting model's concat inputs (inpaint.ts). */
export const INPAINT_CONDITIONING = "InpaintModelConditioning";
const PASSING: readonly string[] = [APPLY, INPAINT_CONDITIONING];
const TEXT_NODES = { CLIPTextEncode: [0], CLIPTextEncodeSDXL: [0] };
const TEXT = { ...TEXT_NODES, [APPLY]: [0, 1], [INPAINT_CONDITIONING]: [0, 1], ConditioningZeroOut: [0] };

/**
 * The text node at the end of a KSampler's positive or negative chain, with the ControlNet nodes and
 * InpaintModelConditioning nodes on the way; `zeroed` when the text passes a ConditioningZeroOut
 * (all zeros: diffusers' zero embedding for no negative prompt).
 */
export function conditioningChain(graph: Graph, sampler: GraphNode, input: "positive" | "negative"): { text: GraphNode; applies: GraphNode[]; inpaint: GraphNode[]; zeroed: boolean } {
  const applies: GraphNode[] = [], inpaint: GraphNode[] = [];
  let from = sampler;
  let node = graph.follow(from, input, TEXT, "CONDITIONING");
  while (PASSING.includes(node.classType)) {
    const index = (from.inputs[input] as [unknown, number])[1], want = input === "positive" ? 0 : 1;
    if (index !== want) throw new NodeError(from, `${input} takes output ${index} of ${node.classType} ${node.id}, which is its ${index === 0 ? "positive" : "negative"}; link output ${want}`, input, "return_type_mismatch");
    if (applies.includes(node) || inpaint.includes(node)) throw new NodeError(node, `the ${node.classType} nodes link in a loop`, input);
    (node.classType === APPLY ? applies : inpaint).push(node);
    from = node;
    node = graph.follow(from, input, TEXT, "CONDITIONING");
  }
  if (node.classType !== "ConditioningZeroOut") return { text: node, applies, inpaint, zeroed: false };
  return { text: graph.follow(node, "conditioning", TEXT_NODES, "CONDITIONING from a CLIPTextEncode"), applies, inpaint, zeroed: true };
}

/** The units of a KSampler whose positive and negative chains pass the same ControlNetApplyAdvanced nodes. */
export function controlNetUnits(graph: Graph, positive: GraphNode[], negative: GraphNode[], controlImage: (name: string) => string | undefined, uploads: UploadReader): ControlNetSpec[] {
  for (const [a, b, side] of [[positive, negative, "negative"], [negative, positive, "positive"]] as const) {
    const missing = a.find((n) => !b.includes(n));
    if (missing) throw new NodeError(missing, `this ControlNet conditions one branch only; here a ControlNet conditions both (link its ${side} output to the sampler's ${side} chain too)`, side);
  }
  return positive.map((apply) => {
    const f = nodeFields(apply);
    const loader = graph.follow(apply, "control_net", { ControlNetLoader: [0] }, "a CONTROL_NET from ControlNetLoader");
    const source = graph.follow(apply, "image", { LoadImage: [0], Canny: [0] }, "an IMAGE from LoadImage or Canny (the control image)");
    const load = source.classType === "Canny" ? graph.follow(source, "image", { LoadImage: [0] }, "an IMAGE from LoadImage") : source;
    const imageName = uploadName(nodeFields(load).string("image", 300));
    const upload = controlImage(imageName);
    if (upload === undefined) throw new NodeError(load, `Invalid image file: ${JSON.stringify(imageName)} was not uploaded here (POST /upload/image first)`, "image", "custom_validation_failed");
    const image = source.classType === "Canny" ? cannyImage(source, loadUpload(load, uploads).image) : upload;
    const start = f.number("start_percent", 0, 1), end = f.number("end_percent", 0, 1);
    if (!(start < end)) throw new NodeError(apply, `start_percent ${start} must be below end_percent ${end}`, "start_percent");
    return {
      name: nodeFields(loader).libraryName("control_net_name"),
      image, module: "none", thresholdA: CANNY_DEFAULTS.low, thresholdB: CANNY_DEFAULTS.high,
      weight: f.number("strength", -10, 10), guidanceStart: start, guidanceEnd: end,
      controlMode: 0, resizeMode: "Crop and Resize", pixelPerfect: false, processorRes: -1,
    } satisfies ControlNetSpec;
  });
}

/** ComfyUI's Canny node on the upload (its alpha dropped, as LoadImage does): the edges as a PNG, base64. */
function cannyImage(node: GraphNode, upload: RgbaImage): string {
  const f = nodeFields(node);
  const low = f.number("low_threshold", 0.01, 0.99), high = f.number("high_threshold", 0.01, 0.99);
  const n = upload.width * upload.height, rgb = new Uint8Array(3 * n);
  for (let p = 0; p < n; p++) rgb.set(upload.data.subarray(4 * p, 4 * p + 3), 3 * p);
  return encodePng(grayToRgb(korniaCanny({ width: upload.width, height: upload.height, data: rgb }, low, high))).toString("base64");
}
