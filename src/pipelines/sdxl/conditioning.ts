/**
 * Everything the UNet is conditioned on besides the latents, and the guidance batch layout in one
 * place: under classifier-free guidance the UNet batch is [negative x B, positive x B]; A1111's AND has
 * one positive block per sub-prompt, perturbed-attention guidance (PAG) a perturbed positive block
 * after the others (diffusers' _prepare_perturbed_attention_guidance). Embeddings, pooled embeddings,
 * time ids and the latents (repeated by `modelInput`) follow it; `guide` turns the UNet's blocks into
 * one noise prediction. LCM UNets (time_cond_proj_dim) get the guidance scale as an embedding instead
 * and no negative block.
 */
import type { FloatTensor } from "../../image/image.js";
import type { UNetFeeds } from "../sessions.js";
import type { PromptEmbeddings } from "../prompt-encoding.js";
import { applyComposableGuidance, applyGuidance, applyPerturbedGuidance, guidanceScaleEmbedding, pagScaleAt } from "../guidance.js";

export interface GuidanceSettings {
  /** Classifier-free guidance: the [negative, positive] UNet batch. */
  guidance: boolean;
  guidanceScale: number;
  guidanceRescale: number;
  /** The UNet's time_cond_proj_dim (LCM), if any. */
  timeCondProjDim?: number | null;
  /** Perturbed-attention guidance (on: a perturbed positive block; diffusers' pag_scale, pag_adaptive_scale). */
  pag?: { scale: number; adaptiveScale: number };
  /** A1111's AND: the weights of k positive blocks (the embeddings hold k·B positive rows, block by block). */
  composable?: readonly number[];
}

export class UNetConditioning {
  private constructor(
    /** Images per batch (the latents' B). */
    readonly batch: number,
    readonly settings: GuidanceSettings,
    /** [UNet batch, S, D] */
    readonly encoderHiddenStates: Float32Array,
    /** [UNet batch, projection_dim] */
    readonly textEmbeds: Float32Array,
    /** [UNet batch, 6] */
    readonly timeIds: Float32Array,
    /** [B, time_cond_proj_dim]: LCM's guidance-scale embedding. */
    readonly timestepCond?: Float32Array,
  ) {}

  /**
   * The conditioning of `embeds` (negatives present under guidance) with time ids already laid out
   * for the UNet batch (see micro-conditioning.ts).
   */
  static of(embeds: PromptEmbeddings, timeIds: Float32Array, settings: GuidanceSettings): UNetConditioning {
    const g = settings.guidance, pag = settings.pag !== undefined;
    const cat = (neg: FloatTensor | undefined, pos: FloatTensor) => concat(...(g ? [neg!.data] : []), pos.data, ...(pag ? [pos.data] : []));
    const batch = embeds.promptEmbeds.shape[0] / (settings.composable?.length ?? 1);
    const dim = settings.timeCondProjDim;
    let timestepCond: Float32Array | undefined;
    if (dim) {
      // get_guidance_scale_embedding(guidance_scale - 1) for each row of the UNet batch
      const one = guidanceScaleEmbedding(settings.guidanceScale - 1, dim);
      const rows = batch * (pag ? 2 : 1);
      timestepCond = new Float32Array(rows * dim);
      for (let b = 0; b < rows; b++) timestepCond.set(one, b * dim);
    }
    return new UNetConditioning(batch, settings, cat(embeds.negativePromptEmbeds, embeds.promptEmbeds),
      cat(embeds.negativePooledPromptEmbeds, embeds.pooledPromptEmbeds), timeIds, timestepCond);
  }

  get guidance(): boolean { return this.settings.guidance; }

  /** Perturbed-attention guidance: the UNet batch ends with a perturbed positive block of `batch` rows. */
  get pag(): boolean { return this.settings.pag !== undefined; }

  /** Blocks of `batch` rows in the UNet batch: negative (under guidance), positive (one per AND sub-prompt), perturbed (with PAG). */
  private get blocks(): number { return (this.settings.guidance ? 1 : 0) + (this.settings.composable?.length ?? 1) + (this.pag ? 1 : 0); }

  /** The UNet's batch: B per block. */
  get unetBatch(): number { return this.blocks * this.batch; }

  /** The latents as the UNet batch: cat([latents] * blocks). */
  modelInput(latents: Float32Array): Float32Array {
    return this.blocks === 1 ? latents : concat(...Array.from({ length: this.blocks }, () => latents));
  }

  /** The UNet feeds for a (scaled, batched) sample at timestep t. */
  feeds(sample: Float32Array, t: number): UNetFeeds {
    return {
      sample,
      timestep: new Float32Array(this.unetBatch).fill(t),
      encoder_hidden_states: this.encoderHiddenStates,
      text_embeds: this.textEmbeds,
      time_ids: this.timeIds,
      timestep_cond: this.timestepCond,
    };
  }

  /** The positive block of a UNet-batch tensor (all of it without guidance or PAG), e.g. for ControlNet's guess mode. */
  conditional(x: Float32Array): Float32Array {
    const n = x.length / this.blocks, at = this.settings.guidance ? 1 : 0;
    return this.blocks === 1 ? x : x.subarray(at * n, (at + 1) * n);
  }

  /** The noise prediction from the UNet output at timestep t: guidance (and its rescale) over the blocks. */
  guide(unetOut: Float32Array, t: number): Float32Array {
    const s = this.settings;
    if (s.composable) return applyComposableGuidance(unetOut, s.guidanceScale, s.composable);
    if (s.pag) return applyPerturbedGuidance(unetOut, s.guidance ? s.guidanceScale : undefined, pagScaleAt(s.pag, t), s.guidanceRescale, this.batch);
    return s.guidance ? applyGuidance(unetOut, s.guidanceScale, s.guidanceRescale, this.batch) : unetOut;
  }
}

function concat(...parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
