/**
 * Opening an RRDBNet .safetensors: its layout, its config from the tensors, and a full check (every
 * tensor the config needs present with its shape, none left over) before anything is compiled.
 */
import type { WeightSource } from "../nn/weights.js";
import { readHeader, type TensorEntry } from "../safetensors/read.js";
import { EsrganModelError, REQUIRED_KEYS, inferRrdbNetConfig, type RrdbNetConfig } from "../models/esrgan/config.js";
import { canonicalTensors, layoutName, type EsrganLayout } from "../models/esrgan/layouts.js";
import { rrdbNetParameters } from "../models/esrgan/rrdbnet.js";

export interface EsrganWeights {
  config: RrdbNetConfig;
  layout: EsrganLayout;
  /** Looks tensors up by basicsr name. */
  source: WeightSource;
  where: string;
}

const few = (keys: string[], n = 6) => keys.slice(0, n).map((k) => `"${k}"`).join(", ") + (keys.length > n ? `, … (${keys.length} in all)` : "");

export function openEsrganTensors(file: ReadonlyMap<string, TensorEntry>, where: string): EsrganWeights {
  const { layout, tensors, unmapped, numBlock } = canonicalTensors(file);
  const named = (k: string) => layoutName(layout, k, numBlock);
  if (layout === "esrgan-old") checkOldArchStages(file, where);
  const missing = REQUIRED_KEYS.filter((k) => !tensors.has(k));
  if (missing.length) {
    const found = [...file.keys()];
    throw new EsrganModelError(`${where}: not an RRDBNet (ESRGAN / Real-ESRGAN) checkpoint: missing ${few(missing.map(named), 7)}`
      + (layout === "basicsr" ? ` (basicsr names; the ESRGAN layout would have "model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight", …)` : "")
      + `; the file holds ${found.length ? few(found, 4) : "no tensors"}`);
  }
  const config = inferRrdbNetConfig(tensors, where);
  const wrongShape: string[] = [], absent: string[] = [];
  const expected = rrdbNetParameters(config);
  for (const [k, shape] of expected) {
    const e = tensors.get(k);
    if (!e) absent.push(named(k));
    else if (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) wrongShape.push(`"${named(k)}" is [${e.shape}], expected [${shape}]`);
  }
  const describe = `RRDBNet x${config.scale} (num_feat ${config.numFeat}, num_block ${config.numBlock}, num_grow_ch ${config.numGrowCh})`;
  if (absent.length) throw new EsrganModelError(`${where}: ${absent.length} tensor(s) of an ${describe} are missing: ${few(absent)}`);
  if (wrongShape.length) throw new EsrganModelError(`${where}: tensor(s) of the wrong shape for an ${describe}: ${wrongShape.slice(0, 4).join("; ")}`);
  const leftover = [...unmapped, ...[...tensors.keys()].filter((k) => !expected.has(k)).map(named)];
  if (leftover.length) throw new EsrganModelError(`${where}: ${leftover.length} tensor(s) are not part of an ${describe} (an ESRGAN variant this loader does not know?): ${few(leftover)}`);
  const source: WeightSource = { description: where, lookup: (k) => tensors.get(k), keys: () => tensors.keys() };
  return { config, layout, source, where };
}

/**
 * The old arch is one Sequential: conv, trunk, then per x2 stage (upsample, conv, act), then HR conv,
 * act, last conv; so 5 + 3·stages entries (spandrel's rule). Only 2 stages (x4, and x2 / x1 through
 * pixel_unshuffle) are basicsr's RRDBNet; x8 (3 stages) and upsampler-less 1x models are other networks.
 */
function checkOldArchStages(file: ReadonlyMap<string, TensorEntry>, where: string): void {
  let last = 0;
  for (const k of file.keys()) {
    const m = /^(?:params_ema\.|params\.|module\.)?model\.(\d+)\./.exec(k);
    if (m) last = Math.max(last, Number(m[1]));
  }
  const stages = (last + 1 - 5) / 3;
  if (stages !== 2) {
    throw new EsrganModelError(`${where}: an old-arch ESRGAN whose last entry is model.${last} (${Number.isInteger(stages) && stages >= 0 ? `${stages} upsampling stage(s), x${2 ** stages}` : "no upsampler layout known"}); only the x4 arch (model.0 .. model.10, also x2 / x1 by pixel_unshuffle) is supported`);
  }
}

/** Reads the header only; the weights stay in the file and are read by onnxruntime in place. */
export function openEsrganFile(path: string): EsrganWeights {
  return openEsrganTensors(readHeader(path).tensors, path);
}
