import onnxProto from "onnx-proto";
import { relative, dirname, sep } from "node:path";
import { realpathSync } from "node:fs";
import type { Graph } from "../graph.js";
import type { LoweringContext, OnnxAttr } from "../op.js";
import type { DType, Tensor } from "../tensor.js";
import { toHalfPrecision, type Float32IslandOp } from "./half-precision.js";
import { Q8_BLOCK, convRows, quantizeQ8 } from "./q8-weights.js";
import { InMemoryWeights, moveWeightsToMemory } from "./in-memory-weights.js";
import { fuseMatMulNBitsBias } from "./fuse-nbits-bias.js";
import { readFloat32, type TensorEntry } from "../../safetensors/read.js";

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;
const ELEM: Record<DType, number> = { float32: T.FLOAT, float16: T.FLOAT16, int64: T.INT64, bool: T.BOOL };
const STORED: Record<string, number> = { F32: T.FLOAT, F16: T.FLOAT16, BF16: T.BFLOAT16 };

export const OPSET = 21;

export interface LoweredModel {
  bytes: Uint8Array;
  /** The folder that external-data locations are relative to (resolved, no symlinks). */
  externalDataFolder: string | undefined;
  /** Initializers made at lowering (q8 weights), as onnxruntime's in-memory external-data files. */
  inMemoryFiles: { path: string; data: Uint8Array }[];
}

function attribute(name: string, v: OnnxAttr): onnxProto.onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: A.INT, i: v };
  if (typeof v === "string") return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  if ("float" in v) return { name, type: A.FLOAT, f: v.float };
  return { name, type: A.FLOATS, floats: v.floats };
}

function valueInfo(name: string, t: Tensor): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: ELEM[t.dtype], shape: { dim: t.shape.map((d) => ({ dimValue: d })) } } },
  };
}

/** Common folder of all weight files, after resolving symlinks (the HF cache links into blobs/). */
function weightFolder(files: string[]): string | undefined {
  if (files.length === 0) return undefined;
  const dirs = files.map((f) => dirname(f));
  let common = dirs[0].split(sep);
  for (const d of dirs.slice(1)) {
    const parts = d.split(sep);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  return common.join(sep) || sep;
}

/**
 * Lowers a graph to an ONNX ModelProto. Weights become initializers whose data stays in the
 * user's safetensors files (external data: location, offset, length); fp16/bf16 weights get a Cast
 * to float32, which onnxruntime folds at session creation. `precision` "float16" computes inside the
 * graph in half precision (inputs and outputs stay float32; see half-precision.ts).
 */
export interface LoweringOptions {
  device?: "cpu" | "webgpu";
  /** Arithmetic inside the graph (inputs and outputs stay float32). */
  precision?: "float32" | "float16";
  /** With precision "float16": op types computed in float32 between Casts (see half-precision.ts). */
  keepFloat32?: readonly Float32IslandOp[];
  /** See LoweringContext.weightsOnTheLeft (for training graphs). */
  weightsOnTheLeft?: boolean;
  /** Attention without com.microsoft.MultiHeadAttention (see ops/attention.ts). */
  unfusedAttention?: boolean;
  /** Circular conv padding (see LoweringContext.circularConvPads). */
  circularConvPads?: boolean;
  /** "q8": Linear layers' weights as 8-bit com.microsoft.MatMulNBits (see LoweringContext.q8Weight). Default "float". */
  linearWeights?: "float" | "q8";
  /** "q8": 3x3 and 1x1 convs as im2col + MatMulNBits with 8-bit weights (see ops/conv.ts). Default "float". */
  convWeights?: "float" | "q8";
}

export function lowerToOnnx(graph: Graph, name = "ssd1b", opts: LoweringOptions = {}): LoweredModel {
  const { device = "cpu", precision = "float32" } = opts;
  const names = new Map<Tensor, string>();
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  let counter = 0;
  const int64Cache = new Map<string, string>();
  const memory = new InMemoryWeights();
  /** The checkpoint tensor behind each file-backed initializer (moveWeightsToMemory reads them). */
  const fileEntry = new Map<string, TensorEntry>();
  const q8Cache = new Map<Tensor, { data: string; scales: string }>();

  const ctx: LoweringContext = {
    device,
    precision,
    unfusedAttention: opts.unfusedAttention ?? false,
    circularConvPads: opts.circularConvPads ?? false,
    weightsOnTheLeft: opts.weightsOnTheLeft ?? false,
    isWeight: (t) => graph.leaves.get(t)?.kind === "weight",
    q8Weight(t, layout) {
      const linear = layout === "linear";
      const on = linear ? opts.linearWeights === "q8" : opts.convWeights === "q8";
      if (!on || t.rank !== (linear ? 2 : 4)) return undefined;
      const n = t.shape[0], k = t.numel / n;
      if (k % Q8_BLOCK !== 0) return undefined;
      const leaf = graph.leaves.get(t);
      if (!leaf || leaf.kind === "input" || (leaf.kind === "constant" && !(leaf.data instanceof Float32Array))) return undefined;
      let q = q8Cache.get(t);
      if (!q) {
        const values = leaf.kind === "weight" ? readFloat32(leaf.entry) : (leaf.data as Float32Array);
        const { data, scales } = quantizeQ8(linear ? values : convRows(values, t.shape), n, k);
        const base = `q8_${t.id}`;
        q = { data: `${base}_data`, scales: `${base}_scales` };
        initializers.push(memory.initializer(q.data, T.UINT8, [n, k / Q8_BLOCK, Q8_BLOCK], data));
        initializers.push(memory.initializer(`${q.scales}::stored`, T.FLOAT16, [n * (k / Q8_BLOCK)], new Uint8Array(scales.buffer)));
        // float32 here; half-precision.ts turns the Cast into one to float16 (MatMulNBits' scales share A's type)
        ctx.emit("Cast", [`${q.scales}::stored`], [q.scales], { to: T.FLOAT });
        q8Cache.set(t, q);
      }
      return q;
    },
    emit(opType, inputs, outputs, attrs = {}, domain) {
      nodes.push({
        opType, input: inputs, output: outputs, domain: domain ?? "", name: `n${nodes.length}_${opType}`,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      });
    },
    fresh(hint) { return `${hint}_${counter++}`; },
    int64s(values) {
      const key = values.join(",");
      let n = int64Cache.get(key);
      if (!n) {
        n = `i64_${int64Cache.size}`;
        initializers.push({ name: n, dataType: T.INT64, dims: [values.length], int64Data: values });
        int64Cache.set(key, n);
      }
      return n;
    },
  };

  const files = graph.weights().map((w) => realpathSync(w.entry.file));
  const folder = weightFolder(files);
  const realOf = new Map<string, string>();
  const usedNames = new Set<string>();

  // Leaves only dead nodes read (a LoRA merge a pass undid) are left out: onnxruntime would warn of each.
  const liveNodes = graph.liveNodes();
  const read = new Set([...liveNodes.flatMap((n) => n.inputs), ...graph.outputs.map((o) => o.tensor)]);
  for (const [t, leaf] of graph.leaves) {
    if (leaf.kind === "input") { names.set(t, leaf.name); continue; }
    if (!read.has(t)) continue;
    if (leaf.kind === "constant") {
      const n = `const_${t.id}`;
      names.set(t, n);
      if (leaf.data instanceof Float32Array) initializers.push({ name: n, dataType: T.FLOAT, dims: [...t.shape], floatData: Array.from(leaf.data) });
      else initializers.push({ name: n, dataType: T.INT64, dims: [...t.shape], int64Data: Array.from(leaf.data, Number) });
      continue;
    }
    const { entry, key } = leaf;
    const stored = STORED[entry.dtype];
    if (stored === undefined) throw new Error(`${entry.file}: weight "${key}" has dtype ${entry.dtype}; float weights expected`);
    let real = realOf.get(entry.file);
    if (!real) { real = realpathSync(entry.file); realOf.set(entry.file, real); }
    // Two leaves may carry one key (the same LoRA file given twice): keep initializer names unique.
    const name = usedNames.has(key) ? `${key}#${t.id}` : key;
    usedNames.add(name);
    const raw = stored === T.FLOAT ? name : `${name}::stored`;
    fileEntry.set(raw, entry);
    initializers.push({
      name: raw, dataType: stored, dims: entry.shape, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: relative(folder!, real) },
        { key: "offset", value: String(entry.offset) },
        { key: "length", value: String(entry.byteLength) },
      ],
    });
    if (stored !== T.FLOAT) ctx.emit("Cast", [raw], [name], { to: T.FLOAT });
    names.set(t, name);
  }

  const nameOf = (t: Tensor): string => {
    const n = names.get(t);
    if (n === undefined) throw new Error(`lowering: ${t} used before it is defined`);
    return n;
  };
  const outputNames = new Map(graph.outputs.map((o) => [o.tensor, o.name] as const));
  for (const node of liveNodes) {
    const outs = node.outputs.map((o) => {
      const n = outputNames.get(o) ?? `t${o.id}`;
      names.set(o, n);
      return n;
    });
    node.op.lower(ctx, node.inputs.map(nameOf), outs, node.attrs, node);
  }
  // An output that is also another output or a leaf needs its own name: route it through Identity.
  const outputs = graph.outputs.map(({ name: n, tensor }) => {
    if (nameOf(tensor) !== n) ctx.emit("Identity", [nameOf(tensor)], [n]);
    return valueInfo(n, tensor);
  });

  const outputNamesList = outputs.map((o) => o.name!);
  const { nodes: kept, initializers: inits } = memory.empty ? { nodes, initializers }
    : moveWeightsToMemory(fuseMatMulNBitsBias(nodes, initializers, outputNamesList), initializers, outputNamesList, fileEntry, memory);
  const model = onnx.ModelProto.create({
    irVersion: 10,
    producerName: name,
    opsetImport: [{ domain: "", version: OPSET }, { domain: "com.microsoft", version: 1 }],
    graph: {
      name, node: kept, initializer: inits,
      input: graph.inputs.map((t) => valueInfo(nameOf(t), t)),
      output: outputs,
    },
  });
  if (precision === "float16") toHalfPrecision(model, { keepFloat32: opts.keepFloat32 });
  const inMemoryFiles = memory.take();
  return { bytes: onnx.ModelProto.encode(model).finish(), externalDataFolder: folder, inMemoryFiles };
}
