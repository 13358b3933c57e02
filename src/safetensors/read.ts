import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { DTYPE_BYTES, type Dtype, bf16ToF32, f16ToF32 } from "./dtypes.js";
import { SafetensorsError } from "./error.js";
import { MAX_HEADER_BYTES, parseHeader } from "./header.js";

export { SafetensorsError } from "./error.js";

/** Where one tensor lives: enough to read it, or to point an ONNX external initializer at it. */
export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  file: string;
  /** Absolute byte offset of the data in `file`. */
  offset: number;
  byteLength: number;
}

/** Reads and validates a safetensors header (see header.ts for the rules); entries carry absolute file offsets. */
export function readHeader(file: string): { tensors: Map<string, TensorEntry>; metadata: Record<string, string> } {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new SafetensorsError(`${file}: not a safetensors file (only ${size} bytes)`);
    const lenBuf = Buffer.alloc(8);
    readFully(fd, lenBuf, 0, file);
    const len = lenBuf.readBigUInt64LE(0);
    // Checked as a bigint, before any allocation: the length field is attacker-controlled.
    if (len < 2n || len > BigInt(MAX_HEADER_BYTES) || 8n + len > BigInt(size)) {
      throw new SafetensorsError(`${file}: corrupt or truncated safetensors header (header length ${len}, limit ${MAX_HEADER_BYTES}, file size ${size})`);
    }
    const headerLen = Number(len);
    const headerBuf = Buffer.alloc(headerLen);
    readFully(fd, headerBuf, 8, file);
    const dataStart = 8 + headerLen;
    const { tensors, metadata } = parseHeader(headerBuf, size - dataStart, file);
    const entries = new Map<string, TensorEntry>();
    for (const t of tensors) {
      entries.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, file, offset: dataStart + t.begin, byteLength: t.end - t.begin });
    }
    return { tensors: entries, metadata };
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, buf: Uint8Array, position: number, file: string): void {
  for (let done = 0; done < buf.length;) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n <= 0) throw new SafetensorsError(`${file}: truncated while reading the header`);
    done += n;
  }
}

export function readBytes(entry: TensorEntry): Uint8Array {
  const out = new Uint8Array(entry.byteLength);
  const fd = openSync(entry.file, "r");
  try {
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, Math.min(out.length - done, 1 << 30), entry.offset + done);
      if (n <= 0) throw new SafetensorsError(`${entry.file}: truncated while reading tensor "${entry.name}"`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Reads a floating-point tensor as float32, whatever its stored float dtype. */
export function readFloat32(entry: TensorEntry): Float32Array {
  const bytes = readBytes(entry);
  const n = entry.byteLength / DTYPE_BYTES[entry.dtype];
  switch (entry.dtype) {
    case "F32": return new Float32Array(bytes.buffer, 0, n);
    case "F16": return f16ToF32(new Uint16Array(bytes.buffer, 0, n));
    case "BF16": return bf16ToF32(new Uint16Array(bytes.buffer, 0, n));
    case "F64": return Float32Array.from(new Float64Array(bytes.buffer, 0, n));
    default: throw new SafetensorsError(`${entry.file}: tensor "${entry.name}" is ${entry.dtype}, expected a float tensor`);
  }
}

export function readInt64(entry: TensorEntry): BigInt64Array {
  if (entry.dtype !== "I64") throw new SafetensorsError(`${entry.file}: tensor "${entry.name}" is ${entry.dtype}, expected I64`);
  const bytes = readBytes(entry);
  return new BigInt64Array(bytes.buffer, 0, entry.byteLength / 8);
}

/** A set of tensors from one or more safetensors files (shards), looked up by name. */
export class TensorStore {
  constructor(readonly tensors: Map<string, TensorEntry>, readonly description: string) {}

  static open(file: string): TensorStore {
    return new TensorStore(readHeader(file).tensors, file);
  }

  static merge(files: string[], description: string): TensorStore {
    const all = new Map<string, TensorEntry>();
    for (const f of files) for (const [k, v] of readHeader(f).tensors) all.set(k, v);
    return new TensorStore(all, description);
  }

  has(name: string): boolean { return this.tensors.has(name); }

  get(name: string): TensorEntry {
    const e = this.tensors.get(name);
    if (!e) throw new SafetensorsError(`${this.description}: missing tensor "${name}"`);
    return e;
  }

  float32(name: string): Float32Array { return readFloat32(this.get(name)); }
}
