/**
 * The one safetensors header parser: every rule of the reference (Rust) implementation, checked
 * before anything trusts the header. The tensors must tile the data buffer exactly: sorted by
 * offset, each begins where the previous one ended, the last ends at the end of the file, and each
 * holds exactly shape-product × dtype-size bytes. Nothing in a hostile header can crash the parser
 * (nesting is bounded before JSON.parse) or make it read header bytes as weights.
 */
import { DTYPE_BYTES, type Dtype, isDtype } from "./dtypes.js";
import { SafetensorsError } from "./error.js";
import { checkJsonShape } from "./json-shape.js";

/** As the reference implementation: a header above 100 MB is refused before it is read. */
export const MAX_HEADER_BYTES = 100_000_000;
/** More dimensions than any framework allows (numpy: 64). */
export const MAX_RANK = 64;
/** Tensors per file, and keys in __metadata__: real files have thousands; millions take seconds to parse. */
export const MAX_ENTRIES = 200_000;

export interface HeaderTensor {
  name: string;
  dtype: Dtype;
  shape: number[];
  /** Byte range in the data buffer (after the header). */
  begin: number;
  end: number;
}

export interface ParsedHeader {
  tensors: HeaderTensor[];
  metadata: Record<string, string>;
}

// ignoreBOM keeps a BOM in the text, where the "{" check refuses it (as the reference does).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
/** A name from the file, shortened for an error message. */
const label = (name: string) => JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name);
const show = (v: unknown) => { const s = JSON.stringify(v) ?? String(v); return s.length > 60 ? `${s.slice(0, 60)}…` : s; };

/**
 * Parses and validates the JSON header bytes of a file whose data buffer (what follows the
 * header) is `dataLength` bytes. `where` names the file in errors.
 */
export function parseHeader(json: Uint8Array, dataLength: number, where: string): ParsedHeader {
  const fail = (why: string): never => { throw new SafetensorsError(`${where}: invalid safetensors header: ${why}`); };
  let text: string;
  try {
    text = utf8.decode(json);
  } catch {
    return fail("not valid UTF-8");
  }
  if (!text.startsWith("{")) fail("does not start with \"{\"");
  const shapeProblem = checkJsonShape(text, { maxDepth: 3, maxArray: MAX_RANK, maxMembers: MAX_ENTRIES });
  if (shapeProblem) fail(shapeProblem);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    return fail(`not JSON (${(e as Error).message})`);
  }
  if (!isObject(root)) return fail("not a JSON object");

  let metadata: Record<string, string> = {};
  const tensors: HeaderTensor[] = [];
  for (const [name, raw] of Object.entries(root)) {
    if (name === "__metadata__") {
      if (!isObject(raw)) fail(`__metadata__ must be an object of strings, got ${show(raw)}`);
      for (const [k, v] of Object.entries(raw as object)) if (typeof v !== "string") fail(`__metadata__ value ${label(k)} is not a string: ${show(v)}`);
      metadata = raw as Record<string, string>;
      continue;
    }
    tensors.push(parseTensor(name, raw, fail));
  }

  // Sorted by offset (ties: empty tensors first), they must tile [0, dataLength) without gaps or overlaps.
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const t of sorted) {
    if (t.begin !== at) {
      fail(t.begin < at ? `tensor ${label(t.name)} [${t.begin}, ${t.end}] overlaps the tensor before it (which ends at ${at})`
        : `gap in the data: bytes ${at}..${t.begin} belong to no tensor (before ${label(t.name)})`);
    }
    at = t.end;
  }
  if (at > dataLength) {
    const last = sorted[sorted.length - 1];
    throw new SafetensorsError(`${where}: truncated: tensor ${label(last.name)} ends at data byte ${at} but the file holds ${dataLength} data bytes`);
  }
  if (at < dataLength) fail(`${dataLength - at} bytes after the last tensor belong to no tensor`);
  return { tensors, metadata };
}

function parseTensor(name: string, raw: unknown, fail: (why: string) => never): HeaderTensor {
  const where = `tensor ${label(name)}`;
  if (!isObject(raw)) fail(`${where} must be an object, got ${show(raw)}`);
  const info = raw as Record<string, unknown>;
  const keys = Object.keys(info).sort().join(",");
  if (keys !== "data_offsets,dtype,shape") fail(`${where} must have exactly dtype, shape and data_offsets (has ${keys || "nothing"})`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== "string" || !isDtype(dtype)) fail(`${where} has unknown dtype ${show(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`${where} shape must be a list of non-negative integers, got ${show(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(`${where} data_offsets must be [begin, end] non-negative integers, got ${show(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`${where} data_offsets [${begin}, ${end}] end before they begin`);
  // The product is checked against end-begin (a safe integer) as it grows, so it cannot overflow.
  const bytes = DTYPE_BYTES[dtype as Dtype];
  let size: number = bytes;
  for (const d of shape as number[]) {
    size *= d;
    if (size > end - begin) break;
  }
  if ((shape as number[]).includes(0)) size = 0;
  if (size !== end - begin) {
    const needs = (shape as number[]).reduce((p, d) => p * BigInt(d), BigInt(bytes)); // exact, for the message
    fail(`${where} has ${end - begin} bytes, but shape [${(shape as number[]).join(", ")}] ${dtype} needs ${needs}`);
  }
  return { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
}
