/**
 * What every synchronous generation endpoint does with its checked request: queue the job, name it
 * in the X-Job-Id and X-Seed headers, cancel it if the client goes away before the answer, and
 * wait for the images (or the job's error, thrown as an HttpError).
 */
import type { Ctx } from "./http.js";
import type { VaeLibrary } from "./vae-library.js";
import type { Job, JobOutput, JobSpec } from "./job.js";
import type { JobQueue } from "./queue.js";
import type { FileStore } from "./file-store.js";
import type { Limits } from "./validation.js";
import type { LoraLibrary } from "./lora-library.js";
import type { UpscalerLibrary } from "./upscaler-library.js";
import { formatLoraTag } from "../prompts/lora-tags.js";
import type { ControlNetLibrary } from "./controlnet-library.js";
import type { PromptStyles } from "./prompt-styles.js";
import type { EmbeddingsListing } from "./embeddings-listing.js";

/** What the routes share. */
export interface AppState {
  queue: JobQueue;
  files: FileStore;
  limits: Limits;
  log: (line: string) => void;
  startedAt: number;
  /** --lora-dir: the LoRAs requests may name; absent: requests with LoRAs get a 400. */
  loras?: LoraLibrary;
  /** --fast: requests may ask for preset "fast" (the runner has the LCM-LoRA and a TAESD). */
  fast?: boolean;
  /** What GET /sdapi/v1/cmd-flags reports: the settings the server runs with, under A1111's flag names. */
  cmdFlags?: Record<string, unknown>;
  /** --upscaler-dir: the upscalers of /sdapi/v1/upscalers and extra-single-image (absent: the model-free ones). */
  upscalers?: UpscalerLibrary;
  /** --vae-dir: the VAE files A1111's sd_vae and ComfyUI's VAELoader may name (absent: the model's own VAE only). */
  vaes?: VaeLibrary;
  /** What POST /sdapi/v1/options set (checked; the UniPC settings among them apply to later requests). */
  a1111Options?: Record<string, unknown>;
  /** --controlnet-dir: the ControlNets requests may name; absent: requests with ControlNets get a 400. */
  controlnets?: ControlNetLibrary;
  /** --styles-file: the A1111 styles requests may name; absent: a request with styles gets a 400. */
  styles?: PromptStyles;
  /** --embedding, --embeddings-dir: the textual inversions the runners hold (GET /sdapi/v1/embeddings, ComfyUI's /embeddings). */
  embeddings?: EmbeddingsListing;
}

/** ", LoRAs <lora:a:1> ..., ControlNets ..." for log lines. */
export const loraNote = (spec: JobSpec): string => (spec.loras?.length ? `, LoRAs ${spec.loras.map(formatLoraTag).join(" ")}` : "") + (spec.preset ? `, preset ${spec.preset}` : "")
  + (spec.controlnets?.length ? `, ControlNets ${spec.controlnets.map((u) => `${u.name} (${u.module}, ${u.weight})`).join(" ")}${spec.guessMode ? " guess mode" : ""}` : "");

export async function generateForRequest(ctx: Ctx<AppState>, spec: JobSpec): Promise<{ job: Job; output: JobOutput }> {
  const { res, state } = ctx;
  const job = await state.queue.submit(spec);
  res.setHeader("X-Job-Id", job.id);
  res.setHeader("X-Seed", String(spec.seed));
  state.log(`job ${job.id}: ${ctx.req.method} ${ctx.url.pathname} ${spec.inpaint || spec.noiseMask ? "inpaint" : spec.initImage ? "img2img" : "txt2img"} seed ${spec.seed}, ${spec.steps} steps, ${spec.batchSize * spec.iterations} image(s)${loraNote(spec)}`);
  const onClose = () => { if (!res.writableFinished) job.cancel("disconnected"); };
  res.on("close", onClose);
  try {
    const output = await job.done;
    state.log(`job ${job.id}: done in ${output.seconds.toFixed(2)} s`);
    return { job, output };
  } catch (e) {
    state.log(`job ${job.id}: ${(e as Error).message}`);
    throw e;
  } finally {
    // the answer is being written: a close from now on is the normal end
    res.off("close", onClose);
  }
}
