/**
 * ComfyUI's MASK values (float planes in [0, 1], 1 = repaint) as its nodes make them from uploads:
 * LoadImage's second output is 1 - alpha (an image without transparency gives ComfyUI an empty 64x64
 * mask, which is refused here with the reason), LoadImageMask one channel of an upload (its "alpha"
 * inverted as LoadImage's), InvertMask 1 - mask. And VAEEncodeForInpaint's mask arithmetic: the
 * rounded mask grown by a box of grow_mask_by pixels (its conv2d with ComfyUI's padding, so an even
 * box grows one pixel more to the right and down than to the left and up).
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";
import { maskFromAlpha, invertMask, type Mask } from "../../image/mask.js";
import type { RgbaImage } from "../../image/rgba.js";

/** What may feed a MASK input. */
export const MASK_SOURCES = { LoadImage: [1], LoadImageMask: [0], InvertMask: [0] };

/** LoadImageMask's channels (RGBA order). */
export const MASK_CHANNELS = ["alpha", "red", "green", "blue"] as const;

/** An upload as LoadImage reads it (alpha kept, not cropped), or undefined when none has that name. */
export type UploadReader = (name: string) => RgbaImage | undefined;

/** The image name a LoadImage / LoadImageMask node names, looked up in the uploads. */
export function loadUpload(node: GraphNode, uploads: UploadReader): { name: string; image: RgbaImage } {
  const name = uploadName(nodeFields(node).string("image", 300));
  const image = uploads(name);
  if (image === undefined) throw new NodeError(node, `Invalid image file: ${JSON.stringify(name)} was not uploaded here (POST /upload/image first)`, "image", "custom_validation_failed");
  return { name, image };
}

/** ComfyUI's widget may say which folder an upload is in ("x.png [input]"); every upload here is an input. */
export const uploadName = (value: string): string => value.replace(/ \[input\]$/, "");

/** The mask a MASK input links to, at the size of its upload. */
export function readMask(graph: Graph, node: GraphNode, input: string, uploads: UploadReader): Mask {
  const seen = new Set<GraphNode>();
  let inverted = false;
  let src = graph.follow(node, input, MASK_SOURCES, "a MASK from LoadImage, LoadImageMask or InvertMask");
  while (src.classType === "InvertMask") {
    if (seen.has(src)) throw new NodeError(src, "the InvertMask nodes link in a loop", "mask");
    seen.add(src);
    inverted = !inverted;
    src = graph.follow(src, "mask", MASK_SOURCES, "a MASK from LoadImage, LoadImageMask or InvertMask");
  }
  const { name, image } = loadUpload(src, uploads);
  let mask: Mask;
  if (src.classType === "LoadImage") {
    mask = maskFromAlpha(image);
    if (!mask.data.some((v) => v > 0)) {
      throw new NodeError(src, `${name} has no transparency, so LoadImage's MASK is empty (it is 1 - alpha); paint the mask into the image's alpha (ComfyUI's mask editor) or load one with LoadImageMask`, "image");
    }
  } else {
    const channel = nodeFields(src).string("channel", 10);
    const c = (MASK_CHANNELS as readonly string[]).indexOf(channel);
    if (c < 0) throw new NodeError(src, `channel must be one of ${MASK_CHANNELS.join(", ")}, got ${JSON.stringify(channel)}`, "channel");
    mask = c === 0 ? maskFromAlpha(image) : channelMask(image, c - 1);
  }
  return inverted ? invertMask(mask) : mask;
}

/** One of R, G, B as a mask (level / 255). */
function channelMask(img: RgbaImage, channel: number): Mask {
  const n = img.width * img.height;
  const data = new Float32Array(n);
  for (let p = 0; p < n; p++) data[p] = img.data[4 * p + channel] / 255;
  return { width: img.width, height: img.height, data };
}

/** torch's round() of a [0, 1] mask: halves go to the even neighbour, so 0.5 is 0. */
export function roundMask(m: Mask): Mask {
  return { width: m.width, height: m.height, data: m.data.map((v) => (v > 0.5 ? 1 : 0)) };
}

/**
 * VAEEncodeForInpaint's grown mask: clamp(conv2d(round(mask), ones(g, g), padding ceil((g - 1) / 2)), 0, 1)
 * cut back to the mask's size, so pixel i is 1 when any rounded pixel in [i - p, i - p + g - 1] is;
 * g = 0 is the rounded mask. Two passes of box sums over prefix counts: O(pixels) for any g.
 */
export function growMask(m: Mask, g: number): Mask {
  const r = roundMask(m);
  if (g === 0) return r;
  const p = Math.ceil((g - 1) / 2);
  const { width: w, height: h } = m;
  const rows = boxAny(r.data, w, h, 1, w, g, p);
  return { width: w, height: h, data: boxAny(rows, h, w, w, 1, g, p) };
}

/**
 * Along lines of `len` values `stride` apart (`count` lines, `lineStep` apart): out[i] = 1 when any of
 * in[i - p .. i - p + g - 1] inside the line is non-zero.
 */
function boxAny(data: Float32Array, len: number, count: number, stride: number, lineStep: number, g: number, p: number): Float32Array {
  const out = new Float32Array(data.length);
  const prefix = new Int32Array(len + 1);
  for (let line = 0; line < count; line++) {
    const base = line * lineStep;
    for (let i = 0; i < len; i++) prefix[i + 1] = prefix[i] + (data[base + i * stride] > 0 ? 1 : 0);
    for (let i = 0; i < len; i++) {
      const lo = Math.max(0, i - p), hi = Math.min(len, i - p + g);
      out[base + i * stride] = hi > lo && prefix[hi] - prefix[lo] > 0 ? 1 : 0;
    }
  }
  return out;
}
