/**
 * The optional on-disk cache of text embeddings and VAE latents (`--cache-dir`): one small
 * safetensors file per caption or per (image, augmentation settings), named by a hash of everything
 * its content depends on, so later runs (and resumed ones) skip the encoders, and a changed image,
 * model or setting simply misses.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { TensorStore, saveTensors } from "../../safetensors/index.js";

export class DiskCache {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  static key(...parts: unknown[]): string {
    return createHash("sha256").update(JSON.stringify(parts)).digest("hex").slice(0, 32);
  }

  get(kind: string, key: string): Record<string, Float32Array> | undefined {
    const file = join(this.dir, `${kind}-${key}.safetensors`);
    if (!existsSync(file)) return undefined;
    const store = TensorStore.open(file);
    return Object.fromEntries([...store.tensors.keys()].map((k) => [k, store.float32(k)]));
  }

  put(kind: string, key: string, tensors: Record<string, Float32Array>): void {
    const file = join(this.dir, `${kind}-${key}.safetensors`);
    const tmp = `${file}.${process.pid}.tmp`;
    saveTensors(tmp, Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, { dtype: "F32" as const, shape: [v.length], data: v }])));
    renameSync(tmp, file);
  }
}
