/**
 * An ESRGAN-family upscaler (RRDBNet .safetensors, any key layout) with tiled inference, and the
 * resize to an arbitrary scale that AUTOMATIC1111 does around it (modules/upscaler.py): the model runs
 * until the image is at least the asked-for size (at most 3 passes), then a Lanczos resize gives the
 * exact size. The network sees RGB in [0, 1] (basicsr / Real-ESRGAN / ComfyUI; A1111 feeds BGR:
 * `channelOrder: "bgr"`), and its output is clamped to [0, 1].
 */
import { Graph } from "../ir/graph.js";
import { WeightBuilder } from "../nn/weights.js";
import { CompiledGraph, type SessionOptions } from "../runtime/session.js";
import type { RgbImage } from "../image/png.js";
import { rgbToTensor, type FloatTensor } from "../image/image.js";
import { DEFAULT_MAX_PIXELS, checkImageSize } from "../image/limits.js";
import { resizePlanes } from "../image/resize.js";
import { reflectPadPlanes } from "../image/reflect-pad.js";
import { openEsrganFile, openEsrganTensors, type EsrganWeights } from "../loaders/esrgan.js";
import { unshuffleFactor, type RrdbNetConfig } from "../models/esrgan/config.js";
import { buildRrdbNet } from "../models/esrgan/rrdbnet.js";
import { SerialQueue, ShapeCache } from "./shape-cache.js";
import { cropPlanes, planTiles } from "../models/esrgan/tiling.js";
import type { EsrganLayout } from "../models/esrgan/layouts.js";
import type { TensorEntry } from "../safetensors/read.js";
import { PipelineInputError } from "./errors.js";

/** 8192 × 8192: a 4096² image upscaled 2x; as float32 CHW 0.8 GB. */
export const DEFAULT_MAX_UPSCALED_PIXELS = 8192 * 8192;
/** A1111's ESRGAN defaults are tile 192, overlap 8; the context here is per side, so 16 keeps more of it. */
export const DEFAULT_TILE = 192;
export const DEFAULT_TILE_OVERLAP = 16;

export interface UpscalerOptions {
  session?: SessionOptions;
  /** What the network is fed: "rgb" (default: basicsr, Real-ESRGAN, ComfyUI) or "bgr" (AUTOMATIC1111). */
  channelOrder?: "rgb" | "bgr";
}

export interface TileOptions {
  /** Core tile size in input pixels; 0 runs the whole image at once (default DEFAULT_TILE). */
  tile?: number;
  /** Context around each tile, per side, in input pixels (default DEFAULT_TILE_OVERLAP). */
  tileOverlap?: number;
  signal?: AbortSignal;
}

export interface UpscaleOptions extends TileOptions {
  /** Output size / input size (default: the network's scale); other scales are reached as A1111 does. */
  scale?: number;
  /** Input limit (default DEFAULT_MAX_PIXELS), output limit (default DEFAULT_MAX_UPSCALED_PIXELS). */
  maxPixels?: number;
  maxOutputPixels?: number;
}

export class Upscaler {
  private readonly cache = new ShapeCache();
  private readonly serial = new SerialQueue();
  private constructor(readonly weights: EsrganWeights, private readonly opts: UpscalerOptions) {}

  /** An RRDBNet .safetensors (basicsr, old ESRGAN or xinntao key names); checked now, compiled on first use. */
  static async fromFile(path: string, opts: UpscalerOptions = {}): Promise<Upscaler> {
    return new Upscaler(openEsrganFile(path), opts);
  }

  /** Tensors already read from a header (e.g. a file opened elsewhere). */
  static fromTensors(tensors: ReadonlyMap<string, TensorEntry>, where: string, opts: UpscalerOptions = {}): Upscaler {
    return new Upscaler(openEsrganTensors(tensors, where), opts);
  }

  get config(): RrdbNetConfig { return this.weights.config; }
  get layout(): EsrganLayout { return this.weights.layout; }
  /** The network's own scale (4, 2 or 1). */
  get scale(): number { return this.weights.config.scale; }

  /**
   * The network on x [1, C, H, W] (no clamping, no channel swap): [1, C, H·s, W·s]. Sizes not divisible by
   * the pixel_unshuffle factor are reflect-padded and the output cropped back, as Real-ESRGAN does.
   */
  forward(x: FloatTensor, opts: TileOptions = {}): Promise<FloatTensor> {
    return this.serial.run(() => this.forwardNow(x, opts));
  }

  /** 8-bit RGB -> 8-bit RGB at `scale` (default the network's). */
  async upscale(image: RgbImage, opts: UpscaleOptions = {}): Promise<RgbImage> {
    const planes = await this.upscalePlanes(rgbToTensor(image), opts);
    const [, , h, w] = planes.shape;
    const data = new Uint8Array(h * w * 3);
    for (let c = 0; c < 3; c++) for (let p = 0; p < h * w; p++) data[p * 3 + c] = toByte(planes.data[c * h * w + p]);
    return { width: w, height: h, data };
  }

  /** [1, 3, H, W] in [0, 1] -> [1, 3, H', W'] in [0, 1], as `upscale` without the 8-bit rounding. */
  async upscalePlanes(image: FloatTensor, opts: UpscaleOptions = {}): Promise<FloatTensor> {
    const [n, c, h, w] = image.shape;
    if (image.shape.length !== 4 || n !== 1 || c !== 3) throw new PipelineInputError(`upscale: image [${image.shape}] must be [1, 3, H, W]`);
    checkImageSize("the image to upscale", w, h, { maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS });
    const scale = opts.scale ?? this.scale;
    if (!(scale > 0 && Number.isFinite(scale))) throw new PipelineInputError(`upscale: scale must be a positive number, got ${scale}`);
    const destW = Math.floor(w * scale), destH = Math.floor(h * scale);
    checkImageSize("the upscaled image", destW, destH, { maxPixels: opts.maxOutputPixels ?? DEFAULT_MAX_UPSCALED_PIXELS });
    let cur = image;
    // A1111: passes until the image reaches the size (scale 1 still runs the model once), at most 3;
    // a model that keeps the size (x1) runs once.
    for (let pass = 0; pass < 3; pass++) {
      const [, , ch, cw] = cur.shape;
      if (cw >= destW && ch >= destH && (pass > 0 || scale !== 1)) break;
      checkImageSize("an intermediate upscaled image", cw * this.scale, ch * this.scale, { maxPixels: opts.maxOutputPixels ?? DEFAULT_MAX_UPSCALED_PIXELS });
      cur = await this.forward(this.swap(cur), opts);
      cur = this.swap(cur);
      for (let i = 0; i < cur.data.length; i++) cur.data[i] = Math.min(1, Math.max(0, cur.data[i]));
      if (this.scale === 1) break;
    }
    const [, , ch, cw] = cur.shape;
    if (ch === destH && cw === destW) return cur;
    const data = resizePlanes(cur.data, 3, ch, cw, destH, destW, "lanczos");
    for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, data[i]));
    return { data, shape: [1, 3, destH, destW] };
  }

  release(): Promise<void> {
    return this.serial.run(() => this.cache.release());
  }

  private swap(x: FloatTensor): FloatTensor {
    if (this.opts.channelOrder !== "bgr") return x;
    const plane = x.shape[2] * x.shape[3], d = x.data;
    const out = Float32Array.from(d);
    out.set(d.subarray(2 * plane, 3 * plane), 0);
    out.set(d.subarray(0, plane), 2 * plane);
    return { data: out, shape: [...x.shape] };
  }

  private async forwardNow(x: FloatTensor, opts: TileOptions): Promise<FloatTensor> {
    const cfg = this.config;
    const [n, c, h, w] = x.shape;
    if (x.shape.length !== 4 || n !== 1 || c !== cfg.numInCh) throw new PipelineInputError(`upscaler: input [${x.shape}] must be [1, ${cfg.numInCh}, H, W]`);
    if (x.data.length !== c * h * w) throw new PipelineInputError(`upscaler: input has ${x.data.length} values, not [${x.shape}]`);
    const f = unshuffleFactor(cfg), s = cfg.scale;
    const padH = (f - (h % f)) % f, padW = (f - (w % f)) % f;
    const H = h + padH, W = w + padW;
    const padded = reflectPadPlanes(x.data, c, h, w, padH, padW);
    const tile = opts.tile ?? DEFAULT_TILE, overlap = opts.tileOverlap ?? DEFAULT_TILE_OVERLAP;
    if (!Number.isInteger(tile) || tile < 0) throw new PipelineInputError(`upscaler: tile must be an integer >= 0, got ${tile}`);
    if (!Number.isInteger(overlap) || overlap < 0) throw new PipelineInputError(`upscaler: tile overlap must be an integer >= 0, got ${overlap}`);
    const plan = planTiles(H, W, tile, overlap, f);
    const co = cfg.numOutCh, OH = H * s, OW = W * s;
    const out = new Float32Array(co * OH * OW);
    const graph = await this.graphFor(plan.winH, plan.winW);
    for (const win of plan.windows) {
      opts.signal?.throwIfAborted();
      const input = plan.windows.length === 1 ? padded : cropPlanes(padded, c, H, W, win.y, win.x, plan.winH, plan.winW);
      const y = (await graph.run({ image: input })).upscaled;
      const ww = plan.winW * s, wh = plan.winH * s;
      // Keep the core's part: rows (y0 - y)·s .. (y1 - y)·s of the window's output.
      for (let k = 0; k < co; k++) for (let r = win.y0 * s; r < win.y1 * s; r++) {
        const src = (k * wh + r - win.y * s) * ww + (win.x0 - win.x) * s;
        out.set(y.subarray(src, src + (win.x1 - win.x0) * s), (k * OH + r) * OW + win.x0 * s);
      }
    }
    if (padH === 0 && padW === 0) return { data: out, shape: [1, co, OH, OW] };
    return { data: cropPlanes(out, co, OH, OW, 0, 0, h * s, w * s), shape: [1, co, h * s, w * s] };
  }

  /** One session for the current window size; another size replaces it. */
  private async graphFor(h: number, w: number): Promise<CompiledGraph> {
    const shape = [1, this.config.numInCh, h, w];
    return this.cache.get(shape, () => {
      const g = new Graph();
      buildRrdbNet(WeightBuilder.root(g, this.weights.source), this.config, shape);
      return CompiledGraph.create(g, `RRDBNet x${this.scale} (${this.weights.where})`, this.opts.session);
    });
  }


}

/** numpy's (x · 255).round() as Real-ESRGAN writes its output (x already in [0, 1]). */
function toByte(x: number): number {
  const v = Math.fround(x * 255);
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
