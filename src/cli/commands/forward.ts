import { basename } from "node:path";
import { parseArgs } from "node:util";
import { TensorStore, readInt64, saveTensors } from "../../safetensors/index.js";
import type { Dtype } from "../../safetensors/dtypes.js";
import { openComponent, openWeights, type Variant } from "../../loaders/component.js";
import { compileComponent } from "../../loaders/compile.js";
import { detectComponentKind, type ComponentKind } from "../../models/components.js";
import { buildUNetGraph, parseUNetConfig } from "../../models/unet/index.js";
import { buildControlNetGraph, conditioningDownscale, parseControlNetConfig } from "../../models/controlnet/index.js";
import { buildClipTextModel } from "../../models/clip/clip-text-model.js";
import { parseClipTextConfig } from "../../models/clip/config.js";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../../models/vae/autoencoder-kl.js";
import { buildTaesdDecoder, buildTaesdEncoder, parseTaesdConfig } from "../../models/taesd/index.js";
import type { Graph } from "../../ir/graph.js";
import type { WeightBuilder } from "../../nn/weights.js";
import type { HostArray } from "../../runtime/session.js";
import { UsageError } from "../usage-error.js";

export const forwardUsage = `ssd1b forward <component-dir> --inputs in.safetensors --output out.safetensors [--mode encode|decode] [--variant fp16] [--device cpu|webgpu]
  Runs one component on named inputs and writes named outputs:
    unet:          in.sample, in.timestep, in.encoder_hidden_states, in.text_embeds, in.time_ids -> out.sample
                   (LCM UNets with time_cond_proj_dim: also in.timestep_cond; without it, as diffusers' None)
    controlnet:    the UNet's inputs and in.controlnet_cond [B, 3, H, W] in [0, 1]
                   -> out.down_res_0..N-1, out.mid_res (not multiplied by any conditioning scale)
    text encoders: in.input_ids (I64) -> out.last_hidden_state, out.penultimate_hidden_state, out.pooled | out.text_embeds
    vae encode:    in.image -> out.mean, out.logvar;   vae decode: in.latent -> out.decoded
    TAESD encode:  in.image -> out.latents;            TAESD decode: in.latent -> out.decoded`;

interface Plan {
  /** Fixture-style input names with expected rank and dtype. */
  inputs: { name: string; graphName: string; rank: number; dtype: Dtype; optional?: boolean }[];
  /** Values for optional inputs the file lacks, from the shapes of those it has. */
  defaults?(shapes: Map<string, number[]>): Record<string, Float32Array>;
  build(graph: Graph, vb: WeightBuilder, shapes: Map<string, number[]>): void;
}

function plan(kind: ComponentKind, config: Record<string, any>, mode: string | undefined): Plan {
  const inp = (name: string, rank: number, dtype: Dtype = "F32") => ({ name: `in.${name}`, graphName: name, rank, dtype });
  if (mode && kind !== "vae" && kind !== "autoencoder-tiny") throw new UsageError(`--mode applies to a VAE only; this folder holds a ${kind}`);
  switch (kind) {
    case "unet": {
      const c = parseUNetConfig(config);
      const inputs: Plan["inputs"] = [inp("sample", 4), inp("timestep", 1), inp("encoder_hidden_states", 3)];
      if (c.additionEmbedType === "text_time") inputs.push(inp("text_embeds", 2), inp("time_ids", 2));
      const dim = c.timeCondProjDim;
      if (dim) inputs.push({ ...inp("timestep_cond", 2), optional: true });
      return {
        inputs,
        // diffusers skips cond_proj when timestep_cond is None; cond_proj has no bias, so zeros are the same.
        defaults: (shapes): Record<string, Float32Array> => (dim ? { timestep_cond: new Float32Array(shapes.get("sample")![0] * dim) } : {}),
        build(graph, vb, shapes) {
          const [b, , h, w] = shapes.get("sample")!;
          buildUNetGraph(graph, vb, c, { batch: b, height: h, width: w, sequence: shapes.get("encoder_hidden_states")![1] });
        },
      };
    }
    case "controlnet": {
      const c = parseControlNetConfig(config);
      const inputs: Plan["inputs"] = [inp("sample", 4), inp("timestep", 1), inp("encoder_hidden_states", 3)];
      if (c.encoder.additionEmbedType === "text_time") inputs.push(inp("text_embeds", 2), inp("time_ids", 2));
      inputs.push(inp("controlnet_cond", 4));
      return {
        inputs,
        build(graph, vb, shapes) {
          const [b, , h, w] = shapes.get("sample")!;
          const cond = shapes.get("controlnet_cond")!;
          const f = conditioningDownscale(c);
          if (cond[2] !== h * f || cond[3] !== w * f) throw new UsageError(`in.controlnet_cond is ${cond[2]}x${cond[3]}; this ControlNet needs ${f}x the latent size, ${h * f}x${w * f}`);
          buildControlNetGraph(graph, vb, c, { batch: b, height: h, width: w, sequence: shapes.get("encoder_hidden_states")![1] });
        },
      };
    }
    case "vae": {
      const c = parseVaeConfig(config);
      if (mode !== "encode" && mode !== "decode") throw new UsageError(`a VAE needs --mode encode or --mode decode`);
      return mode === "encode"
        ? { inputs: [inp("image", 4)], build(g, vb, s) { const o = buildVaeEncoder(vb, c, s.get("image")!); g.output("mean", o.mean); g.output("logvar", o.logvar); } }
        : { inputs: [inp("latent", 4)], build(g, vb, s) { const o = buildVaeDecoder(vb, c, s.get("latent")!); g.output("decoded", o.decoded); } };
    }
    case "autoencoder-tiny": {
      const c = parseTaesdConfig(config);
      if (mode !== "encode" && mode !== "decode") throw new UsageError(`a TAESD needs --mode encode or --mode decode`);
      return mode === "encode"
        ? { inputs: [inp("image", 4)], build(g, vb, s) { g.output("latents", buildTaesdEncoder(vb, c, s.get("image")!).latents); } }
        : { inputs: [inp("latent", 4)], build(g, vb, s) { g.output("decoded", buildTaesdDecoder(vb, c, s.get("latent")!).decoded); } };
    }
    default: {
      const c = parseClipTextConfig(config);
      const withProjection = kind === "clip-text-projection";
      return {
        inputs: [inp("input_ids", 2, "I64")],
        build(g, vb, s) {
          const [batch, seqLen] = s.get("input_ids")!;
          const o = buildClipTextModel(vb, c, { batch, seqLen, withProjection });
          g.output("last_hidden_state", o.lastHiddenState);
          g.output("penultimate_hidden_state", o.penultimateHiddenState);
          if (o.textEmbeds) g.output("text_embeds", o.textEmbeds);
          else g.output("pooled", o.pooled);
        },
      };
    }
  }
}

export async function forwardComponent(dir: string, inputsFile: string, opts: { mode?: string; variant?: Variant; device?: "cpu" | "webgpu" } = {}) {
  const files = openComponent(dir, opts.variant);
  const kind = detectComponentKind(files.config, basename(dir), openWeights(files).keys());
  const p = plan(kind, files.config, opts.mode);
  const store = TensorStore.open(inputsFile);
  const shapes = new Map<string, number[]>();
  const feeds: Record<string, HostArray> = {};
  for (const spec of p.inputs) {
    const entry = store.tensors.get(spec.name);
    if (!entry && spec.optional) continue;
    if (!entry) throw new UsageError(`${inputsFile}: missing input "${spec.name}" (a ${kind} needs ${p.inputs.map((i) => i.name).join(", ")})`);
    if (entry.shape.length !== spec.rank) throw new UsageError(`${inputsFile}: "${spec.name}" has shape [${entry.shape}], expected ${spec.rank} dimensions`);
    if ((spec.dtype === "I64") !== (entry.dtype === "I64")) throw new UsageError(`${inputsFile}: "${spec.name}" is ${entry.dtype}, expected ${spec.dtype}`);
    shapes.set(spec.graphName, entry.shape);
    feeds[spec.graphName] = spec.dtype === "I64" ? readInt64(entry) : store.float32(spec.name);
  }
  for (const [name, value] of Object.entries(p.defaults?.(shapes) ?? {})) feeds[name] ??= value;
  const extra = [...store.tensors.keys()].filter((k) => k.startsWith("in.") && !p.inputs.some((i) => i.name === k));
  if (extra.length) throw new UsageError(`${inputsFile}: unexpected input(s) ${extra.join(", ")} for a ${kind} (expected ${p.inputs.map((i) => i.name).join(", ")})`);
  const model = await compileComponent(files, kind, `${kind} (${dir})`, (g, vb) => p.build(g, vb, shapes), { device: opts.device });
  try {
    const out = await model.run(feeds);
    const result: Record<string, { data: Float32Array; shape: number[] }> = {};
    for (const o of model.outputs) {
      const name = o.name === "sample_out" ? "out.sample" : `out.${o.name}`;
      result[name] = { data: out[o.name], shape: [...o.shape] };
    }
    return result;
  } finally {
    await model.release();
  }
}

export async function forwardCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { inputs: { type: "string" }, output: { type: "string" }, mode: { type: "string" }, variant: { type: "string" }, device: { type: "string", default: "cpu" } },
  });
  if (positionals.length !== 1) throw new UsageError("forward needs exactly one <component-dir>");
  if (!values.inputs || !values.output) throw new UsageError("forward needs --inputs and --output");
  if (values.variant && values.variant !== "fp16" && values.variant !== "fp32") throw new UsageError(`--variant must be fp16 or fp32, got "${values.variant}"`);
  if (values.device !== "cpu" && values.device !== "webgpu") throw new UsageError(`--device must be cpu or webgpu, got "${values.device}"`);
  const result = await forwardComponent(positionals[0], values.inputs, { mode: values.mode, variant: values.variant as Variant, device: values.device });
  saveTensors(values.output, Object.fromEntries(Object.entries(result).map(([k, v]) => [k, { dtype: "F32" as const, shape: v.shape, data: v.data }])));
  process.stderr.write(`wrote ${Object.keys(result).join(", ")} to ${values.output}\n`);
}
