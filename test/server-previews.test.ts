/**
 * Server progress previews: the latent-to-RGB projection (one pixel per latent pixel) without a
 * TAESD, the TAESD's full-size decode with one (`serve --taesd`), made in the background.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, HAVE_FIXTURES, fixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng } from "../src/image/png.js";
import { runJob } from "../src/server/run-job.js";
import type { JobSpec } from "../src/server/job.js";

const tmp = mkdtempSync(join(tmpdir(), "server-previews-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A small AutoencoderTiny with the tiny-ssd VAE's scale factor (2: two stages). */
function tinyTaesd(): string {
  const dir = join(tmp, "taesd");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify({
    _class_name: "AutoencoderTiny", act_fn: "relu", latent_channels: 4,
    decoder_block_out_channels: [8, 8], num_decoder_blocks: [1, 1],
    encoder_block_out_channels: [8, 8], num_encoder_blocks: [1, 1],
  }));
  synthModel(dir, "fp32");
  return dir;
}

async function stepPreviews(pipe: StableDiffusionXLPipeline): Promise<{ sizes: number[][]; steps: number }> {
  const c = JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "cases.json"), "utf8")).basic;
  const spec: JobSpec = { prompt: c.prompt, steps: 4, guidanceScale: c.guidance_scale, seed: 1, width: 32, height: 32, batchSize: 1, iterations: 1 };
  const makers: (() => Buffer | undefined)[] = [];
  const out = await runJob(pipe, spec, { onStep: (r) => makers.push(r.preview) });
  assert.equal(out.images.length, 1);
  const sizes = makers.map((m) => { const img = decodePng(m()!); return [img.width, img.height]; });
  return { sizes, steps: makers.length };
}

test("previews: latent projection without a TAESD, the TAESD's full-size image with one", { skip: NO_FIXTURES }, async () => {
  const dir = tinyModelIn(tmp);
  const plain = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    const { sizes, steps } = await stepPreviews(plain);
    assert.equal(steps, 4);
    for (const s of sizes) assert.deepEqual(s, [16, 16], "one pixel per latent pixel");
  } finally {
    await plain.release();
  }
  const withTaesd = await StableDiffusionXLPipeline.fromPretrained(dir, { taesd: HAVE_FIXTURES ? tinyTaesd() : "" });
  try {
    const { sizes } = await stepPreviews(withTaesd);
    // once the background decode has finished (at the latest when the job ends), previews are the TAESD's
    assert.deepEqual(sizes.at(-1), [32, 32]);
    for (const s of sizes) assert.ok([16, 32].includes(s[0]), `preview ${s}`);
  } finally {
    await withTaesd.release();
  }
});

test("a withLoras variant uses its base's TAESD, also one loaded later", { skip: NO_FIXTURES }, async () => {
  const base = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  try {
    const variant = await base.withLoras([]);
    assert.equal(variant.taesd, undefined);
    const taesd = await base.loadTaesd(tinyTaesd());
    assert.equal(variant.taesd, taesd);
    const img = await variant.previewDecode(new Float32Array(4 * 16 * 16), [1, 4, 16, 16]);
    assert.deepEqual([img.width, img.height], [32, 32]);
    await variant.release();
    assert.equal(base.taesd, taesd, "releasing the variant leaves the base's TAESD");
  } finally {
    await base.release();
  }
});
