/**
 * The upscalers a server offers: the model-free "None", "Lanczos" and "Nearest" of AUTOMATIC1111 and
 * every RRDBNet .safetensors under `--upscaler-dir DIR` (sub-folders too), named by file name without
 * extension. As with --lora-dir, a name is only looked up in the listing, and a file must still lie
 * inside DIR once links are resolved. Files that are no RRDBNet are left out of the listing.
 * One model is kept loaded (the last used) and upscales run one at a time.
 */
import { libraryFolder, safetensorsFiles } from "./library-folder.js";
import { SerialQueue } from "../pipelines/shape-cache.js";
import { readHeader } from "../safetensors/read.js";
import { openEsrganTensors } from "../loaders/esrgan.js";
import { Upscaler, type UpscaleOptions } from "../pipelines/upscaler.js";
import type { RgbImage } from "../image/png.js";
import { rgbToTensor } from "../image/image.js";
import { DEFAULT_MAX_UPSCALED_PIXELS } from "../pipelines/upscaler.js";
import { checkImageSize } from "../image/limits.js";
import { resizePlanes, type ResizeFilter } from "../image/resize.js";

export class UpscalerLibraryError extends Error {}

export interface UpscalerEntry {
  name: string;
  /** Real path of the model file; undefined for the model-free ones. */
  path?: string;
  scale: number;
}

/** A1111's model-free upscalers ("None" leaves the image as it is; it lists them with scale 4). */
export const BUILTIN_UPSCALERS: readonly UpscalerEntry[] = [{ name: "None", scale: 4 }, { name: "Lanczos", scale: 4 }, { name: "Nearest", scale: 4 }];
const FILTERS: Record<string, ResizeFilter> = { Lanczos: "lanczos", Nearest: "nearest" };
const EXTENSION = /\.safetensors$/i;
const MAX_DEPTH = 4;

export class UpscalerLibrary {
  readonly dir?: string;
  private headers = new Map<string, { size: number; mtimeMs: number; scale?: number }>();
  private loaded?: { path: string; upscaler: Upscaler };
  /** One upscale at a time: one model session, and the CPU is shared with generation anyway. */
  private readonly serial = new SerialQueue();

  /** `dir` absent: only the model-free upscalers. */
  constructor(dir?: string, private readonly session: { device?: "cpu" | "webgpu" } = {}) {
    if (dir === undefined) return;
    this.dir = libraryFolder(dir, "--upscaler-dir", (m) => new UpscalerLibraryError(m));
  }

  /** The model-free upscalers, then the folder's models by name (a walk per call: folders are small). */
  async list(): Promise<UpscalerEntry[]> {
    const models: UpscalerEntry[] = [];
    for (const f of this.dir ? await safetensorsFiles(this.dir, MAX_DEPTH) : []) {
      let h = this.headers.get(f.path);
      if (!h || h.size !== f.size || h.mtimeMs !== f.mtimeMs) {
        let scale: number | undefined;
        try { scale = openEsrganTensors(readHeader(f.path).tensors, f.path).config.scale; } catch { /* not an RRDBNet: not listed */ }
        h = { size: f.size, mtimeMs: f.mtimeMs, scale };
        this.headers.set(f.path, h);
      }
      if (h.scale !== undefined) models.push({ name: f.fileName.replace(EXTENSION, ""), path: f.path, scale: h.scale });
    }
    models.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return [...BUILTIN_UPSCALERS, ...models];
  }

  /** The entry called `name`; UpscalerLibraryError naming the choices when there is none (or two). */
  async get(name: string): Promise<UpscalerEntry> {
    const all = await this.list();
    const found = all.filter((e) => e.name === name);
    if (found.length === 1) return found[0];
    if (found.length > 1) throw new UpscalerLibraryError(`the upscaler name ${JSON.stringify(name)} is ambiguous (${found.length} files in ${this.dir}; rename one)`);
    throw new UpscalerLibraryError(`unknown upscaler ${JSON.stringify(name)} (available: ${all.map((e) => e.name).join(", ")})`);
  }

  /** Upscales by `scale` with the named upscaler (A1111's extras: floor(size · scale)). */
  upscale(name: string, image: RgbImage, scale: number, opts: Pick<UpscaleOptions, "tile" | "tileOverlap" | "signal"> = {}): Promise<RgbImage> {
    return this.serial.run(async () => {
      const entry = await this.get(name);
      if (entry.name === "None") return image;
      if (!entry.path) return resizeImage(image, scale, FILTERS[entry.name]);
      return (await this.model(entry.path)).upscale(image, { ...opts, scale });
    });
  }

  release(): Promise<void> {
    return this.serial.run(async () => {
      await this.loaded?.upscaler.release();
      this.loaded = undefined;
    });
  }

  private async model(path: string): Promise<Upscaler> {
    if (this.loaded?.path === path) return this.loaded.upscaler;
    await this.loaded?.upscaler.release();
    this.loaded = undefined;
    const upscaler = await Upscaler.fromFile(path, { session: this.session });
    this.loaded = { path, upscaler };
    return upscaler;
  }
}

/** A1111's Lanczos / Nearest upscalers: PIL's resize to floor(size · scale). */
export function resizeImage(image: RgbImage, scale: number, filter: ResizeFilter): RgbImage {
  const w = Math.floor(image.width * scale), h = Math.floor(image.height * scale);
  checkImageSize("the upscaled image", w, h, { maxPixels: DEFAULT_MAX_UPSCALED_PIXELS });
  const planes = resizePlanes(rgbToTensor(image).data, 3, image.height, image.width, h, w, filter);
  const data = new Uint8Array(w * h * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < w * h; p++) data[p * 3 + c] = Math.min(255, Math.max(0, Math.round(planes[c * w * h + p] * 255)));
  return { width: w, height: h, data };
}
