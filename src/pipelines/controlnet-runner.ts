/**
 * A diffusers ControlNetModel as a compiled session: opened from its folder (config.json +
 * diffusion_pytorch_model[.fp16].safetensors), a repo id in the Hugging Face cache, or a lone
 * .safetensors file with a config folder,
 * compiled once per shape, returning the raw (unscaled) residuals; see controlnet-residuals.ts for
 * the scaling, and checkControlNetFits for whether a net can drive a given UNet.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ModelFolderError, readConfig, storeSource, type Variant } from "../loaders/component.js";
import { compileComponent } from "../loaders/compile.js";
import { folderComponent, type ComponentWeights } from "../loaders/model-source.js";
import { hubSnapshot, repoCacheDir } from "../loaders/model-folder.js";
import { buildControlNetGraph, conditioningDownscale, parseControlNetConfig, type ControlNetConfig } from "../models/controlnet/index.js";
import { skipCount, type UNetConfig } from "../models/unet/index.js";
import type { SessionOptions } from "../runtime/session.js";
import { TensorStore } from "../safetensors/index.js";
import { PipelineInputError } from "./errors.js";
import type { ControlNetResiduals } from "./controlnet-residuals.js";
import { ShapeCache } from "./shape-cache.js";

export interface ControlNetFeeds {
  sample: Float32Array;
  timestep: Float32Array;
  encoder_hidden_states: Float32Array;
  text_embeds: Float32Array;
  time_ids: Float32Array;
  /** [batch, 3, h·f, w·f] in [0, 1] (f = 2^(len(conditioning_embedding_out_channels) - 1), 8 for SDXL nets). */
  controlnet_cond: Float32Array;
}

export interface ControlNetOpenOptions {
  /** Folders: "fp16" for diffusion_pytorch_model.fp16.safetensors; default fp32 if present, else fp16. */
  variant?: Variant;
  /** A lone .safetensors file: the folder holding its config.json (default: the file's folder). */
  config?: string;
  session?: SessionOptions;
  /** For HF_HUB_CACHE / HF_HOME when `spec` is a repo id. */
  env?: NodeJS.ProcessEnv;
}

function openControlNetWeights(spec: string, opts: ControlNetOpenOptions): ComponentWeights {
  let path = resolve(spec);
  if (!existsSync(path) && /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(spec)) {
    // A repo id already in the Hugging Face cache (diffusers/controlnet-canny-sdxl-1.0).
    const snap = hubSnapshot(spec, opts.env);
    if (!snap) throw new ModelFolderError(`ControlNet "${spec}": not a local path, and not in the Hugging Face cache (${repoCacheDir(spec, opts.env)})`);
    path = snap;
  }
  if (!existsSync(path)) throw new ModelFolderError(`ControlNet not found: ${path}`);
  if (statSync(path).isDirectory()) {
    try {
      return folderComponent(path, opts.variant);
    } catch (e) {
      // A folder with only the other variant is still that ControlNet.
      if (opts.variant && e instanceof ModelFolderError) return folderComponent(path, undefined);
      throw e;
    }
  }
  const configDir = opts.config ? resolve(opts.config) : dirname(path);
  return { config: readConfig(configDir), source: storeSource(TensorStore.open(path)), where: path };
}

export class ControlNetRunner {
  private readonly cache = new ShapeCache();
  readonly config: ControlNetConfig;
  private constructor(readonly weights: ComponentWeights, private readonly session: SessionOptions) {
    this.config = parseControlNetConfig(weights.config);
  }

  static open(spec: string, opts: ControlNetOpenOptions = {}): ControlNetRunner {
    return new ControlNetRunner(openControlNetWeights(spec, opts), opts.session ?? {});
  }

  static fromWeights(weights: ComponentWeights, session: SessionOptions = {}): ControlNetRunner {
    return new ControlNetRunner(weights, session);
  }

  /** Pixels of control image per latent pixel. */
  get scaleFactor(): number { return conditioningDownscale(this.config); }

  /** Raw residuals for latents [batch, C, height, width]: not multiplied by any conditioning scale. */
  async run(batch: number, height: number, width: number, feeds: ControlNetFeeds): Promise<ControlNetResiduals> {
    const e = this.config.encoder;
    const width0 = e.crossAttentionDim[0];
    const sequence = feeds.encoder_hidden_states.length / (batch * width0);
    if (!Number.isInteger(sequence) || sequence < 1) {
      throw new Error(`ControlNet: encoder_hidden_states has ${feeds.encoder_hidden_states.length} values, not [${batch}, S, ${width0}]`);
    }
    const f = this.scaleFactor;
    const condLength = batch * this.config.conditioningChannels * height * f * width * f;
    if (feeds.controlnet_cond.length !== condLength) {
      throw new PipelineInputError(`ControlNet: the control image must be [${batch}, ${this.config.conditioningChannels}, ${height * f}, ${width * f}] (${f}x the latent size); got ${feeds.controlnet_cond.length} values`);
    }
    const graph = await this.cache.get([batch, height, width, sequence], () => compileComponent(
      this.weights, "controlnet", `ControlNet (${this.weights.where}, batch ${batch}, latent ${height}x${width}${sequence === 77 ? "" : `, sequence ${sequence}`})`,
      (g, vb) => { buildControlNetGraph(g, vb, this.config, { batch, height, width, sequence }); },
      this.session,
    ));
    const inputs: Record<string, Float32Array> = { ...feeds };
    if (e.additionEmbedType !== "text_time") { delete inputs.text_embeds; delete inputs.time_ids; }
    const out = await graph.run(inputs);
    const n = skipCount(e);
    return { down: Array.from({ length: n }, (_, i) => out[`down_res_${i}`]), mid: out.mid_res };
  }

  get compiled(): boolean { return this.cache.holds; }

  release(): Promise<void> { return this.cache.release(); }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Refuses a ControlNet that cannot drive this UNet: its residuals would not have the UNet's skip
 * shapes (in_channels, block_out_channels, layers_per_block), or it was trained for another text
 * encoder or micro-conditioning (cross_attention_dim, addition embedding dims). Names the field.
 */
export function checkControlNetFits(controlnet: ControlNetConfig, unet: UNetConfig, latentChannels = unet.inChannels): void {
  const c = controlnet.encoder;
  const checks: [string, unknown, unknown][] = [
    // a ControlNet sees the latents alone, also beside a 9-channel inpainting UNet
    ["in_channels", c.inChannels, latentChannels],
    ["block_out_channels", c.blockOutChannels, unet.blockOutChannels],
    ["layers_per_block", c.layersPerBlock, unet.layersPerBlock],
    ["cross_attention_dim", c.crossAttentionDim[0], unet.crossAttentionDim[0]],
    ["addition_embed_type", c.additionEmbedType, unet.additionEmbedType],
    ["addition_time_embed_dim", c.additionTimeEmbedDim, unet.additionTimeEmbedDim],
    ["projection_class_embeddings_input_dim", c.projectionClassEmbeddingsInputDim, unet.projectionClassEmbeddingsInputDim],
  ];
  for (const [name, mine, theirs] of checks) {
    if (!same(mine, theirs)) {
      throw new PipelineInputError(`ControlNet does not fit this UNet: its ${name} is ${JSON.stringify(mine)}, the UNet's is ${JSON.stringify(theirs)}`);
    }
  }
}
