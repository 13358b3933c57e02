/**
 * The one denoising loop of every entry point (text-to-image, image-to-image, inpainting, ControlNet,
 * the hires fix's second pass): per timestep, scale the latents (the UNet batch laid out by the
 * conditioning), run the UNet, guide, step the scheduler; report each step; stop when the AbortSignal
 * fires. What differs between entry points comes in as hooks, applied in order:
 *   - `extendSample`: extra input channels after scaling (9-channel inpainting UNets: mask, masked image);
 *   - `residuals`: residuals added to the UNet's skip connections and mid block (ControlNet; summed over hooks);
 *   - `afterStep`: a constraint on the stepped latents (inpainting's blend of the known region).
 */
import type { NoiseGenerator, Scheduler } from "../../schedulers/index.js";
import type { UNetFeeds, UNetResidualFeeds, UNetRunner, UNetRunOptions } from "../sessions.js";
import { sumResiduals } from "../controlnet-residuals.js";
import type { UNetConditioning } from "./conditioning.js";

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

/** Where a hook is called: step i of `totalSteps`, at timestep t. */
export interface StepContext {
  step: number;
  totalSteps: number;
  timestep: number;
  /** All timesteps of the run. */
  timesteps: ArrayLike<number>;
  /** The running scheduler (e.g. for add_noise at the next timestep). */
  scheduler: Scheduler;
}

export interface DenoiseHook {
  /** The scaled UNet-batch sample -> the UNet's sample input (e.g. with more channels). */
  extendSample?(sample: Float32Array, ctx: StepContext): Float32Array;
  /**
   * Residuals for the UNet's skip connections and mid block at this step, given the scaled
   * UNet-batch sample before `extendSample` (what diffusers hands a ControlNet) and the UNet feeds.
   */
  residuals?(sample: Float32Array, feeds: UNetFeeds, ctx: StepContext): Promise<UNetResidualFeeds>;
  /** The latents after the scheduler step -> the latents the loop continues with. */
  afterStep?(latents: Float32Array, ctx: StepContext): Float32Array;
}

export interface DenoiseArgs {
  unet: UNetRunner;
  scheduler: Scheduler;
  timesteps: ArrayLike<number>;
  latents: Float32Array;
  /** [B, C, h, w] */
  shape: number[];
  conditioning: UNetConditioning;
  generator: NoiseGenerator;
  hooks?: readonly DenoiseHook[];
  onStep?: StepCallback;
  signal?: AbortSignal;
  /** Ends the loop (no error) before the next step. */
  stopEarly?: AbortSignal;
  /** A1111's tiling: the UNet with circular conv padding. */
  tiling?: boolean;
  /** FreeU on the UNet's up blocks (checked). */
  freeu?: UNetRunOptions["freeu"];
  /** PAG's self-attention layers (checked), when the conditioning has the perturbed block. */
  pagLayers?: readonly string[];
  /** A1111's prompt editing: the conditioning of model call i (same batch layout as `conditioning`). */
  conditioningAt?: (call: number) => UNetConditioning;
}

/** The latents after the last step that ran, and how many ran (fewer than the timesteps after stopEarly). */
export async function denoise(a: DenoiseArgs): Promise<{ latents: Float32Array; stepsDone: number }> {
  const [, , h, w] = a.shape;
  let cond = a.conditioning;
  const hooks = a.hooks ?? [];
  const totalSteps = a.timesteps.length;
  if (cond.pag !== (a.pagLayers !== undefined)) throw new Error("denoise: PAG's perturbed block and its layers come together");
  let latents = a.latents;
  let i = 0;
  for (; i < totalSteps; i++) {
    a.signal?.throwIfAborted();
    if (a.stopEarly?.aborted) break;
    const t = a.timesteps[i];
    const ctx: StepContext = { step: i, totalSteps, timestep: t, timesteps: a.timesteps, scheduler: a.scheduler };
    if (a.conditioningAt) cond = a.conditioningAt(i);
    const scaled = a.scheduler.scaleModelInput(cond.modelInput(latents), t);
    let sample = scaled;
    for (const hook of hooks) if (hook.extendSample) sample = hook.extendSample(sample, ctx);
    const feeds = cond.feeds(sample, t);
    let residuals: UNetResidualFeeds | undefined;
    for (const hook of hooks) {
      if (!hook.residuals) continue;
      const r = await hook.residuals(scaled, feeds, ctx);
      residuals = residuals ? sumResiduals([residuals, r]) : r;
    }
    const pag = a.pagLayers && { layers: a.pagLayers, perturbedRows: cond.batch };
    const out = await a.unet.run(cond.unetBatch, h, w, feeds, { residuals, tiling: a.tiling, freeu: a.freeu, pag });
    latents = a.scheduler.step(cond.guide(out, t), t, latents, a.generator, a.shape);
    for (const hook of hooks) if (hook.afterStep) latents = hook.afterStep(latents, ctx);
    if (a.onStep) await a.onStep({ step: i, totalSteps, timestep: t, latents: latents.slice(), shape: [...a.shape] });
  }
  return { latents, stepsDone: i };
}
