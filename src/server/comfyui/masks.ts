/**
 * ComfyUI's MASK values (float planes in [0, 1], 1 = repaint) as its nodes make them from uploads:
 * LoadImage's second output is 1 - alpha (an image without transparency gives ComfyUI an empty 64x64
 * mask, which is refused here with the reason), LoadImageMask one channel of an upload (its "alpha"
 * inverted as LoadImage's), ImageToMask a channel of LoadImage's IMAGE, InvertMask 1 - mask,
 * ThresholdMask mask > value, GrowMask its dilation or erosion. And VAEEncodeForInpaint's mask arithmetic: the
 * rounded mask grown by a box of grow_mask_by pixels (its conv2d with ComfyUI's padding, so an even
 * box grows one pixel more to the right and down than to the left and up).
 */
import { NodeError, nodeFields, type Graph, type GraphNode } from "./graph.js";
import { maskFromAlpha, invertMask, type Mask } from "../../image/mask.js";
import type { RgbaImage } from "../../image/rgba.js";

/** What may feed a MASK input. */
export const MASK_SOURCES = { LoadImage: [1], LoadImageMask: [0], InvertMask: [0], GrowMask: [0], ThresholdMask: [0], ImageToMask: [0] };

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
export function readMask(graph: Graph, node: GraphNode, input: string, uploads: UploadReader, seen = new Set<GraphNode>()): Mask {
  const src = graph.follow(node, input, MASK_SOURCES, `a MASK from ${Object.keys(MASK_SOURCES).join(", ")}`);
  if (seen.has(src)) throw new NodeError(src, "the mask nodes link in a loop", "mask");
  seen.add(src);
  // each mask node is a pass over the whole mask, made before the prompt is queued
  if (seen.size > MAX_MASK_NODES) throw new NodeError(src, `a mask here is made by at most ${MAX_MASK_NODES} nodes`, "mask");
  const f = nodeFields(src);
  switch (src.classType) {
    case "InvertMask": return invertMask(readMask(graph, src, "mask", uploads, seen));
    case "ThresholdMask": {
      const value = f.number("value", 0, 1);
      const m = readMask(graph, src, "mask", uploads, seen);
      return { ...m, data: m.data.map((v) => (v > value ? 1 : 0)) };
    }
    case "GrowMask": {
      const expand = f.int("expand", -MAX_GROW, MAX_GROW), tapered = f.optionalBool("tapered_corners") ?? true;
      return morphMask(readMask(graph, src, "mask", uploads, seen), expand, tapered);
    }
    case "ImageToMask": {
      const channel = f.string("channel", 10);
      const c = (["red", "green", "blue"] as const).indexOf(channel as "red");
      if (c < 0) throw new NodeError(src, `channel must be red, green or blue here (LoadImage's IMAGE has no alpha: its MASK is that), got ${JSON.stringify(channel)}`, "channel");
      const load = graph.follow(src, "image", { LoadImage: [0] }, "an IMAGE from LoadImage");
      return channelMask(loadUpload(load, uploads).image, c);
    }
  }
  const { name, image } = loadUpload(src, uploads);
  if (src.classType === "LoadImage") {
    const mask = maskFromAlpha(image);
    if (!mask.data.some((v) => v > 0)) {
      throw new NodeError(src, `${name} has no transparency, so LoadImage's MASK is empty (it is 1 - alpha); paint the mask into the image's alpha (ComfyUI's mask editor) or load one with LoadImageMask`, "image");
    }
    return mask;
  }
  const channel = f.string("channel", 10);
  const c = (MASK_CHANNELS as readonly string[]).indexOf(channel);
  if (c < 0) throw new NodeError(src, `channel must be one of ${MASK_CHANNELS.join(", ")}, got ${JSON.stringify(channel)}`, "channel");
  return c === 0 ? maskFromAlpha(image) : channelMask(image, c - 1);
}

/** Mask nodes in one mask's chain. */
const MAX_MASK_NODES = 8;

/** GrowMask's expand, in pixels either way (ComfyUI allows MAX_RESOLUTION; more than the image changes nothing). */
const MAX_GROW = 16384;

/**
 * GrowMask: `expand` times scipy's grey_dilation (erosion when negative) with a 3x3 cross
 * (tapered_corners) or square footprint. Its reflect border keeps each step to the pixels inside, so k
 * steps are the max (min) over the pixels within L1 (cross) or L-infinity (square) distance k: a
 * square is two sliding windows; a cross is a square in coordinates turned by 45 degrees (u = x + y,
 * v = x - y), where the cells that are no pixel hold the identity. O(pixels) for any k.
 */
export function morphMask(m: Mask, expand: number, tapered: boolean): Mask {
  if (expand === 0) return m;
  const k = Math.min(Math.abs(expand), m.width + m.height), grow = expand > 0;
  const pick = grow ? Math.max : Math.min, none = grow ? -Infinity : Infinity;
  const { width: w, height: h } = m;
  if (!tapered) return { width: w, height: h, data: slidingExtreme(slidingExtreme(m.data, w, h, 1, w, k, pick), h, w, w, 1, k, pick) };
  // the turned grid: (x, y) -> (x + y, x - y + h - 1), of side w + h - 1
  const n = w + h - 1;
  const turned = new Float32Array(n * n).fill(none);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) turned[(x + y) * n + (x - y + h - 1)] = m.data[y * w + x];
  const out = slidingExtreme(slidingExtreme(turned, n, n, 1, n, k, pick), n, n, n, 1, k, pick);
  const data = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = out[(x + y) * n + (x - y + h - 1)];
  return { width: w, height: h, data };
}

/**
 * Along `count` lines of `len` values (`stride` apart within a line, `lineStep` between lines): the
 * max (or min) over the window [i - k, i + k] clipped to the line, by a monotonic deque: O(len) a line.
 */
function slidingExtreme(data: Float32Array, len: number, count: number, stride: number, lineStep: number, k: number, pick: (a: number, b: number) => number): Float32Array {
  const out = new Float32Array(data.length);
  const better = pick === Math.max ? (a: number, b: number) => a >= b : (a: number, b: number) => a <= b;
  const queue = new Int32Array(len);
  for (let line = 0; line < count; line++) {
    const base = line * lineStep, at = (i: number) => data[base + i * stride];
    let head = 0, tail = 0, next = 0;
    for (let i = 0; i < len; i++) {
      // take in everything up to i + k, drop what fell out of i - k
      for (; next < len && next <= i + k; next++) {
        while (tail > head && better(at(next), at(queue[tail - 1]))) tail--;
        queue[tail++] = next;
      }
      while (queue[head] < i - k) head++;
      out[base + i * stride] = at(queue[head]);
    }
  }
  return out;
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
