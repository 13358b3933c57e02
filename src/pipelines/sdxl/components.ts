/**
 * The loaded parts of an SDXL-family pipeline and their lifetimes: prompt encoder (two CLIPs), UNet,
 * VAE, optional TAESD, each a runner that compiles per shape on first use. A LoRA variant
 * (`withLoras`) gets its own UNet (and text encoders when a LoRA touches them) and borrows the rest;
 * `release` frees only what a set of components owns.
 */
import { existsSync } from "node:fs";
import type { ModelFolder } from "../../loaders/model-folder.js";
import type { Variant } from "../../loaders/component.js";
import { MissingTokenizersError, openModelSource, openVaeOverride, type ModelSource } from "../../loaders/model-source.js";
import { addLoraDeltas, emptyLoraDeltaSet, LoraError, LoraTargets, readLora, type LoraDeltaSet, type LoraFile, type LoraSpec } from "../../loaders/lora.js";
import type { SessionOptions } from "../../runtime/session.js";
import { ensureLocal, hubSettings, type HubOptions } from "../../hub/index.js";
import { PromptEncoder } from "../prompt-encoding.js";
import { checkTimeIdsFit } from "../micro-conditioning.js";
import { UNetRunner, VaeRunner, textEncoderSession, unetSession } from "../sessions.js";
import { MAX_TI_TOTAL_VECTORS, readTextualInversion, TextualInversionError, type TextualInversion } from "../../loaders/textual-inversion.js";
import { PipelineInputError } from "../errors.js";
import { TaesdRunner, checkTaesdFits } from "../taesd-runner.js";
import type { PipelineLoadOptions } from "./options.js";
import { fetchSingleFileTokenizers, presetLoadOptions, textEncoderWeights, unetPrecision, unetWeights, vaePrecision } from "./load-options.js";

/** Session options and warning sink of the load, reused by LoRA variants and later TAESD loads. */
export interface LoadSettings { session?: SessionOptions; onWarning?: (message: string) => void }

/** Which sessions a set of components shares with the one it came from (its release leaves them). */
interface Borrowed { promptEncoder: boolean; unet?: boolean; vae: boolean; taesd: boolean }

export class SdxlComponents {
  private taesdRunner?: TaesdRunner;
  /** A LoRA variant uses its base's TAESD, also one loaded into the base later. */
  private taesdOwner?: SdxlComponents;

  private constructor(
    /** Where the weights came from: diffusers folder or single file, configs, tokenizers. */
    readonly source: ModelSource,
    readonly promptEncoder: PromptEncoder,
    readonly unet: UNetRunner,
    readonly vae: VaeRunner,
    /** The LoRAs applied, as read (format, per-component deltas). */
    readonly loras: readonly LoraFile[],
    readonly settings: LoadSettings,
    /** See PipelineLoadOptions.lowMemory. */
    readonly lowMemory: boolean,
    private readonly borrowed: Borrowed = { promptEncoder: false, vae: false, taesd: false },
  ) {}

  /**
   * Opens a diffusers folder, a Hugging Face repo id (downloaded on first use) or a single-file
   * checkpoint; reads the LoRAs against the model; compiles the text encoders now, the UNet and VAE
   * per shape on first use. `preset` says whether a preset was applied.
   */
  static async load(dirOrRepoId: string, loadOpts: PipelineLoadOptions): Promise<SdxlComponents> {
    const hub: HubOptions & { variant?: Variant; notes?: (m: string) => void } = { env: loadOpts.env, ...loadOpts.hub, variant: loadOpts.variant, notes: loadOpts.onWarning };
    const local = (spec: string | undefined, role: "vae" | "taesd") => (spec === undefined ? undefined : ensureLocal(spec, role, hub));
    const opts: PipelineLoadOptions = {
      ...loadOpts, vae: await local(loadOpts.vae, "vae"), taesd: await local(loadOpts.taesd, "taesd"),
      loras: loadOpts.loras && await Promise.all(loadOpts.loras.map(async (l) => ({ ...l, file: await ensureLocal(l.file, "lora", hub) }))),
    };
    const modelPath = await ensureLocal(dirOrRepoId, "model", hub);
    const open = () => openModelSource(modelPath, { variant: opts.variant, config: opts.config, vae: opts.vae, env: opts.env });
    let source: ModelSource;
    try {
      source = open();
    } catch (e) {
      if (!(e instanceof MissingTokenizersError) || hubSettings(hub).offline) throw e;
      await fetchSingleFileTokenizers(opts, hub);
      source = open();
    }
    const { model, modelIndex } = source;
    for (const note of source.notes) opts.onWarning?.(note);
    if (opts.preset) Object.assign(opts, await presetLoadOptions(opts, source, hub));
    const { loras, deltas } = readLoras(source, [], opts.loras ?? []);
    // Low-memory mode also gives activations back to the system as soon as they are freed.
    const base = opts.onWarning && !opts.session?.onWarning ? { ...opts.session, onWarning: opts.onWarning } : opts.session;
    const session = opts.lowMemory ? { memoryArena: false, ...base } : base;
    const unet = UNetRunner.fromWeights(source.unet, unetSession(session ?? {}, unetPrecision(opts), unetWeights(opts)), deltas?.unet);
    const vae = VaeRunner.fromWeights(source.vae, session, { precision: vaePrecision(opts, source.vae.config), onFallback: opts.onWarning });
    if (opts.vaeTiling) vae.tiling = opts.vaeTiling === true ? vae.defaultTiling : opts.vaeTiling;
    const taesd = opts.taesd ? TaesdRunner.open(opts.taesd, { variant: opts.variant, session, env: opts.env }) : undefined;
    if (taesd) checkTaesdFits(taesd, vae.config.latentChannels, vae.scaleFactor);
    const promptEncoder = await PromptEncoder.fromWeights(source.tokenizers, source, {
      session: textEncoderSession(session, textEncoderWeights(opts)), warn: opts.onWarning, promptSyntax: opts.promptSyntax,
      textualInversions: readTextualInversions(opts.textualInversions ?? []),
      forceZerosForEmptyPrompt: modelIndex.force_zeros_for_empty_prompt !== false,
      deltas: deltas && { textEncoder: deltas.textEncoder, textEncoder2: deltas.textEncoder2 },
    });
    const { hidden, pooled } = promptEncoder.dims;
    try {
      if (unet.config.crossAttentionDim.some((d) => d !== hidden)) {
        throw new PipelineInputError(`${model.dir}: the UNet's cross_attention_dim ${unet.config.crossAttentionDim[0]} differs from the text encoders' hidden sizes together (${hidden})`);
      }
      checkTimeIdsFit(unet.config, pooled, requiresAestheticsScore(modelIndex));
    } catch (e) {
      await promptEncoder.release();
      throw e;
    }
    const components = new SdxlComponents(source, promptEncoder, unet, vae, loras, { session, onWarning: opts.onWarning }, opts.lowMemory ?? false);
    components.taesdRunner = taesd;
    return components;
  }

  /**
   * These components with more LoRAs stacked on their own (load-time ones stay): a new UNet runner
   * and, when an added LoRA touches the text encoders, a new prompt encoder, compiled with the
   * combined deltas; the VAE, TAESD, tokenizers, configs and weight files are shared.
   */
  async withLoras(added: readonly LoraSpec[]): Promise<SdxlComponents> {
    const { source, settings } = this;
    const { loras, deltas, touchesText } = readLoras(source, this.loras, added);
    const pe = this.promptEncoder;
    const promptEncoder = !touchesText ? pe : await PromptEncoder.fromWeights(pe.tokenizers, source, {
      session: pe.session, warn: settings.onWarning, promptSyntax: pe.promptSyntax, forceZerosForEmptyPrompt: pe.forceZerosForEmptyPrompt, textualInversions: pe.textualInversions,
      deltas: deltas && { textEncoder: deltas.textEncoder, textEncoder2: deltas.textEncoder2 },
    });
    const unet = UNetRunner.fromWeights(source.unet, this.unet.session, deltas?.unet);
    const variant = new SdxlComponents(source, promptEncoder, unet, this.vae, loras, settings, this.lowMemory,
      { promptEncoder: !touchesText, vae: true, taesd: true });
    variant.taesdOwner = this;
    return variant;
  }

  /**
   * These components with more textual inversions after their own (diffusers' load_textual_inversion):
   * a new prompt encoder compiled with all of them (and the LoRAs' text-encoder deltas); the UNet, VAE
   * and TAESD are borrowed, so `release` frees only the new text encoders.
   */
  async withTextualInversions(added: readonly { file: string; token?: string }[]): Promise<SdxlComponents> {
    const { source, settings } = this;
    const pe = this.promptEncoder;
    const { deltas } = readLoras(source, this.loras, []);
    const textualInversions = readTextualInversions(added, pe.textualInversions);
    const promptEncoder = await PromptEncoder.fromWeights(pe.tokenizers, source, {
      session: pe.session, warn: settings.onWarning, promptSyntax: pe.promptSyntax, forceZerosForEmptyPrompt: pe.forceZerosForEmptyPrompt, textualInversions,
      deltas: deltas && { textEncoder: deltas.textEncoder, textEncoder2: deltas.textEncoder2 },
    });
    const variant = new SdxlComponents(source, promptEncoder, this.unet, this.vae, this.loras, settings, this.lowMemory,
      { promptEncoder: false, unet: true, vae: true, taesd: true });
    variant.taesdOwner = this.taesdOwner ?? this;
    return variant;
  }

  /**
   * These components encoding and decoding with another VAE (a diffusers folder, a cached repo id or a
   * .safetensors VAE file, as the `vae` load option takes), compiled with the same session, precision
   * and tiling; everything else is borrowed, so `release` frees only that VAE.
   */
  async withVae(spec: string, opts: { variant?: Variant; env?: NodeJS.ProcessEnv } = {}): Promise<SdxlComponents> {
    const vae = this.vae.withWeights(openVaeOverride(spec, opts.variant, opts.env));
    if (vae.config.latentChannels !== this.vae.config.latentChannels || vae.scaleFactor !== this.vae.scaleFactor) {
      throw new PipelineInputError(`the VAE ${spec} has ${vae.config.latentChannels} latent channels at 1/${vae.scaleFactor} scale; this model's has ${this.vae.config.latentChannels} at 1/${this.vae.scaleFactor}`);
    }
    const variant = new SdxlComponents(this.source, this.promptEncoder, this.unet, vae, this.loras, this.settings, this.lowMemory,
      { promptEncoder: true, unet: true, vae: false, taesd: true });
    variant.taesdOwner = this.taesdOwner ?? this;
    return variant;
  }

  get model(): ModelFolder { return this.source.model; }

  /**
   * An SDXL refiner (model_index requires_aesthetics_score): conditioned on an aesthetic score instead
   * of the target size, by text_encoder_2 alone; it continues other runs (img2img, inpaint).
   */
  get requiresAestheticsScore(): boolean { return requiresAestheticsScore(this.source.modelIndex); }

  /** Pixels per latent pixel (8 for SDXL). */
  get vaeScaleFactor(): number { return this.vae.scaleFactor; }

  /** The TAESD loaded with { taesd } or loadTaesd, if any. */
  get taesd(): TaesdRunner | undefined { return this.taesdOwner ? this.taesdOwner.taesd : this.taesdRunner; }

  /** Loads a TAESD, replacing any loaded one (a LoRA variant loads it into its base). */
  async loadTaesd(spec: string, opts: { variant?: Variant; session?: SessionOptions; env?: NodeJS.ProcessEnv } = {}): Promise<TaesdRunner> {
    if (this.taesdOwner) return this.taesdOwner.loadTaesd(spec, opts);
    const taesd = TaesdRunner.open(spec, { ...opts, session: opts.session ?? this.settings.session });
    checkTaesdFits(taesd, this.vae.config.latentChannels, this.vaeScaleFactor);
    await this.taesdRunner?.release();
    this.taesdRunner = taesd;
    return taesd;
  }

  requireTaesd(what: string): TaesdRunner {
    const taesd = this.taesd;
    if (!taesd) throw new PipelineInputError(`${what} needs a TAESD: load one with { taesd: "madebyollin/taesdxl" } (a folder, cached repo id or taesdxl_decoder.safetensors; CLI --taesd) or pipe.loadTaesd(...)`);
    return taesd;
  }

  /** Low-memory mode: the text encoders go once the prompts are encoded. */
  async afterEncode(): Promise<void> { if (this.lowMemory) await this.promptEncoder.release(); }
  /** Low-memory mode: the UNet goes before decoding. */
  async afterDenoise(): Promise<void> { if (this.lowMemory) await this.unet.release(); }
  /** Low-memory mode: the decoders go after decoding. */
  async afterDecode(): Promise<void> { if (this.lowMemory) { await this.vae.release(); await this.taesd?.release(); } }

  async release(): Promise<void> {
    if (!this.borrowed.taesd) await this.taesdRunner?.release();
    if (!this.borrowed.promptEncoder) await this.promptEncoder.release();
    if (!this.borrowed.unet) await this.unet.release();
    if (!this.borrowed.vae) await this.vae.release();
  }
}

function requiresAestheticsScore(modelIndex: Record<string, unknown>): boolean { return modelIndex.requires_aesthetics_score === true; }

/** The textual inversion files read and checked (after `before`), their tokens distinct. */
function readTextualInversions(specs: readonly { file: string; token?: string }[], before: readonly TextualInversion[] = []): TextualInversion[] {
  const out: TextualInversion[] = [...before];
  for (const spec of specs) {
    let ti: TextualInversion;
    try {
      ti = readTextualInversion(spec.file, { token: spec.token });
    } catch (e) {
      if (e instanceof TextualInversionError) throw new PipelineInputError(e.message);
      throw e;
    }
    const same = out.find((t) => t.token === ti.token);
    if (same) throw new PipelineInputError(`${ti.file} and ${same.file} are both named "${ti.token}": give one another token`);
    out.push(ti);
    const total = out.reduce((n, t) => n + t.vectors, 0);
    if (total > MAX_TI_TOTAL_VECTORS) throw new PipelineInputError(`the embeddings hold ${total} vectors together (with ${ti.file}); at most ${MAX_TI_TOTAL_VECTORS} are loaded, each a row of the text encoders' token tables`);
  }
  return out;
}

/** `base` LoRAs plus `added` files read against the model, their summed deltas, and whether an added one touches the text encoders. */
function readLoras(source: ModelSource, base: readonly LoraFile[], added: readonly LoraSpec[]): { loras: LoraFile[]; deltas?: LoraDeltaSet; touchesText: boolean } {
  const loras = [...base];
  if (added.length === 0 && base.length === 0) return { loras, touchesText: false };
  const targets = new LoraTargets({ unet: source.unet.config, textEncoder: source.textEncoder?.config, textEncoder2: source.textEncoder2.config });
  const read = added.map(({ file, weight, textEncoderWeight }) => {
    if (!existsSync(file)) throw new LoraError(`LoRA file not found: ${file}`);
    return readLora(file, weight, targets, { textEncoderWeight });
  });
  loras.push(...read);
  const deltas = emptyLoraDeltaSet();
  for (const lora of loras) addLoraDeltas(lora, deltas);
  const touchesText = read.some((l) => l.deltas.textEncoder.length + l.deltas.textEncoder2.length > 0);
  return { loras, deltas, touchesText };
}
