/**
 * The images behind `GET /files/<name>`: kept in memory, oldest dropped first past a byte budget
 * or an age, so a long-running server does not grow without bound.
 */
export interface StoredFile {
  data: Buffer;
  type: string;
  at: number;
}

export const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private bytes = 0;

  constructor(readonly maxBytes = 512 << 20, readonly maxAgeMs = 60 * 60 * 1000) {}

  /** Stores a file; returns its name. */
  put(name: string, data: Buffer, type = "image/png"): string {
    if (!FILE_NAME.test(name)) throw new Error(`bad file name ${JSON.stringify(name)}`);
    this.delete(name);
    this.files.set(name, { data, type, at: Date.now() });
    this.bytes += data.length;
    this.evict();
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

  private evict(): void {
    const now = Date.now();
    for (const [name, f] of this.files) {
      // Map order is insertion order: the oldest first
      if (this.bytes <= this.maxBytes && now - f.at <= this.maxAgeMs) break;
      this.delete(name);
    }
  }
}
