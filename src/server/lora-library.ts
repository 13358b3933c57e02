/**
 * The LoRA files of `--lora-dir DIR`, addressable by name as in AUTOMATIC1111: the file name without
 * `.safetensors` (sub-folders are searched too). A name is only ever looked up in the listing, never
 * joined onto a path, and the file it finds must still lie inside DIR once symbolic links are
 * resolved: a request cannot reach any other file.
 */
import { readdirSync, realpathSync, statSync } from "node:fs";
import { basename, isAbsolute, join, relative } from "node:path";
import { readHeader } from "../safetensors/read.js";

export class LoraLibraryError extends Error {}

export interface LoraEntry {
  /** The file name without extension. */
  name: string;
  /** The real path of the file. */
  path: string;
  /** The safetensors `__metadata__` (kohya's ss_* keys), JSON values parsed as A1111 does. */
  metadata: Record<string, unknown>;
}

const EXTENSION = /\.safetensors$/i;
/** Sub-folders deeper than this are not searched (and symbolic links to folders never are). */
const MAX_DEPTH = 8;

/** A1111 parses metadata values that look like JSON objects (ss_tag_frequency, ...). */
function parseMetadata(raw: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    out[k] = v;
    if (typeof v === "string" && v.startsWith("{")) {
      try { out[k] = JSON.parse(v); } catch { /* keep the text */ }
    }
  }
  return out;
}

export function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** Rejects names that could be read as paths: a LoRA name is a bare file name. */
export function checkLoraName(name: string): void {
  if (name === "" || name.length > 255) throw new LoraLibraryError(`a LoRA name must be 1 to 255 characters, got ${JSON.stringify(name)}`);
  if (/[/\\\0]/.test(name) || name.includes("..")) {
    throw new LoraLibraryError(`bad LoRA name ${JSON.stringify(name)}: a LoRA is named by its file name without folders or ".." (see GET /sdapi/v1/loras)`);
  }
}

export class LoraLibrary {
  /** The real path of the folder. */
  readonly dir: string;
  private byName = new Map<string, LoraEntry[]>();

  constructor(dir: string) {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      throw new LoraLibraryError(`--lora-dir ${dir}: no such folder`);
    }
    if (!statSync(real).isDirectory()) throw new LoraLibraryError(`--lora-dir ${dir}: not a folder`);
    this.dir = real;
    this.refresh();
  }

  /** Lists the folder again (POST /sdapi/v1/refresh-loras; also done once when a name is not found). */
  refresh(): void {
    const found = new Map<string, LoraEntry[]>();
    const walk = (folder: string, depth: number) => {
      let entries;
      try {
        entries = readdirSync(folder, { withFileTypes: true });
      } catch {
        return; // unreadable: skipped
      }
      for (const e of entries) {
        const path = join(folder, e.name);
        if (e.isDirectory()) {
          if (depth < MAX_DEPTH) walk(path, depth + 1);
          continue;
        }
        if (!EXTENSION.test(e.name) || !(e.isFile() || e.isSymbolicLink())) continue;
        let real: string;
        try {
          real = realpathSync(path);
          if (!statSync(real).isFile()) continue;
        } catch {
          continue; // a dangling link
        }
        if (!isInside(this.dir, real)) continue; // a link out of the folder is not served
        let metadata: Record<string, unknown> = {};
        try {
          metadata = parseMetadata(readHeader(real).metadata);
        } catch { /* not a readable safetensors file: listed, and its use fails with the reason */ }
        const name = basename(e.name).replace(EXTENSION, "");
        found.set(name, [...(found.get(name) ?? []), { name, path: real, metadata }]);
      }
    };
    walk(this.dir, 0);
    this.byName = found;
  }

  /** Every LoRA, by name. */
  list(): LoraEntry[] {
    return [...this.byName.values()].map((list) => list[0]).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  names(): string[] {
    return this.list().map((e) => e.name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * The real path of the LoRA called `name`, checked to lie inside the folder (looked up once more
   * after a fresh listing when unknown). LoraLibraryError for a bad, unknown or ambiguous name.
   */
  resolve(name: string): string {
    checkLoraName(name);
    if (!this.byName.has(name)) this.refresh();
    const list = this.byName.get(name);
    if (!list) {
      const names = this.names();
      throw new LoraLibraryError(`unknown LoRA ${JSON.stringify(name)} in ${this.dir} (${names.length ? `available: ${names.slice(0, 30).join(", ")}${names.length > 30 ? ", …" : ""}` : "the folder holds no .safetensors files"})`);
    }
    if (list.length > 1) {
      throw new LoraLibraryError(`the LoRA name ${JSON.stringify(name)} is ambiguous: ${list.map((e) => relative(this.dir, e.path)).join(", ")} (rename one)`);
    }
    let real: string;
    try {
      real = realpathSync(list[0].path);
    } catch {
      throw new LoraLibraryError(`the LoRA file of ${JSON.stringify(name)} is gone (${list[0].path})`);
    }
    if (!isInside(this.dir, real)) throw new LoraLibraryError(`the LoRA file of ${JSON.stringify(name)} is not inside ${this.dir}`);
    return real;
  }
}
