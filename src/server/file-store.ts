/**
 * The images behind `GET /files/<name>`: kept in memory, oldest dropped first past a byte budget
 * or an age, so a long-running server does not grow without bound. With an output folder
 * (`serve --output-dir`), each image is also written there and the newest ones are read back at
 * start, so the history outlives a restart; the folder itself is never pruned (as A1111's outputs).
 */
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface StoredFile {
  data: Buffer;
  type: string;
  /** When it entered the store (eviction by age counts from here). */
  at: number;
  /** When it was made, when that is earlier (a file read back from the output folder). */
  created?: number;
}

export const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export interface FileStoreOptions {
  /** Folder that every stored image is also written to, and read back from at start. */
  dir?: string;
  /** Told when writing to `dir` fails (the image stays served from memory). */
  log?: (line: string) => void;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private bytes = 0;
  readonly dir?: string;
  private readonly log: (line: string) => void;

  constructor(readonly maxBytes = 512 << 20, readonly maxAgeMs = 60 * 60 * 1000, opts: FileStoreOptions = {}) {
    this.dir = opts.dir;
    this.log = opts.log ?? (() => {});
    if (this.dir) { mkdirSync(this.dir, { recursive: true }); this.loadDir(this.dir); }
  }

  /** Stores a file; returns its name. */
  put(name: string, data: Buffer, type = "image/png"): string {
    if (!FILE_NAME.test(name)) throw new Error(`bad file name ${JSON.stringify(name)}`);
    this.add(name, { data, type, at: Date.now() });
    if (this.dir) {
      try { writeFileSync(join(this.dir, name), data); } catch (e) { this.log(`cannot write ${name} to ${this.dir}: ${(e as Error).message}`); }
    }
    return name;
  }

  get(name: string): StoredFile | undefined {
    this.evict();
    return this.files.get(name);
  }

  delete(name: string): void {
    const f = this.files.get(name);
    if (!f) return;
    this.bytes -= f.data.length;
    this.files.delete(name);
  }

  get size(): number { return this.files.size; }

  /** The stored files, newest first (for GET /v1/history). */
  list(): [string, StoredFile][] {
    this.evict();
    return [...this.files].reverse();
  }

  private add(name: string, file: StoredFile): void {
    this.delete(name);
    this.files.set(name, file);
    this.bytes += file.data.length;
    this.evict();
  }

  /** The folder's newest PNGs that fit the byte budget, oldest first (Map order is age order). */
  private loadDir(dir: string): void {
    const found: { name: string; mtime: number; size: number }[] = [];
    for (const name of readdirSync(dir)) {
      if (!FILE_NAME.test(name) || !name.endsWith(".png")) continue;
      try {
        const st = statSync(join(dir, name));
        if (st.isFile()) found.push({ name, mtime: st.mtimeMs, size: st.size });
      } catch { /* gone meanwhile */ }
    }
    found.sort((a, b) => b.mtime - a.mtime || (a.name < b.name ? 1 : -1));
    let budget = this.maxBytes;
    const keep = found.filter((f) => (budget -= f.size) >= 0).reverse();
    const now = Date.now();
    for (const f of keep) {
      try { this.add(f.name, { data: readFileSync(join(dir, f.name)), type: "image/png", at: now, created: f.mtime }); } catch { /* unreadable: skipped */ }
    }
  }

  private evict(): void {
    const now = Date.now();
    for (const [name, f] of this.files) {
      // Map order is insertion order: the oldest first
      if (this.bytes <= this.maxBytes && now - f.at <= this.maxAgeMs) break;
      this.delete(name);
    }
  }
}
