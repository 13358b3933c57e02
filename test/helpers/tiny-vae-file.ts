/** The tiny model's VAE as a standalone .safetensors VAE file, as A1111 and ComfyUI keep them. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tinyModelIn } from "./tiny-model.js";
import { saveTensors, TensorStore } from "../../src/safetensors/index.js";
import { vaePrefixTable } from "../../src/loaders/sgm-names.js";
import { parseVaeConfig } from "../../src/models/vae/config.js";

/**
 * Writes `file`: the tiny model's VAE in LDM names (attention projections as 1x1 convs, as LDM stores
 * them) under `prefix`; `drop` leaves one LDM key out; `shift` is added to decoder.conv_out.bias (a VAE
 * whose images differ).
 */
export function tinyVaeFile(tmp: string, file: string, opts: { prefix?: string; drop?: string; shift?: number } = {}): string {
  const dir = join(tinyModelIn(tmp), "vae");
  const store = TensorStore.open(join(dir, "diffusion_pytorch_model.safetensors"));
  const table = vaePrefixTable(parseVaeConfig(JSON.parse(readFileSync(join(dir, "config.json"), "utf8"))));
  const out: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [k, e] of store.tensors) {
    const ldm = table.toSgm(k)!.key;
    if (ldm === opts.drop) continue;
    const conv = /attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$/.test(k);
    const data = store.float32(k);
    out[(opts.prefix ?? "") + ldm] = { dtype: "F32", shape: conv ? [...e.shape, 1, 1] : e.shape, data: ldm === "decoder.conv_out.bias" && opts.shift ? data.map((v) => v + opts.shift!) : data };
  }
  saveTensors(file, out);
  return file;
}
