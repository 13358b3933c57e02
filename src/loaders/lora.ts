/**
 * LoRA / LoCon files → low-rank weight deltas for the UNet and the two text encoders.
 *
 * Formats: diffusers/PEFT (`unet.<module>.lora_A.weight` / `lora_B`, optional `<module>.alpha`, also
 * `lora.down/up`, `lora_linear_layer.down/up` and the older `processor.to_q_lora.down/up`), and kohya
 * (`lora_unet_<module>` / `lora_te1_` / `lora_te2_` + `.lora_down.weight`, `.lora_up.weight`, `.alpha`)
 * where the UNet module is named in SGM form (`input_blocks_4_1_transformer_blocks_0_attn1_to_q`) or in
 * diffusers form (`down_blocks_1_attentions_0_…`), LoCon convs included. Kohya names lose the dots, so
 * rather than parse them we list every module the model has (from its config), spell each the kohya
 * ways, and look names up: anything that finds no module is reported, never dropped.
 *
 * scale = weight · alpha / rank (alpha absent: scale = weight). The up/down tensors stay in the LoRA file
 * (read in place); the graph adds W + scale·up·down and onnxruntime folds it at session creation.
 */
import { basename } from "node:path";
import { readFloat32, readHeader, SafetensorsError, type TensorEntry } from "../safetensors/read.js";
import { WeightDeltas, type LowRankDelta } from "../nn/weight-deltas.js";
import { expectedParameters } from "../models/components.js";
import { parseUNetConfig } from "../models/unet/config.js";
import { unetPrefixTable } from "./sgm-names.js";

export class LoraError extends Error {}

export type LoraComponent = "unet" | "textEncoder" | "textEncoder2";
export const LORA_COMPONENTS: readonly LoraComponent[] = ["unet", "textEncoder", "textEncoder2"];

/** One WeightDeltas per model component; pass the same set to several LoRAs to stack them. */
export type LoraDeltaSet = Record<LoraComponent, WeightDeltas>;

interface Target { component: LoraComponent; key: string; shape: number[] }

/**
 * The modules of one model that a LoRA may target, under every name a LoRA file may use for them.
 * Built once per model (it lists the parameters of each config) and shared by all LoRAs.
 */
export class LoraTargets {
  /** `${component}:${diffusers module}` and kohya names → the weight they change. */
  private readonly names = new Map<string, Target>();

  /** Configs as in the model folder (raw config.json objects); a component left out cannot be targeted. */
  constructor(configs: { unet: Record<string, any>; textEncoder?: Record<string, any>; textEncoder2?: Record<string, any> }) {
    const sgm = unetPrefixTable(parseUNetConfig(configs.unet));
    this.addComponent("unet", expectedParameters("unet", configs.unet), ["lora_unet_"], (module) => {
      const s = sgm.toSgm(`${module}.weight`);
      return s ? [s.key.slice(0, -".weight".length)] : [];
    });
    if (configs.textEncoder) this.addComponent("textEncoder", expectedParameters("clip-text", configs.textEncoder), ["lora_te1_", "lora_te_"]);
    if (configs.textEncoder2) this.addComponent("textEncoder2", expectedParameters("clip-text-projection", configs.textEncoder2), ["lora_te2_"]);
  }

  private addComponent(component: LoraComponent, params: Map<string, number[]>, kohyaPrefixes: string[], aliases: (module: string) => string[] = () => []) {
    for (const [key, shape] of params) {
      // Only matrices and conv kernels take a low-rank delta (not norms or biases).
      if (!key.endsWith(".weight") || shape.length < 2) continue;
      const module = key.slice(0, -".weight".length);
      const target = { component, key, shape };
      this.names.set(`${component}:${module}`, target);
      for (const name of [module, ...aliases(module)]) {
        for (const p of kohyaPrefixes) this.names.set(p + name.replaceAll(".", "_"), target);
      }
    }
  }

  /** The weight a diffusers-form module of a component names. */
  diffusers(component: LoraComponent, module: string): Target | undefined {
    return this.names.get(`${component}:${module}`);
  }

  /** The weight a kohya module name (`lora_unet_…`, `lora_te1_…`, `lora_te2_…`) names. */
  kohya(name: string): Target | undefined {
    return this.names.get(name);
  }
}

export interface LoraDelta { key: string; delta: LowRankDelta }

/** A LoRA file to apply: `weight` on the UNet, `textEncoderWeight` (default `weight`) on the text encoders. */
export interface LoraSpec { file: string; weight: number; textEncoderWeight?: number }

export interface LoraFile {
  file: string;
  /** The strength on the UNet (and on the text encoders unless textEncoderWeight says otherwise). */
  weight: number;
  /** The text encoders' strength when it differs from `weight`. */
  textEncoderWeight?: number;
  /** "peft", "diffusers" (older lora.down / processor names), "kohya", or several joined by "+". */
  format: string;
  deltas: Record<LoraComponent, LoraDelta[]>;
  /** Tensors that target no module of the model or are no LoRA part we apply (with the reason). */
  unmatched: string[];
}

/** A module's tensors, gathered from the file before they are matched to the model. */
interface Group {
  name: string;
  resolve: () => Target | undefined;
  down?: TensorEntry;
  up?: TensorEntry;
  alpha?: TensorEntry;
  tensors: string[];
  unsupported?: string;
}

const UNSUPPORTED: [RegExp, string][] = [
  [/^(hada_|lokr_)/, "LoHa/LoKr (LyCORIS) is not supported"],
  [/^lora_mid\./, "LoCon with CP decomposition (lora_mid) is not supported"],
  [/dora_scale$|lora_magnitude_vector/, "DoRA is not supported"],
  [/^(diff|diff_b|bias)/, "full weight differences are not supported"],
];

const COMPONENT_PREFIX: Record<string, LoraComponent> = { unet: "unet", text_encoder: "textEncoder", text_encoder_2: "textEncoder2" };

/** Splits a diffusers/PEFT key into component, module and part; undefined when it is not one. */
function parseDiffusersKey(raw: string): { component: LoraComponent; module: string; part: "down" | "up" | "alpha" | string; format: string } | undefined {
  let key = raw.replace(/^base_model\.model\./, "");
  let component: LoraComponent = "unet";
  const p = /^(unet|text_encoder|text_encoder_2)\./.exec(key);
  if (p) { component = COMPONENT_PREFIX[p[1]]; key = key.slice(p[0].length); }
  else if (!/^(down_blocks|mid_block|up_blocks|conv_in|conv_out|time_embedding|add_embedding)\./.test(key)) return undefined;
  // Older diffusers attention processors: `attn1.processor.to_q_lora.down.weight`, text encoders `self_attn.to_q_lora`.
  const proc = /^(.*?)(?:\.processor)?\.to_(q|k|v|out)_lora\.(down|up)\.weight$/.exec(key);
  if (proc) {
    const [, parent, c, part] = proc;
    const module = parent.endsWith("self_attn") ? `${parent}.${c}_proj` : `${parent}.to_${c}${c === "out" ? ".0" : ""}`;
    return { component, module, part, format: "diffusers" };
  }
  const forms: [RegExp, string, string][] = [
    [/^(.*)\.lora_A(?:\.[^.]+)?\.weight$/, "down", "peft"],
    [/^(.*)\.lora_B(?:\.[^.]+)?\.weight$/, "up", "peft"],
    [/^(.*)\.lora(?:_linear_layer)?\.down\.weight$/, "down", "diffusers"],
    [/^(.*)\.lora(?:_linear_layer)?\.up\.weight$/, "up", "diffusers"],
    [/^(.*)\.alpha$/, "alpha", "peft"],
    [/^(.*?)\.(lora_magnitude_vector.*|dora_scale)$/, "$2", "peft"],
  ];
  for (const [re, part, format] of forms) {
    const m = re.exec(key);
    if (m) return { component, module: m[1], part: part === "$2" ? m[2] : part, format };
  }
  return undefined;
}

function product(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/**
 * Reads a LoRA file against a model: matches every tensor to a module, checks the shapes and returns
 * the deltas at `weight` (the user's strength). Throws LoraError naming the tensors that match no
 * module of the model (a LoRA for another architecture?) unless `allowUnmatched`, where they are
 * only returned in `unmatched`; unsupported variants (LoHa, DoRA, …) and misfit shapes always throw.
 */
export function readLora(file: string, weight: number, targets: LoraTargets, opts: { allowUnmatched?: boolean; textEncoderWeight?: number } = {}): LoraFile {
  if (!Number.isFinite(weight)) throw new LoraError(`${file}: LoRA weight must be a finite number, got ${weight}`);
  // A1111's <lora:NAME:TE:UNET>, ComfyUI's strength_clip: the text encoders' own strength (default the UNet's)
  const teWeight = opts.textEncoderWeight ?? weight;
  if (!Number.isFinite(teWeight)) throw new LoraError(`${file}: LoRA text-encoder weight must be a finite number, got ${teWeight}`);
  let tensors: Map<string, TensorEntry>;
  try {
    tensors = readHeader(file).tensors;
  } catch (e) {
    if (e instanceof SafetensorsError) throw new LoraError(`${file}: not a readable LoRA .safetensors file: ${e.message}`);
    throw e;
  }
  const groups = new Map<string, Group>();
  const formats = new Set<string>();
  const unmatched: string[] = [];
  const group = (id: string, name: string, resolve: () => Target | undefined) => {
    let g = groups.get(id);
    if (!g) { g = { name, resolve, tensors: [] }; groups.set(id, g); }
    return g;
  };
  const assign = (g: Group, part: string, name: string, entry: TensorEntry) => {
    g.tensors.push(name);
    if (part === "down" || part === "up" || part === "alpha") {
      if (g[part]) throw new LoraError(`${file}: module "${g.name}" has two ${part} tensors (${g[part]!.name}, ${name})`);
      g[part] = entry;
    } else {
      g.unsupported = UNSUPPORTED.find(([re]) => re.test(part))?.[1] ?? `unknown LoRA part "${part}"`;
    }
  };

  for (const [name, entry] of tensors) {
    const kohya = /^(lora_(?:unet|te1|te2|te)_[^.]+)\.(.+)$/.exec(name);
    if (kohya) {
      formats.add("kohya");
      const [, module, rest] = kohya;
      const part = rest === "lora_down.weight" ? "down" : rest === "lora_up.weight" ? "up" : rest === "alpha" ? "alpha" : rest;
      assign(group(`k:${module}`, module, () => targets.kohya(module)), part, name, entry);
      continue;
    }
    const d = parseDiffusersKey(name);
    if (d) {
      formats.add(d.format);
      assign(group(`d:${d.component}:${d.module}`, `${d.component}:${d.module}`, () => targets.diffusers(d.component, d.module)), d.part, name, entry);
      continue;
    }
    unmatched.push(`${name} (not a LoRA tensor name)`);
  }

  const deltas: Record<LoraComponent, LoraDelta[]> = { unet: [], textEncoder: [], textEncoder2: [] };
  const errors: string[] = [];
  const origin = basename(file);
  let matched = 0;
  for (const g of groups.values()) {
    if (g.unsupported) { errors.push(`${g.name}: ${g.unsupported} (${g.tensors.join(", ")})`); continue; }
    const target = g.resolve();
    if (!target) { unmatched.push(...g.tensors.map((t) => `${t} (no module "${g.name}" in this model)`)); continue; }
    if (!g.down || !g.up) { errors.push(`${g.name}: has ${g.down ? "no up" : "no down"} tensor (${g.tensors.join(", ")})`); continue; }
    const { up, down } = g;
    const rank = down.shape[0];
    const fits = up.shape[0] === target.shape[0] && up.shape[1] === rank && up.shape.slice(2).every((x) => x === 1)
      && product(down.shape.slice(1)) === product(target.shape.slice(1)) && (down.shape.length === 2 || down.shape.length === target.shape.length);
    if (!fits) { errors.push(`${g.name}: up [${up.shape}] · down [${down.shape}] does not fit "${target.key}" [${target.shape}]`); continue; }
    // a damaged or crafted file must not become a NaN image: LoRAs are small, reading them once is cheap
    for (const t of [up, down]) {
      if (!readFloat32(t).every(Number.isFinite)) throw new LoraError(`${file}: tensor ${g.tensors.find((n) => n.includes(t === up ? "up" : "down")) ?? g.name} holds NaN or infinite values (a damaged file?)`);
    }
    const w = target.component === "unet" ? weight : teWeight;
    matched++;
    // a component at weight 0 gets nothing (no delta to fold, no session to compile again)
    if (w === 0) continue;
    let scale = w;
    if (g.alpha) {
      const a = readFloat32(g.alpha);
      if (a.length !== 1) throw new LoraError(`${file}: alpha of "${g.name}" has ${a.length} values, expected 1`);
      if (!Number.isFinite(a[0])) throw new LoraError(`${file}: alpha of "${g.name}" is ${a[0]}`);
      scale = (w * a[0]) / rank;
    }
    deltas[target.component].push({ key: target.key, delta: { up, down, scale, origin: `${origin}:${g.name}` } });
  }
  if (errors.length) throw new LoraError(`${file}: cannot apply this LoRA (a LoRA for another model?):\n  ${errors.slice(0, 20).join("\n  ")}${errors.length > 20 ? `\n  … and ${errors.length - 20} more` : ""}`);
  if (unmatched.length && !opts.allowUnmatched) {
    throw new LoraError(`${file}: ${unmatched.length} tensor(s) match no module of this model (a LoRA for another architecture, or a text encoder LoRA without that text encoder?):\n  ${unmatched.slice(0, 20).join("\n  ")}${unmatched.length > 20 ? `\n  … and ${unmatched.length - 20} more` : ""}`);
  }
  if (matched === 0) throw new LoraError(`${file}: no LoRA modules found`);
  return { file, weight, ...(teWeight !== weight ? { textEncoderWeight: teWeight } : {}), format: [...formats].sort().join("+"), deltas, unmatched };
}

/** A fresh, empty delta set (one WeightDeltas per component). */
export function emptyLoraDeltaSet(): LoraDeltaSet {
  return { unet: new WeightDeltas(), textEncoder: new WeightDeltas(), textEncoder2: new WeightDeltas() };
}

/** Adds a read LoRA's deltas to the per-component sets; LoRAs added one after another stack. */
export function addLoraDeltas(lora: LoraFile, into: LoraDeltaSet): void {
  for (const c of LORA_COMPONENTS) for (const { key, delta } of lora.deltas[c]) into[c].add(key, delta);
}

/**
 * Parses a `--lora FILE[:WEIGHT]` or `FILE:TE:UNET` argument (weight 1 when absent; a Windows drive
 * colon is not a weight; TE:UNET as A1111's tag: the text encoders' weight, then the UNet's).
 */
export function parseLoraArg(arg: string): LoraSpec {
  const num = "[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:e[+-]?\\d+)?";
  const two = new RegExp(`^(.+):(${num}):(${num})$`, "i").exec(arg);
  if (two) return Number(two[2]) === Number(two[3]) ? { file: two[1], weight: Number(two[3]) } : { file: two[1], weight: Number(two[3]), textEncoderWeight: Number(two[2]) };
  const m = new RegExp(`^(.+):(${num})$`, "i").exec(arg);
  if (m) return { file: m[1], weight: Number(m[2]) };
  return { file: arg, weight: 1 };
}
