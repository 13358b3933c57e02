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

/**
 * The files: one a tensor, each its own array, so nothing is copied into larger files. With 1 GiB files that
 * copy was a fifth of a q8 SSD-1B UNet's lowering, and onnxruntime made the session from 2 files slower than it
 * does from these 1371 (5.6 s against 4.0 s on the CPU).
 */
export class InMemoryWeights {
  private files: Uint8Array[] = [];

  /** Adds a file holding `bytes`; returns where they are (location, offset, length). */
  add(bytes: Uint8Array): { location: string; offset: number; length: number } {
    this.files.push(bytes);
    return { location: `${PREFIX}${this.files.length - 1}.bin`, offset: 0, length: bytes.byteLength };
  }

  get empty(): boolean { return this.files.length === 0; }

  /** The files (and forgets them). */
  take(): { path: string; data: Uint8Array }[] {
    const files = this.files;
    this.files = [];
    return files.map((data, i) => ({ path: `${PREFIX}${i}.bin`, data }));
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
