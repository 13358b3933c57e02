/**
 * ComfyUI's input folder: images uploaded with POST /upload/image that a LoadImage node names. Kept
 * in memory within a byte budget and an age (as the server's output files), checked to be a PNG or
 * JPEG within the pixel limit when uploaded.
 */
import { FileStore, FILE_NAME } from "../file-store.js";
import { decodeImage } from "../../image/image.js";
import { encodePng, encodePngRgba } from "../../image/png.js";
import { readPngMeta } from "../png-meta.js";
import { cropToEights } from "../../image/raster.js";
import { decodeImageRgba, type RgbaImage } from "../../image/rgba.js";
import { invalid } from "../errors.js";
import type { Limits } from "../validation.js";

/** Upload names keep their letters, digits, dot, dash and underscore; anything else becomes "_". */
function safeName(filename: string | undefined): string {
  const base = (filename ?? "").replace(/^.*[\\/]/, "").replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "");
  const name = base.slice(-100) || "image.png";
  return FILE_NAME.test(name) ? name : "image.png";
}

export class ComfyInputs {
  constructor(private readonly store = new FileStore(256 << 20, 60 * 60 * 1000)) {}

  /** Stores an upload; returns the name LoadImage takes (a free variant of it unless `overwrite`). */
  upload(bytes: Buffer, filename: string | undefined, overwrite: boolean, limits: Limits): string {
    try {
      decodeImage(bytes, "image", { maxPixels: limits.maxSide * limits.maxSide });
    } catch (e) {
      throw invalid((e as Error).message, "invalid_image", "image");
    }
    let name = safeName(filename);
    if (!overwrite) {
      const dot = name.lastIndexOf(".");
      const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
      for (let i = 1; this.store.get(name); i++) name = `${stem}_${i}${ext}`;
    }
    this.store.put(name, bytes, bytes[0] === 0xff ? "image/jpeg" : "image/png");
    return name;
  }

  /**
   * ComfyUI's /upload/mask: the original (RGB kept, its PNG text too) with the uploaded mask's alpha as
   * its alpha, stored as an upload (LoadImage's MASK is then 1 - that alpha). The two must be one size.
   */
  uploadMask(mask: Buffer, original: Buffer, filename: string | undefined, overwrite: boolean, limits: Limits): string {
    const maxPixels = limits.maxSide * limits.maxSide;
    let m: RgbaImage, o: RgbaImage;
    try {
      m = decodeImageRgba(mask, "the mask", { maxPixels });
      o = decodeImageRgba(original, "the original image", { maxPixels });
    } catch (e) {
      throw invalid((e as Error).message, "invalid_image", "image");
    }
    if (m.width !== o.width || m.height !== o.height) throw invalid(`the mask is ${m.width}x${m.height} but the original image is ${o.width}x${o.height}; they must be the same size`, "invalid_image", "image");
    const data = Uint8Array.from(o.data);
    for (let p = 3; p < data.length; p += 4) data[p] = m.data[p];
    const text = readPngMeta(original)?.text ?? {};
    return this.upload(encodePngRgba({ width: o.width, height: o.height, data }, text), filename, overwrite, limits);
  }

  /** The uploads' names, as LoadImage's image list (sorted, as ComfyUI lists its input folder). */
  names(): string[] {
    return this.store.list().map(([name]) => name).sort();
  }

  file(name: string): { data: Buffer; type: string } | undefined {
    return FILE_NAME.test(name) ? this.store.get(name) : undefined;
  }

  /** The upload with its alpha (LoadImage's MASK is 1 - alpha), uncropped, or undefined when none has that name. */
  rgba(name: string): RgbaImage | undefined {
    const f = this.file(name);
    return f && decodeImageRgba(f.data, name);
  }

  /**
   * The image as VAEEncode sees it, as base64 PNG with its size: cropped to whole multiples of 8 about its centre
   * (ComfyUI's vae_encode_crop_pixels), or undefined when no upload has that name.
   */
  forVaeEncode(name: string): { png: string; width: number; height: number } | undefined {
    const f = this.file(name);
    if (!f) return undefined;
    const img = decodeImage(f.data, name);
    if (img.width < 8 || img.height < 8) throw invalid(`the image ${name} is ${img.width}x${img.height}, smaller than 8x8`, "invalid_image", "image");
    const fitted = cropToEights(img);
    return { png: encodePng(fitted).toString("base64"), width: fitted.width, height: fitted.height };
  }
}
