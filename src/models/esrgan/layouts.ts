/**
 * The key layouts RRDBNet checkpoints come in, mapped onto basicsr's names by lookup: each file tensor
 * keeps its TensorEntry (file, byte range), only its name changes, so nothing is copied or converted.
 *   basicsr (Real-ESRGAN):  conv_first, body.N.rdbK.convJ, conv_body, conv_up1, conv_up2, conv_hr, conv_last
 *   ESRGAN "old arch":      model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.{num_block}, model.3, .6, .8, .10
 *   xinntao/ESRGAN, BSRGAN: conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv, upconv1, upconv2, HRconv, conv_last
 */
import type { TensorEntry } from "../../safetensors/read.js";

export type EsrganLayout = "basicsr" | "esrgan-old" | "esrgan-trunk";

const OLD_CONVS: Record<string, string> = { "0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last" };
const TRUNK_CONVS: Record<string, string> = { trunk_conv: "conv_body", upconv1: "conv_up1", upconv2: "conv_up2", HRconv: "conv_hr" };

export function detectLayout(keys: Iterable<string>): EsrganLayout {
  const all = [...keys];
  if (all.some((k) => k.startsWith("model.0."))) return "esrgan-old";
  if (all.some((k) => k.startsWith("RRDB_trunk."))) return "esrgan-trunk";
  return "basicsr";
}

/** The basicsr name of a file key, or undefined for a key of no RRDBNet. `bodyBlocks`: num_block (old layout's conv_body index). */
function basicsrName(layout: EsrganLayout, key: string, bodyBlocks: number): string | undefined {
  if (layout === "basicsr") return key;
  if (layout === "esrgan-old") {
    let m = /^model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$/.exec(key);
    if (m) return `body.${m[1]}.rdb${m[2]}.conv${m[3]}.${m[4]}`;
    m = /^model\.1\.sub\.(\d+)\.(weight|bias)$/.exec(key);
    if (m) return Number(m[1]) === bodyBlocks ? `conv_body.${m[2]}` : undefined;
    m = /^model\.(\d+)\.(weight|bias)$/.exec(key);
    return m && OLD_CONVS[m[1]] ? `${OLD_CONVS[m[1]]}.${m[2]}` : undefined;
  }
  const m = /^RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$/.exec(key);
  if (m) return `body.${m[1]}.rdb${m[2]}.conv${m[3]}.${m[4]}`;
  const c = /^(\w+)\.(weight|bias)$/.exec(key);
  if (c && TRUNK_CONVS[c[1]]) return `${TRUNK_CONVS[c[1]]}.${c[2]}`;
  return c && (c[1] === "conv_first" || c[1] === "conv_last") ? key : undefined;
}

/** The file's name for a basicsr key (for messages in the file's own terms). */
export function layoutName(layout: EsrganLayout, key: string, numBlock: number): string {
  if (layout === "basicsr") return key;
  const body = /^body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$/.exec(key);
  const conv = /^(\w+)\.(weight|bias)$/.exec(key);
  if (layout === "esrgan-old") {
    if (body) return `model.1.sub.${body[1]}.RDB${body[2]}.conv${body[3]}.0.${body[4]}`;
    if (conv?.[1] === "conv_body") return `model.1.sub.${numBlock}.${conv[2]}`;
    const idx = Object.entries(OLD_CONVS).find(([, v]) => v === conv?.[1])?.[0];
    return idx && conv ? `model.${idx}.${conv[2]}` : key;
  }
  if (body) return `RRDB_trunk.${body[1]}.RDB${body[2]}.conv${body[3]}.${body[4]}`;
  const name = Object.entries(TRUNK_CONVS).find(([, v]) => v === conv?.[1])?.[0];
  return name && conv ? `${name}.${conv[2]}` : key;
}

export interface CanonicalTensors {
  layout: EsrganLayout;
  /** basicsr key -> the file's entry (unchanged). */
  tensors: Map<string, TensorEntry>;
  /** File keys that map to no RRDBNet tensor. */
  unmapped: string[];
  /** num_block as counted in the file's own layout. */
  numBlock: number;
}

/**
 * Wrappers some conversions keep: Real-ESRGAN's `params_ema.` / `params.` (the .pth holds the state
 * dict under that key) and DataParallel's `module.`, when every key has it.
 */
function unwrapped(file: ReadonlyMap<string, TensorEntry>): ReadonlyMap<string, TensorEntry> {
  const keys = [...file.keys()];
  const prefix = ["params_ema.", "params.", "module."].find((p) => keys.length > 0 && keys.every((k) => k.startsWith(p)));
  return prefix ? new Map([...file].map(([k, e]) => [k.slice(prefix.length), e])) : file;
}

/** The file's tensors under basicsr names. */
export function canonicalTensors(original: ReadonlyMap<string, TensorEntry>): CanonicalTensors {
  const file = unwrapped(original);
  const layout = detectLayout(file.keys());
  // The old layout's trunk is Sequential(RRDB × n, conv): conv_body is the entry after the last RRDB.
  let numBlock = 0;
  const blockRe = layout === "esrgan-old" ? /^model\.1\.sub\.(\d+)\.RDB/ : layout === "esrgan-trunk" ? /^RRDB_trunk\.(\d+)\./ : /^body\.(\d+)\./;
  for (const k of file.keys()) {
    const m = blockRe.exec(k);
    if (m) numBlock = Math.max(numBlock, Number(m[1]) + 1);
  }
  const tensors = new Map<string, TensorEntry>(), unmapped: string[] = [];
  for (const [k, e] of file) {
    const name = basicsrName(layout, k, numBlock);
    if (name === undefined || tensors.has(name)) unmapped.push(k);
    else tensors.set(name, e);
  }
  return { layout, tensors, unmapped, numBlock };
}
