/**
 * Everything the UNet is conditioned on besides the latents, and the classifier-free-guidance batch
 * layout in one place: under guidance the UNet batch is [negative x B, positive x B] (embeddings,
 * pooled embeddings, time ids, and the latents doubled by `modelInput`), and `guide` turns the UNet's
 * two halves into one noise prediction. LCM UNets (time_cond_proj_dim) get the guidance scale as an
 * embedding instead and no doubled batch.
 */
import type { FloatTensor } from "../../image/image.js";
import type { UNetFeeds } from "../sessions.js";
import type { PromptEmbeddings } from "../prompt-encoding.js";
import { applyGuidance, guidanceScaleEmbedding } from "../guidance.js";

export interface GuidanceSettings {
  /** Classifier-free guidance: the [negative, positive] UNet batch. */
  guidance: boolean;
  guidanceScale: number;
  guidanceRescale: number;
  /** The UNet's time_cond_proj_dim (LCM), if any. */
  timeCondProjDim?: number | null;
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
    const g = settings.guidance;
    const cat = (neg: FloatTensor | undefined, pos: FloatTensor) => (g ? concat(neg!.data, pos.data) : pos.data);
    const batch = embeds.promptEmbeds.shape[0];
    const dim = settings.timeCondProjDim;
    let timestepCond: Float32Array | undefined;
    if (dim) {
      // get_guidance_scale_embedding(guidance_scale - 1) for each image
      const one = guidanceScaleEmbedding(settings.guidanceScale - 1, dim);
      timestepCond = new Float32Array(batch * dim);
      for (let b = 0; b < batch; b++) timestepCond.set(one, b * dim);
    }
    return new UNetConditioning(batch, settings, cat(embeds.negativePromptEmbeds, embeds.promptEmbeds),
      cat(embeds.negativePooledPromptEmbeds, embeds.pooledPromptEmbeds), timeIds, timestepCond);
  }

  get guidance(): boolean { return this.settings.guidance; }

  /** The UNet's batch: 2B under guidance. */
  get unetBatch(): number { return this.settings.guidance ? 2 * this.batch : this.batch; }

  /** The latents as the UNet batch: cat([latents] * 2) under guidance. */
  modelInput(latents: Float32Array): Float32Array {
    return this.settings.guidance ? concat(latents, latents) : latents;
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

  /** The conditional half of a UNet-batch tensor (all of it without guidance), e.g. for ControlNet's guess mode. */
  conditional(x: Float32Array): Float32Array {
    return this.settings.guidance ? x.subarray(x.length / 2) : x;
  }

  /** The noise prediction from the UNet output: guidance (and its rescale) over the two halves. */
  guide(unetOut: Float32Array): Float32Array {
    const s = this.settings;
    return s.guidance ? applyGuidance(unetOut, s.guidanceScale, s.guidanceRescale, this.batch) : unetOut;
  }
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
