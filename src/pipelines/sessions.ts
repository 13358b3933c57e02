/**
 * The UNet and VAE of a pipeline as compiled onnxruntime sessions. Sessions have static shapes, so
 * each is compiled on first use for a shape and kept until another shape is asked for (one session
 * of each at a time: a full-size UNet session holds its weights).
 */
import { checkTileSize, runTiled, tileAxis, type VaeTiling } from "./vae-tiling.js";
import { join } from "node:path";
import type { Variant } from "../loaders/component.js";
import { compileComponent } from "../loaders/compile.js";
import type { ComponentWeights } from "../loaders/component.js";
import { buildUNetGraph, FREEU_INPUT, FREEU_INPUT_ORDER, parseUNetConfig, skipCount, type PagGraphOptions, type UNetConfig } from "../models/unet/index.js";
import type { FreeUOptions } from "./freeu.js";
import { openVae, openVaeWeights, type VaeComponent } from "../loaders/vae.js";
import type { WeightDeltas } from "../nn/weight-deltas.js";
import type { SessionOptions } from "../runtime/session.js";
import type { Float32IslandOp } from "../ir/onnx/half-precision.js";
import { ShapeCache } from "./shape-cache.js";

export interface UNetFeeds {
  sample: Float32Array;
  timestep: Float32Array;
  encoder_hidden_states: Float32Array;
  text_embeds: Float32Array;
  time_ids: Float32Array;
  /** [batch, time_cond_proj_dim]: LCM's guidance-scale embedding, only for UNets with time_cond_proj_dim. */
  timestep_cond?: Float32Array;
}

/** A ControlNet's residuals for one UNet call, already scaled (and summed over nets): one per skip state, and the mid one. */
export interface UNetResidualFeeds {
  down: Float32Array[];
  mid: Float32Array;
}

/** What else a UNet call runs with; each selects a session of its own (one at a time). */
export interface UNetRunOptions {
  /** A ControlNet's residuals: the session with the residual inputs. */
  residuals?: UNetResidualFeeds;
  /** A1111's tiling: circular conv padding. */
  tiling?: boolean;
  /** FreeU (checked by checkFreeU): the session with the `freeu` input, placed as its variant places it. */
  freeu?: Required<FreeUOptions>;
  /** Perturbed-attention guidance: the session whose chosen self-attention layers give the last rows the identity map. */
  pag?: PagGraphOptions;
}

/**
 * Op types a float16 UNet computes in float32, where diffusers' fp16 UNet does on CUDA: torch's GroupNorm
 * accumulates its statistics in fp32, SDPA's softmax in fp32, get_timestep_embedding works on
 * `timesteps.float()`. Cheap (small tensors, or bandwidth-bound ops). Measured on lavapipe
 * (docs/webgpu-fp16.md): they lower the error a little; onnxruntime's WebGPU fp16 MatMul and Conv are
 * the main error source (they accumulate in fp16, cuBLAS/cuDNN in fp32) and stay fp16 for speed until a
 * GPU measures the cost; SSD1B_UNET_FLOAT32_OPS=MatMul+Conv+... (developer override) picks other islands.
 */
export const UNET_FLOAT32_OPS: readonly Float32IslandOp[] = ["GroupNormalization", "Softmax", "Sin", "Cos"];
/**
 * On WebGPU GroupNorm lowers as InstanceNormalization, whose kernel accumulates its statistics in f32 for
 * fp16 inputs by itself: no island around it (86 Casts of whole activations a step fewer; full-size SSD-1B
 * UNet error 1.70e-2 instead of 1.67e-2 on lavapipe, docs/webgpu-fp16.md). Softmax accumulates in its
 * input's type there, so it keeps its island.
 */
export const UNET_FLOAT32_OPS_WEBGPU: readonly Float32IslandOp[] = ["Softmax", "Sin", "Cos"];

/** The float16 UNet's float32 op types on a device (SSD1B_UNET_FLOAT32_OPS, `+`-separated, overrides them). */
export function unetFloat32Ops(device: SessionOptions["device"], env: NodeJS.ProcessEnv = process.env): readonly Float32IslandOp[] {
  const forced = env.SSD1B_UNET_FLOAT32_OPS;
  if (forced !== undefined) return forced.split("+").filter(Boolean) as Float32IslandOp[];
  return device === "webgpu" ? UNET_FLOAT32_OPS_WEBGPU : UNET_FLOAT32_OPS;
}

/**
 * How the UNet holds its Linear layers' weights (PipelineLoadOptions.unetWeights, --unet-weights). "q8":
 * stable-diffusion.cpp's q8_0 made in memory at session creation (src/ir/onnx/q8-weights.ts). Measured on
 * this project's CPU (bench/results/unet-cpu-q8.md, synth full-size weights, 1024x1024, batch 2): the UNet's
 * session peaks 2.0 GiB lower for SSD-1B and 3.9 GiB lower for SDXL, a step 4 % (SSD-1B) to 17 % (SDXL) slower; its output is
 * within 2.7e-3 relative L2 of the float UNet's (SSD-1B; the tiny fixture UNet: 2.9e-3), where fp16
 * activations alone cost ~7e-4 (tiny UNet) and onnxruntime's WebGPU fp16 ~1.7e-2.
 */
export type UNetWeights = "float" | "q8";
export const UNET_WEIGHTS: readonly UNetWeights[] = ["float", "q8"];

/**
 * How the two text encoders hold their Linear layers' weights (PipelineLoadOptions.textEncoderWeights,
 * --text-encoder-weights): "q8" as for the UNet, the token and position embeddings stay float. Measured on
 * this project's CPU (full-size synth CLIP, fp16 files as downloaded, a 77-token prompt; float32 compute):
 * the sessions hold 1.9 GiB less (CLIP-G 2.88 → 1.32 GiB, CLIP-L 0.56 → 0.22), an encode takes 2-3x as
 * long (CLIP-G 1.7 → 5.0 s, CLIP-L 0.25 → 0.54 s: MatMulNBits is slow at 77 rows), and the embeddings are
 * within 1.1e-2 relative L2 of float32's (CLIP-L 9e-3), where the fp16 files alone cost 8e-4.
 */
export type TextEncoderWeights = UNetWeights;

/** A text encoder's session options with its Linear layers' `weights` (when given, over the session's). */
export function textEncoderSession(session: SessionOptions | undefined, weights?: TextEncoderWeights): SessionOptions | undefined {
  return weights ? { ...session, linearWeights: weights } : session;
}

/**
 * Developer overrides of the 8-bit weights (bench/device-run.sh suite "q8"): SSD1B_UNET_LINEAR_WEIGHTS=q8
 * for the Linear layers (what unetWeights "q8" sets), SSD1B_UNET_CONV_WEIGHTS=q8 for the convolutions too,
 * which on the CPU run at half of Conv's speed and wait for a GPU's measurement (SessionOptions.linearWeights /
 * convWeights; docs/webgpu-matmul.md). Unset or "float": as stored.
 */
export function unetQ8Weights(env: NodeJS.ProcessEnv = process.env): Pick<SessionOptions, "linearWeights" | "convWeights"> {
  const out: Pick<SessionOptions, "linearWeights" | "convWeights"> = {};
  for (const [variable, option] of [["SSD1B_UNET_LINEAR_WEIGHTS", "linearWeights"], ["SSD1B_UNET_CONV_WEIGHTS", "convWeights"]] as const) {
    const v = env[variable];
    if (v === undefined || v === "") continue;
    if (v !== "q8" && v !== "float") throw new Error(`${variable}=${v}: must be q8 or float`);
    out[option] = v;
  }
  return out;
}

/**
 * Session options of a UNet in `precision` (float16: with unetFloat32Ops kept in float32) with its Linear
 * layers' `weights` (when given, over the session's and the environment's).
 */
export function unetSession(session: SessionOptions, precision: "float32" | "float16", weights?: UNetWeights): SessionOptions {
  const base = { ...unetQ8Weights(), ...session, ...(weights ? { linearWeights: weights } : {}) };
  if (precision === "float32") return { ...base, precision };
  const keepFloat32 = unetFloat32Ops(session.device);
  return { ...base, precision, keepFloat32 };
}

export class UNetRunner {
  private readonly cache = new ShapeCache();
  readonly config: UNetConfig;
  private constructor(readonly weights: ComponentWeights, readonly session: SessionOptions, private readonly deltas?: WeightDeltas) {
    this.config = parseUNetConfig(weights.config);
  }

  /** A UNet from a config and weight source (a diffusers folder or a single file), with LoRA `deltas` added to its weights. */
  static fromWeights(weights: ComponentWeights, session: SessionOptions = {}, deltas?: WeightDeltas): UNetRunner {
    return new UNetRunner(weights, session, deltas);
  }

  /**
   * Noise prediction for a batch of latents [batch, C, h, w]. The text sequence length (77, or 77·n
   * for chunked A1111 prompts) follows from encoder_hidden_states. Without `opts` the plain UNet
   * session runs; residuals, tiling, FreeU and PAG each select a session with them.
   */
  async run(batch: number, height: number, width: number, feeds: UNetFeeds, opts: UNetRunOptions = {}): Promise<Float32Array> {
    const { residuals, tiling = false, freeu, pag } = opts;
    const width0 = this.config.crossAttentionDim[0];
    const sequence = feeds.encoder_hidden_states.length / (batch * width0);
    if (!Number.isInteger(sequence) || sequence < 1) {
      throw new Error(`UNet: encoder_hidden_states has ${feeds.encoder_hidden_states.length} values, not [${batch}, S, ${width0}]`);
    }
    if (!!this.config.timeCondProjDim !== (feeds.timestep_cond !== undefined)) {
      throw new Error(this.config.timeCondProjDim ? "UNet: this UNet has time_cond_proj_dim and needs timestep_cond" : "UNet: timestep_cond given to a UNet without time_cond_proj_dim");
    }
    const timeIds = feeds.time_ids.length / batch;
    if (!Number.isInteger(timeIds) || timeIds < 1) throw new Error(`UNet: time_ids has ${feeds.time_ids.length} values, not [${batch}, N]`);
    const withResiduals = residuals !== undefined;
    const half = this.session.precision === "float16" ? ", float16" : "";
    const freeuVariant = freeu?.variant;
    const pagKey = pag ? `${pag.perturbedRows}:${pag.layers.join("\u0000")}` : "";
    const graph = await this.cache.get([batch, height, width, sequence, withResiduals ? 1 : 0, tiling ? 1 : 0, timeIds, freeuVariant ?? "", pagKey], () => compileComponent(
      this.weights, "unet", `UNet (${this.weights.where}, batch ${batch}, latent ${height}x${width}${sequence === 77 ? "" : `, sequence ${sequence}`}${withResiduals ? ", ControlNet residuals" : ""}${tiling ? ", tiling" : ""}${freeuVariant ? `, FreeU ${freeuVariant}` : ""}${pag ? `, PAG ${pag.layers.join(" ")}` : ""}${half})`,
      (g, vb) => { buildUNetGraph(g, vb, this.config, { batch, height, width, sequence, timeIds }, { controlnetResiduals: withResiduals, freeu: freeuVariant, pag }); },
      tiling ? { ...this.session, circularConvPads: true } : this.session, this.deltas,
    ));
    const inputs: Record<string, Float32Array> = { ...feeds };
    if (feeds.timestep_cond === undefined) delete inputs.timestep_cond;
    if (residuals) {
      const n = skipCount(this.config);
      if (residuals.down.length !== n) throw new Error(`UNet: ${residuals.down.length} ControlNet down residuals for ${n} skip states`);
      residuals.down.forEach((r, i) => { inputs[`down_block_additional_residual_${i}`] = r; });
      inputs.mid_block_additional_residual = residuals.mid;
    }
    if (freeu) inputs[FREEU_INPUT] = Float32Array.from(FREEU_INPUT_ORDER, (k) => freeu[k]);
    return (await graph.run(inputs))["sample_out"];
  }

  /** Whether a session is compiled now (it holds the UNet's weights). */
  get compiled(): boolean { return this.cache.holds; }

  release(): Promise<void> { return this.cache.release(); }
}

export interface VaeDecodeSettings {
  /**
   * Decoder arithmetic: "float16" halves the weights' and activations' memory (and is faster on
   * GPUs), but overflows where the VAE's activations exceed 65504 (the original SDXL VAE; not
   * madebyollin/sdxl-vae-fp16-fix). A decode giving NaN or infinity is then done again in float32,
   * and float32 is kept for this runner. Default float32.
   */
  precision?: "float32" | "float16";
  /** Told when a float16 decode overflowed and float32 took over. */
  onFallback?: (message: string) => void;
}

/**
 * Tile sessions run without onnxruntime's memory arena: one session per tile shape, one at a time, and
 * what an arena held is not all handed back to the system between them. Measured (SDXL VAE, 1024x1024 in
 * tiles of 512, CPU): peak 2.92 GiB with the arena, 1.65 GiB without, 82 s against 87 s.
 */
const TILE_SESSION: SessionOptions = { memoryArena: false };

/** The VAE, one image at a time (outputs are per image; this keeps full-size activations small). */
export class VaeRunner {
  private readonly enc = new ShapeCache();
  private readonly dec = new ShapeCache();
  private decodePrecision: "float32" | "float16";
  private tiles?: VaeTiling;
  private constructor(readonly vae: VaeComponent, private readonly session: SessionOptions, private readonly settings: VaeDecodeSettings = {}) {
    this.decodePrecision = settings.precision ?? "float32";
  }

  static open(modelDir: string, variant: Variant, session: SessionOptions = {}, settings?: VaeDecodeSettings): VaeRunner {
    return new VaeRunner(openVae(join(modelDir, "vae"), variant), session, settings);
  }

  /** A VAE from a config and weight source (a diffusers folder, a single file, an override folder). */
  static fromWeights(weights: ComponentWeights, session: SessionOptions = {}, settings?: VaeDecodeSettings): VaeRunner {
    return new VaeRunner(openVaeWeights(weights), session, settings);
  }

  /** Another VAE's weights with this one's session, decode settings and tiling. */
  withWeights(weights: ComponentWeights): VaeRunner {
    const other = new VaeRunner(openVaeWeights(weights), this.session, this.settings);
    other.tiles = this.tiles;
    return other;
  }

  /** The decoder's arithmetic now (float16 turns into float32 after an overflow). */
  get decoderPrecision(): "float32" | "float16" { return this.decodePrecision; }

  get config() { return this.vae.config; }

  /** 2^(down blocks - 1): pixels per latent pixel. */
  get scaleFactor(): number { return 2 ** (this.vae.config.blockOutChannels.length - 1); }

  /**
   * diffusers' vae.enable_tiling(): images above `tileSize` pixels a side are encoded and decoded in tiles
   * (vae-tiling.ts); undefined (default): off. Circular padding (A1111's tiling) needs the whole image, so
   * those passes are never tiled.
   */
  get tiling(): VaeTiling | undefined { return this.tiles; }
  set tiling(t: VaeTiling | undefined) {
    this.tiles = t && { tileSize: checkTileSize(t.tileSize, this.scaleFactor) };
  }
  /** enable_tiling() with diffusers' tile: the config's sample_size. */
  get defaultTiling(): VaeTiling {
    return { tileSize: checkTileSize(this.config.sampleSize, this.scaleFactor, "the VAE config's sample_size (the default tile)") };
  }

  /** One image [1, 3, H, W] in [-1, 1] -> posterior mean and logvar [1, C, H/f, W/f]; `circular`: circular conv padding. */
  async encode(image: Float32Array, height: number, width: number, circular = false): Promise<{ mean: Float32Array; logvar: Float32Array }> {
    const t = this.tiles;
    if (t && !circular && (height > t.tileSize || width > t.tileSize)) return this.tiledEncode(image, height, width, t.tileSize);
    const out = await this.encodeWhole(image, height, width, circular);
    return { mean: out.mean, logvar: out.logvar };
  }

  /** `tile`: a tile's session, without onnxruntime's memory arena (TILE_SESSION). */
  private async encodeWhole(image: Float32Array, height: number, width: number, circular: boolean, tile = false): Promise<Record<string, Float32Array>> {
    const shape = [1, this.config.inChannels, height, width];
    const g = await this.enc.get([...shape, circular ? 1 : 0, tile ? 1 : 0], () => this.vae.encoder(shape, { ...this.session, circularConvPads: circular, ...(tile ? TILE_SESSION : {}) }));
    return g.run({ image });
  }

  /** diffusers' tiled_encode: the moments (mean, logvar before its clamp) blended across tiles, then the clamp. */
  private async tiledEncode(image: Float32Array, height: number, width: number, tileSize: number): Promise<{ mean: Float32Array; logvar: Float32Array }> {
    const f = this.scaleFactor, c = this.config.latentChannels;
    const moments = await runTiled({ data: image, channels: this.config.inChannels, height, width },
      tileAxis(height, tileSize, tileSize / f), tileAxis(width, tileSize, tileSize / f), async (tile) => {
        const out = await this.encodeWhole(tile.data, tile.height, tile.width, false, true);
        const data = new Float32Array(2 * out.mean.length);
        data.set(out.mean);
        data.set(out.raw_logvar, out.mean.length);
        return { data, channels: 2 * c, height: tile.height / f, width: tile.width / f };
      });
    const n = moments.data.length / 2;
    const logvar = moments.data.slice(n).map((v) => (v < -30 ? -30 : v > 20 ? 20 : v));
    return { mean: moments.data.slice(0, n), logvar };
  }

  /**
   * One latent [1, C, h, w] (already unscaled) -> image [1, 3, h*f, w*f] in about [-1, 1]; `circular`: circular
   * conv padding; `signal` is checked between tiles.
   */
  async decode(latent: Float32Array, height: number, width: number, circular = false, signal?: AbortSignal): Promise<Float32Array> {
    const t = this.tiles;
    if (t && !circular && (height * this.scaleFactor > t.tileSize || width * this.scaleFactor > t.tileSize)) {
      const f = this.scaleFactor, lt = t.tileSize / f;
      const out = await runTiled({ data: latent, channels: this.config.latentChannels, height, width }, tileAxis(height, lt, t.tileSize), tileAxis(width, lt, t.tileSize),
        async (tile) => ({ data: await this.decodeWhole(tile.data, tile.height, tile.width, false, true), channels: this.config.outChannels, height: tile.height * f, width: tile.width * f }),
        signal);
      return out.data;
    }
    return this.decodeWhole(latent, height, width, circular);
  }

  private async decodeWhole(latent: Float32Array, height: number, width: number, circular: boolean, tile = false): Promise<Float32Array> {
    const shape = [1, this.config.latentChannels, height, width];
    const precision = this.decodePrecision;
    const key = [...shape, precision === "float16" ? 16 : 32, circular ? 1 : 0, tile ? 1 : 0];
    const g = await this.dec.get(key, () => this.vae.decoder(shape, { ...this.session, precision, circularConvPads: circular, ...(tile ? TILE_SESSION : {}) }));
    const decoded = (await g.run({ latent })).decoded;
    if (precision === "float16" && !decoded.every(Number.isFinite)) {
      this.decodePrecision = "float32";
      this.settings.onFallback?.("the VAE decode in float16 overflowed (NaN or infinity); decoding in float32 from now on (a VAE made for float16, such as madebyollin/sdxl-vae-fp16-fix, avoids this)");
      return this.decodeWhole(latent, height, width, circular, tile);
    }
    return decoded;
  }

  async release(): Promise<void> {
    await this.enc.release();
    await this.dec.release();
  }
}
