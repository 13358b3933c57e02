/**
 * An independent validity check of a safetensors header for the fuzz tests, written apart from
 * src/safetensors/header.ts (BigInt sizes; tiling as "no overlap, all inside, sizes add up").
 * Returns the tensors' byte ranges by name, or undefined when the header is invalid.
 */
const SIZES: Record<string, bigint> = { F64: 8n, F32: 4n, F16: 2n, BF16: 2n, I64: 8n, I32: 4n, I16: 2n, I8: 1n, U8: 1n, BOOL: 1n };
const RANK = 64;

const plain = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const nat = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;

export function oracle(bytes: Uint8Array, dataLength: number): Map<string, [number, number]> | undefined {
  let root: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    if (text[0] !== "{") return undefined; // the reference refuses anything before the opening brace
    root = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!plain(root)) return undefined;
  const ranges = new Map<string, [number, number]>();
  for (const name of Object.keys(root)) {
    const v = root[name];
    if (name === "__metadata__") {
      if (!plain(v) || Object.values(v).some((x) => typeof x !== "string")) return undefined;
      continue;
    }
    if (!plain(v)) return undefined;
    const keys = Object.keys(v);
    if (keys.length !== 3 || !("dtype" in v) || !("shape" in v) || !("data_offsets" in v)) return undefined;
    const { dtype, shape, data_offsets: off } = v;
    if (typeof dtype !== "string" || !Object.hasOwn(SIZES, dtype)) return undefined;
    if (!Array.isArray(shape) || shape.length > RANK || !shape.every(nat)) return undefined;
    if (!Array.isArray(off) || off.length !== 2 || !off.every(nat)) return undefined;
    const [b, e] = off as number[];
    if (b > e || e > dataLength) return undefined;
    const need = (shape as number[]).reduce((p, d) => p * BigInt(d), SIZES[dtype]);
    if (need !== BigInt(e - b)) return undefined;
    ranges.set(name, [b, e]);
  }
  const sorted = [...ranges.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let total = 0;
  for (let i = 0; i < sorted.length; i++) {
    total += sorted[i][1] - sorted[i][0];
    if (i > 0 && sorted[i][0] < sorted[i - 1][1]) return undefined;
  }
  return total === dataLength ? ranges : undefined;
}
