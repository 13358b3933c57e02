/**
 * The denoising loop shared by text-to-image and image-to-image: per timestep, scale the latents
 * (doubled under guidance), run the UNet, apply guidance, step the scheduler; report each step and
 * stop when the AbortSignal fires.
 */
import type { NoiseGenerator, Scheduler } from "../schedulers/index.js";
import type { UNetRunner } from "./sessions.js";
import { applyGuidance } from "./guidance.js";

/** What onStep receives after each scheduler step. */
export interface StepInfo {
  /** 0-based index of the step just done. */
  step: number;
  /** Steps in this run (after img2img's strength cut). */
  totalSteps: number;
  timestep: number;
  /** The latents after this step [B, C, h, w] (a copy the callback may keep). */
  latents: Float32Array;
  shape: number[];
}

export type StepCallback = (info: StepInfo) => void | Promise<void>;

export interface DenoiseArgs {
  unet: UNetRunner;
  scheduler: Scheduler;
  timesteps: ArrayLike<number>;
  latents: Float32Array;
  /** [B, C, h, w] */
  shape: number[];
  /** [UNet batch, S, D]: [negative..., positive...] under guidance. */
  encoderHiddenStates: Float32Array;
  textEmbeds: Float32Array;
  timeIds: Float32Array;
  guidance: boolean;
  guidanceScale: number;
  guidanceRescale: number;
  /** [B, time_cond_proj_dim]: LCM's guidance-scale embedding, for UNets with time_cond_proj_dim. */
  timestepCond?: Float32Array;
  generator: NoiseGenerator;
  onStep?: StepCallback;
  signal?: AbortSignal;
  /** Ends the loop (no error) before the next step. */
  stopEarly?: AbortSignal;
}

/** The latents after the last step that ran, and how many ran (fewer than the timesteps after stopEarly). */
export async function denoise(a: DenoiseArgs): Promise<{ latents: Float32Array; stepsDone: number }> {
  const [b, , h, w] = a.shape;
  const unetBatch = a.guidance ? 2 * b : b;
  let latents = a.latents;
  let i = 0;
  for (; i < a.timesteps.length; i++) {
    a.signal?.throwIfAborted();
    if (a.stopEarly?.aborted) break;
    const t = a.timesteps[i];
    let input = latents;
    if (a.guidance) {
      input = new Float32Array(2 * latents.length);
      input.set(latents);
      input.set(latents, latents.length);
    }
    const sample = a.scheduler.scaleModelInput(input, t);
    const out = await a.unet.run(unetBatch, h, w, {
      sample,
      timestep: new Float32Array(unetBatch).fill(t),
      encoder_hidden_states: a.encoderHiddenStates,
      text_embeds: a.textEmbeds,
      time_ids: a.timeIds,
      timestep_cond: a.timestepCond,
    });
    const noisePred = a.guidance ? applyGuidance(out, a.guidanceScale, a.guidanceRescale, b) : out;
    latents = a.scheduler.step(noisePred, t, latents, a.generator, a.shape);
    if (a.onStep) await a.onStep({ step: i, totalSteps: a.timesteps.length, timestep: t, latents: latents.slice(), shape: [...a.shape] });
  }
  return { latents, stepsDone: i };
}
