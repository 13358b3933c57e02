import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { DTYPE_BYTES, type Dtype, bf16ToF32, f16ToF32, isDtype } from "./dtypes.js";

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

export class SafetensorsError extends Error {}

const MAX_HEADER = 100 * 1024 * 1024;

/** Parses a safetensors header; every entry is validated against the file size. */
export function readHeader(file: string): { tensors: Map<string, TensorEntry>; metadata: Record<string, string> } {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new SafetensorsError(`${file}: not a safetensors file (only ${size} bytes)`);
    const lenBuf = Buffer.alloc(8);
    readSync(fd, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER || 8 + headerLen > size) {
      throw new SafetensorsError(`${file}: corrupt or truncated safetensors header (header length ${headerLen}, file size ${size})`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    readSync(fd, headerBuf, 0, headerLen, 8);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(headerBuf.toString("utf8"));
    } catch {
      throw new SafetensorsError(`${file}: corrupt safetensors header (not JSON)`);
    }
    const dataStart = 8 + headerLen;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") { metadata = raw as Record<string, string>; continue; }
      const info = raw as { dtype: string; shape: number[]; data_offsets: [number, number] };
      if (!isDtype(info.dtype)) throw new SafetensorsError(`${file}: tensor "${name}" has unsupported dtype ${info.dtype}`);
      const [begin, end] = info.data_offsets;
      const count = info.shape.reduce((a, b) => a * b, 1);
      if (end - begin !== count * DTYPE_BYTES[info.dtype]) {
        throw new SafetensorsError(`${file}: tensor "${name}" has ${end - begin} bytes, shape [${info.shape}] ${info.dtype} needs ${count * DTYPE_BYTES[info.dtype]}`);
      }
      if (dataStart + end > size) {
        throw new SafetensorsError(`${file}: truncated: tensor "${name}" ends at byte ${dataStart + end} but the file has ${size}`);
      }
      tensors.set(name, { name, dtype: info.dtype, shape: info.shape, file, offset: dataStart + begin, byteLength: end - begin });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
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
