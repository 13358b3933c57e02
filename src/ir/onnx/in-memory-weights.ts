/**
 * In-memory external-data files for a lowered model's initializers (onnxruntime's SessionOptions.externalData),
 * for weights made at lowering (q8-weights.ts). Once a model has such a file, onnxruntime looks every external
 * initializer up in that table and never on disk, so the model's other weights are read into memory too
 * (moveWeightsToMemory), after dropping those no node reads any more (the float originals of quantized ones).
 */
import onnxProto from "onnx-proto";
import { readBytes, type TensorEntry } from "../../safetensors/read.js";

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type NodeProto = onnxProto.onnx.INodeProto;
const PREFIX = "ssd1b-in-memory-";

/** The files. They roll over at 1 GiB (typed arrays and Buffers have size limits); chunks are 64-byte aligned. */
export class InMemoryWeights {
  private readonly files: { chunks: Uint8Array[]; size: number }[] = [];
  constructor(private readonly fileBytes = 1 << 30) {}

  /** Appends bytes; returns where they are (location, offset, length). */
  add(bytes: Uint8Array): { location: string; offset: number; length: number } {
    let file = this.files[this.files.length - 1];
    if (!file || (file.size > 0 && file.size + bytes.byteLength > this.fileBytes)) this.files.push(file = { chunks: [], size: 0 });
    const offset = file.size;
    file.chunks.push(bytes);
    const pad = (64 - (bytes.byteLength % 64)) % 64;
    if (pad) file.chunks.push(new Uint8Array(pad));
    file.size += bytes.byteLength + pad;
    return { location: `${PREFIX}${this.files.length - 1}.bin`, offset, length: bytes.byteLength };
  }

  get empty(): boolean { return this.files.length === 0; }

  /** The files, each as one array (the chunks are dropped). */
  take(): { path: string; data: Uint8Array }[] {
    return this.files.splice(0).map((f, i) => {
      const data = new Uint8Array(f.size);
      let at = 0;
      for (const c of f.chunks) { data.set(c, at); at += c.byteLength; }
      return { path: `${PREFIX}${i}.bin`, data };
    });
  }

  /** An initializer whose data is `bytes`, stored here. */
  initializer(name: string, dataType: number, dims: number[], bytes: Uint8Array): TensorProto {
    const { location, offset, length } = this.add(bytes);
    return { name, dataType, dims, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: externalData(location, offset, length) };
  }
}

function externalData(location: string, offset: number, length: number) {
  return [{ key: "location", value: location }, { key: "offset", value: String(offset) }, { key: "length", value: String(length) }];
}

/**
 * Drops the initializers no node reads (and the Casts of weights whose result no node reads), then moves the
 * remaining weights read from the user's files (`fileEntry`: the checkpoint tensor behind an initializer) into `memory`.
 */
export function moveWeightsToMemory(nodes: NodeProto[], initializers: TensorProto[], outputs: string[], fileEntry: Map<string, TensorEntry>, memory: InMemoryWeights): { nodes: NodeProto[]; initializers: TensorProto[] } {
  const inits = new Set(initializers.map((i) => i.name!));
  const readBy = (ns: NodeProto[]) => new Set([...ns.flatMap((n) => n.input ?? []), ...outputs]);
  // A weight's Cast feeds compute nodes only, so one pass finds the dead ones.
  const first = readBy(nodes);
  const kept = nodes.filter((n) => !(n.opType === "Cast" && inits.has(n.input![0]) && !first.has(n.output![0])));
  const read = readBy(kept);
  const moved = initializers.filter((i) => read.has(i.name!)).map((init) => {
    const entry = fileEntry.get(init.name!);
    if (!entry) return init;
    const at = memory.add(readBytes(entry));
    return { ...init, externalData: externalData(at.location, at.offset, at.length) };
  });
  return { nodes: kept, initializers: moved };
}
