/**
 * Progress previews of one job. With a TAESD loaded (`serve --taesd`), the preview is its full-size
 * decode of the latest latents: decoded in the background while sampling goes on, one decode at a
 * time (a step that comes while one runs is skipped), so the sampler is never held up. Until the
 * first TAESD image is ready, and without a TAESD, the latent-to-RGB projection stands in.
 */
import type { TaesdRunner } from "../pipelines/taesd-runner.js";
import { previewMaker } from "./latent-preview.js";

export class StepPreviews {
  private latest?: Buffer;
  private decoding = false;
  /** TAESD previews finished (for tests and logs). */
  decoded = 0;

  constructor(private readonly taesd?: TaesdRunner) {}

  /** The preview maker for one step's latents [B, C, h, w] (image 0). */
  forStep(latents: Float32Array, shape: readonly number[]): () => Buffer | undefined {
    const projection = previewMaker(latents, shape);
    if (!this.taesd) return projection;
    if (!this.decoding) {
      this.decoding = true;
      // `latents` is this step's own copy (the pipeline's onStep gets a slice)
      this.taesd.previewPng(latents, shape)
        .then((png) => { this.latest = png; this.decoded++; }, () => { /* keep the last preview */ })
        .finally(() => { this.decoding = false; });
    }
    return () => this.latest ?? projection();
  }

  /** Resolves once no TAESD decode is running (the last one's image is then `latest`). */
  async settled(): Promise<void> {
    while (this.decoding) await new Promise((r) => setTimeout(r, 5));
  }
}
