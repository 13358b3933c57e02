/**
 * An image folder with captions, found and checked before any model is loaded: captions come from
 * `metadata.jsonl` (Hugging Face imagefolder: one JSON object per line with `file_name` and the caption
 * column, default `text`) or from a `.txt` file beside each image; a fixed prompt (DreamBooth's instance
 * prompt) needs neither. Every problem is reported up front, naming the files.
 */
import { existsSync, openSync, readSync, fstatSync, closeSync, readFileSync, readdirSync, statSync } from "node:fs";
import { extname, join, relative } from "node:path";

export class DatasetError extends Error {}

export interface DatasetItem {
  /** Absolute path of the image. */
  file: string;
  caption: string;
}

const IMAGE_EXTS = new Set([".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"]);

export interface ScanOptions {
  /** Use this caption for every image (no caption files needed). */
  fixedCaption?: string;
  /** The metadata.jsonl column holding the caption (default "text"). */
  captionColumn?: string;
}

/** Image files under `dir` (recursively, sorted, as imagefolder does). */
function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith(".")) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (IMAGE_EXTS.has(extname(name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const few = (list: string[]) => list.slice(0, 5).join(", ") + (list.length > 5 ? `, … (${list.length} in all)` : "");

/** Only PNG is decoded; say what else an image is, from its first bytes, before training starts. */
function checkReadable(file: string): string | undefined {
  let head: Buffer;
  const tail = Buffer.alloc(2);
  try {
    const fd = openSync(file, "r");
    head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, 16, 0);
    const size = fstatSync(fd).size;
    if (size >= 2) readSync(fd, tail, 0, 2, size - 2);
    closeSync(fd);
    head = head.subarray(0, n);
  } catch (e) {
    return `${file}: cannot read (${(e as Error).message})`;
  }
  if (head.length >= 8 && head.readUInt32BE(0) === 0x89504e47) return undefined;
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) {
    // A JPEG ends with the end-of-image marker: a cheap check for truncated downloads.
    return tail[0] === 0xff && tail[1] === 0xd9 ? undefined : `${file}: truncated JPEG (no end-of-image marker)`;
  }
  if (head.toString("latin1", 0, 4) === "RIFF") return `${file}: WebP is not supported; convert the images to PNG or JPEG`;
  return `${file}: not a PNG or JPEG image`;
}

export function scanImageFolder(dir: string, opts: ScanOptions = {}): DatasetItem[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new DatasetError(`dataset folder not found: ${dir}`);
  const images = listImages(dir);
  if (images.length === 0) throw new DatasetError(`${dir}: empty dataset, no images found (looked for ${[...IMAGE_EXTS].join(", ")})`);
  const unreadable = images.map(checkReadable).filter((m): m is string => m !== undefined);
  if (unreadable.length) throw new DatasetError(`${dir}: ${unreadable.length} image(s) cannot be used:\n  ${unreadable.slice(0, 10).join("\n  ")}`);

  if (opts.fixedCaption !== undefined) return images.map((file) => ({ file, caption: opts.fixedCaption! }));
  const metadata = join(dir, "metadata.jsonl");
  if (existsSync(metadata)) return fromMetadata(dir, metadata, images, opts.captionColumn ?? "text");
  const missing: string[] = [];
  const items = images.map((file) => {
    const txt = file.slice(0, -extname(file).length) + ".txt";
    if (!existsSync(txt)) { missing.push(relative(dir, file)); return { file, caption: "" }; }
    return { file, caption: readFileSync(txt, "utf8").trim() };
  });
  if (missing.length) {
    throw new DatasetError(`${dir}: missing captions for ${missing.length} of ${images.length} image(s): ${few(missing)}; put a .txt file beside each image or a metadata.jsonl with "file_name" and "text"`);
  }
  return items;
}

function fromMetadata(dir: string, file: string, images: string[], column: string): DatasetItem[] {
  const captions = new Map<string, string>();
  readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new DatasetError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (typeof row.file_name !== "string") throw new DatasetError(`${file}:${i + 1}: no "file_name"`);
    if (typeof row[column] !== "string") throw new DatasetError(`${file}:${i + 1}: no caption column "${column}" (columns: ${Object.keys(row).join(", ")})`);
    captions.set(join(dir, row.file_name), (row[column] as string).trim());
  });
  const missing = images.filter((f) => !captions.has(f)).map((f) => relative(dir, f));
  if (missing.length) throw new DatasetError(`${file}: missing captions for ${missing.length} of ${images.length} image(s): ${few(missing)}`);
  const stray = [...captions.keys()].filter((f) => !images.includes(f)).map((f) => relative(dir, f));
  if (stray.length) throw new DatasetError(`${file}: lists ${stray.length} image(s) that are not in the folder: ${few(stray)}`);
  return images.map((f) => ({ file: f, caption: captions.get(f)! }));
}
