import { closeSync, openSync, writeSync } from "node:fs";
import { DTYPE_BYTES, type Dtype } from "./dtypes.js";

export interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: number[];
}

/**
 * Writes a safetensors file tensor by tensor: `produce` is asked for each tensor's bytes in order,
 * so multi-GiB checkpoints never sit in memory at once.
 */
export function writeSafetensors(
  file: string,
  specs: TensorSpec[],
  produce: (spec: TensorSpec) => ArrayBufferView,
  metadata: Record<string, string> = { format: "pt" },
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const s of specs) {
    const bytes = s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype];
    header[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const headerBytes = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(file, "w");
  try {
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const s of specs) {
      const view = produce(s);
      const expected = s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype];
      if (view.byteLength !== expected) throw new Error(`writeSafetensors: "${s.name}" produced ${view.byteLength} bytes, expected ${expected}`);
      const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
    }
  } finally {
    closeSync(fd);
  }
}

/** Convenience for small files: name -> {dtype, shape, data}. */
export function saveTensors(
  file: string,
  tensors: Record<string, { dtype: Dtype; shape: number[]; data: ArrayBufferView }>,
): void {
  const specs = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  writeSafetensors(file, specs, (s) => tensors[s.name].data);
}
