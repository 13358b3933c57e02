/**
 * The LoRA files of `--lora-dir DIR`, addressable by name as in AUTOMATIC1111: the file name without
 * `.safetensors` (sub-folders are searched too). A name is only ever looked up in the listing, never
 * joined onto a path, and the file it finds must still lie inside DIR once symbolic links are
 * resolved: a request cannot reach any other file.
 */
import { isInside, libraryFolder } from "./library-folder.js";
import { readdir, realpath, stat } from "node:fs/promises";
import { basename, join, relative } from "node:path";
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

/** Rejects names that could be read as paths: a LoRA name is a bare file name. */
export function checkLoraName(name: string): void {
  if (name === "" || name.length > 255) throw new LoraLibraryError(`a LoRA name must be 1 to 255 characters, got ${JSON.stringify(name)}`);
  if (/[/\\\0]/.test(name) || name.includes("..")) {
    throw new LoraLibraryError(`bad LoRA name ${JSON.stringify(name)}: a LoRA is named by its file name without folders or ".." (see GET /sdapi/v1/loras)`);
  }
}

/** Runs `fn` so that each call gets a run that starts after the call, while runs never overlap: callers that arrive during a run share the next one. */
class Coalesced {
  private running?: Promise<void>;
  private next?: Promise<void>;

  constructor(private readonly fn: () => Promise<void>) {}

  run(): Promise<void> {
    if (!this.running) {
      this.running = this.fn().finally(() => { this.running = undefined; });
      return this.running;
    }
    this.next ??= this.running.catch(() => {}).then(() => { this.next = undefined; return this.run(); });
    return this.next;
  }
}

interface Cached { size: number; mtimeMs: number; metadata: Record<string, unknown> }

/**
 * The listing is made by an asynchronous walk of the folder (fs.promises: the event loop goes on),
 * at start, on refresh() (POST /sdapi/v1/refresh-loras) and when a name is not found but a folder
 * changed. An unknown name costs one stat per folder (rounds shared between concurrent requests),
 * not a walk: a new file changes its folder's mtime. Headers are read once per file version.
 */
export class LoraLibrary {
  /** The real path of the folder. */
  readonly dir: string;
  private byName = new Map<string, LoraEntry[]>();
  /** Each folder walked with its mtime at that walk. */
  private folders = new Map<string, number>();
  private headers = new Map<string, Cached>();
  private readonly walks = new Coalesced(() => this.walk());
  private readonly checks = new Coalesced(() => this.checkFolders());
  private readonly ready: Promise<void>;
  /** Walks and folder checks done so far (tests count them). */
  walkCount = 0;
  checkCount = 0;

  constructor(dir: string) {
    this.dir = libraryFolder(dir, "--lora-dir", (m) => new LoraLibraryError(m));
    this.ready = this.walks.run();
  }

  /** Lists the folder again (POST /sdapi/v1/refresh-loras). */
  async refresh(): Promise<void> {
    await this.ready;
    await this.walks.run();
  }

  private async walk(): Promise<void> {
    this.walkCount++;
    const found = new Map<string, LoraEntry[]>();
    const folders = new Map<string, number>();
    const headers = new Map<string, Cached>();
    const visit = async (folder: string, depth: number): Promise<void> => {
      let entries;
      try {
        folders.set(folder, (await stat(folder)).mtimeMs);
        entries = await readdir(folder, { withFileTypes: true });
      } catch {
        return; // unreadable: skipped
      }
      for (const e of entries) {
        const path = join(folder, e.name);
        if (e.isDirectory()) {
          if (depth < MAX_DEPTH) await visit(path, depth + 1);
          continue;
        }
        if (!EXTENSION.test(e.name) || !(e.isFile() || e.isSymbolicLink())) continue;
        let real: string, s;
        try {
          real = await realpath(path);
          s = await stat(real);
          if (!s.isFile()) continue;
        } catch {
          continue; // a dangling link
        }
        if (!isInside(this.dir, real)) continue; // a link out of the folder is not served
        let cached = this.headers.get(real);
        if (!cached || cached.size !== s.size || cached.mtimeMs !== s.mtimeMs) {
          let metadata: Record<string, unknown> = {};
          try {
            metadata = parseMetadata(readHeader(real).metadata);
          } catch { /* not a readable safetensors file: listed, and its use fails with the reason */ }
          cached = { size: s.size, mtimeMs: s.mtimeMs, metadata };
        }
        headers.set(real, cached);
        const name = basename(e.name).replace(EXTENSION, "");
        found.set(name, [...(found.get(name) ?? []), { name, path: real, metadata: cached.metadata }]);
      }
    };
    await visit(this.dir, 0);
    this.byName = found;
    this.folders = folders;
    this.headers = headers;
  }

  /** A walk when some folder's mtime moved since the last one (a file added, removed or renamed). */
  private async checkFolders(): Promise<void> {
    this.checkCount++;
    const known = [...this.folders];
    const now = await Promise.all(known.map(([f]) => stat(f).then((s) => s.mtimeMs, () => -1)));
    if (now.some((m, i) => m !== known[i][1])) await this.walks.run();
  }

  /** Whether `name` is listed, after a folder check when it is not (names are checked first). */
  async has(name: string): Promise<boolean> {
    checkLoraName(name);
    await this.ready;
    if (!this.byName.has(name)) await this.checks.run();
    return this.byName.has(name);
  }

  /** Every LoRA, by name. */
  async list(): Promise<LoraEntry[]> {
    await this.ready;
    return [...this.byName.values()].map((list) => list[0]).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async names(): Promise<string[]> {
    return (await this.list()).map((e) => e.name);
  }

  /**
   * The real path of the LoRA called `name`, checked to lie inside the folder. LoraLibraryError for
   * a bad, unknown or ambiguous name.
   */
  async resolve(name: string): Promise<string> {
    if (!(await this.has(name))) {
      const names = await this.names();
      throw new LoraLibraryError(`unknown LoRA ${JSON.stringify(name)} in ${this.dir} (${names.length ? `available: ${names.slice(0, 30).join(", ")}${names.length > 30 ? ", …" : ""}` : "the folder holds no .safetensors files"})`);
    }
    const list = this.byName.get(name)!;
    if (list.length > 1) {
      throw new LoraLibraryError(`the LoRA name ${JSON.stringify(name)} is ambiguous: ${list.map((e) => relative(this.dir, e.path)).join(", ")} (rename one)`);
    }
    let real: string;
    try {
      real = await realpath(list[0].path);
    } catch {
      throw new LoraLibraryError(`the LoRA file of ${JSON.stringify(name)} is gone (${list[0].path})`);
    }
    if (!isInside(this.dir, real)) throw new LoraLibraryError(`the LoRA file of ${JSON.stringify(name)} is not inside ${this.dir}`);
    return real;
  }
}
