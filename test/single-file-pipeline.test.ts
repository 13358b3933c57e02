import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, assertMaxAbs, assertModuleClose, fixture, openFixture } from "./helpers/fixtures.js";
import { StableDiffusionXLPipeline, type GenerateOptions } from "../src/pipelines/sdxl/index.js";
import { SingleFileError } from "../src/loaders/single-file.js";
import { ModelSourceError, openModelSource } from "../src/loaders/model-source.js";
import { decodePng } from "../src/image/png.js";
import { saveTensors, TensorStore } from "../src/safetensors/index.js";
import { synthModel } from "../src/cli/commands/synth.js";

const TOL = 2e-3;
const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const SGM_FILE = () => fixture("single-file", "tiny-ssd-sgm.safetensors");
const TINY = () => fixture("pipeline", "tiny-ssd");

const tmp = mkdtempSync(join(tmpdir(), "single-file-pipeline-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
/** An empty Hugging Face cache: nothing found there by accident. */
const EMPTY_HF = { HF_HOME: join(tmp, "no-hf"), HF_HUB_CACHE: "", HUGGINGFACE_HUB_CACHE: "" };

function basicOptions(): GenerateOptions {
  const c = JSON.parse(readFileSync(join(TINY(), "cases.json"), "utf8")).basic;
  return { prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler };
}

test("single-file pipeline: the SGM checkpoint with --config tiny-ssd reproduces the pipeline basic case", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(SGM_FILE(), { config: TINY(), env: EMPTY_HF });
  try {
    assert.equal(pipe.source.format, "single-file");
    assert.equal(pipe.model.name, "tiny-ssd-sgm");
    assert.equal(pipe.source.textEncoder2.transposedKeys?.has("text_projection.weight"), true);
    const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors");
    const opts = basicOptions();
    const emb = await pipe.encodePrompt({ ...opts, doClassifierFreeGuidance: true });
    // the pooled embedding goes through the transposed text_projection
    assertModuleClose(emb.pooledPromptEmbeds.data, ref.float32("basic.pooled_prompt_embeds"), "pooled_prompt_embeds");
    assertModuleClose(emb.promptEmbeds.data, ref.float32("basic.prompt_embeds"), "prompt_embeds");
    assertModuleClose(emb.negativePooledPromptEmbeds!.data, ref.float32("basic.negative_pooled_prompt_embeds"), "negative_pooled_prompt_embeds");
    const steps: Float32Array[] = [];
    const out = await pipe.generate({ ...opts, onStep: ({ latents }) => { steps.push(latents); } });
    steps.forEach((lat, i) => assertMaxAbs(lat, ref.float32(`basic.latents_after_step${i}`), TOL, `latents after step ${i}`));
    const d = assertMaxAbs(out.images.data, ref.float32("basic.images"), TOL, "images");
    t.diagnostic(`images: max|d| ${d.maxAbs.toExponential(2)}`);
  } finally {
    await pipe.release();
  }
});

test("single-file pipeline: tokenizers from --config, a diffusers folder next to the file, the HF cache, else a clear error", { skip: NO_FIXTURES }, () => {
  // --config with configs only: tokenizers must come from elsewhere
  const configs = join(tmp, "configs-only");
  for (const c of ["unet", "vae", "text_encoder", "text_encoder_2", "scheduler"]) cpSync(join(TINY(), c), join(configs, c), { recursive: true });
  const alone = join(tmp, "alone");
  mkdirSync(alone);
  const file = join(alone, "model.safetensors");
  symlinkSync(SGM_FILE(), file);
  assert.throws(() => openModelSource(file, { config: configs, env: EMPTY_HF }), (e: Error) => e instanceof ModelSourceError
    && /has no tokenizer/.test(e.message) && e.message.includes(alone) && /segmind\/SSD-1B/.test(e.message) && /--config DIR/.test(e.message));
  // from the Hugging Face cache (refs/main of segmind/SSD-1B)
  const hf = join(tmp, "hf");
  const snap = join(hf, "hub", "models--segmind--SSD-1B", "snapshots", "abc");
  for (const tk of ["tokenizer", "tokenizer_2"]) cpSync(join(TINY(), tk), join(snap, tk), { recursive: true });
  mkdirSync(join(hf, "hub", "models--segmind--SSD-1B", "refs"));
  writeFileSync(join(hf, "hub", "models--segmind--SSD-1B", "refs", "main"), "abc");
  const env = { HF_HOME: hf, HF_HUB_CACHE: "", HUGGINGFACE_HUB_CACHE: "" };
  const fromCache = openModelSource(file, { config: configs, env });
  assert.equal(fromCache.tokenizersFrom, snap);
  assert.equal(fromCache.tokenizers[1].padTokenId, 0, "tokenizer_2 pads with !");
  // a diffusers folder next to the file wins over the cache (only vocab.json + merges.txt: SDXL's special tokens)
  for (const tk of ["tokenizer", "tokenizer_2"]) {
    mkdirSync(join(alone, tk));
    for (const f of ["vocab.json", "merges.txt"]) cpSync(join(TINY(), tk, f), join(alone, tk, f));
  }
  const next = openModelSource(file, { config: configs, env });
  assert.equal(next.tokenizersFrom, alone);
  assert.equal(next.tokenizers[1].padTokenId, 0);
  assert.deepEqual(next.tokenizers[0]!.encodePadded("a cat"), fromCache.tokenizers[0]!.encodePadded("a cat"));
  assert.deepEqual(next.tokenizers[1].encodePadded("a cat"), fromCache.tokenizers[1].encodePadded("a cat"));
});

test("single-file pipeline: a truncated file, a missing file and --config on a diffusers folder are clear errors", { skip: NO_FIXTURES }, async () => {
  const bytes = readFileSync(SGM_FILE());
  const cut = join(tmp, "cut.safetensors");
  writeFileSync(cut, bytes.subarray(0, bytes.length - 4096));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(cut, { config: TINY() }),
    (e: Error) => e instanceof SingleFileError && /truncated/.test(e.message) && e.message.includes(cut));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(join(tmp, "missing.safetensors")), /single-file checkpoint not found: .*missing\.safetensors/);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(TINY(), { config: TINY() }), /applies to single-file checkpoints/);
});

test("single-file pipeline: a checkpoint without a VAE asks for --vae, and runs with one", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const store = TensorStore.open(SGM_FILE());
  const noVae = join(tmp, "no-vae.safetensors");
  // one read of the file: a read per tensor kept 967 copies of it (24 GB) alive through the subarrays
  const bytes = readFileSync(SGM_FILE());
  saveTensors(noVae, Object.fromEntries([...store.tensors].filter(([k]) => !k.startsWith("first_stage_model."))
    .map(([k, e]) => [k, { dtype: e.dtype, shape: e.shape, data: bytes.subarray(e.offset, e.offset + e.byteLength) }])));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(noVae, { config: TINY() }), /holds no VAE \(no first_stage_model\.\* tensors\); pass --vae DIR/);
  const vae = join(tmp, "vae");
  cpSync(join(TINY(), "vae"), vae, { recursive: true });
  synthModel(vae, "fp32");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(noVae, { config: TINY(), vae });
  try {
    const out = await pipe.generate(basicOptions());
    assertMaxAbs(out.images.data, openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images"), TOL, "images");
  } finally {
    await pipe.release();
  }
});

function ssd1b(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("cli --model FILE.safetensors --config DIR: the basic case as a PNG (within 1 level); a truncated file fails clearly", { skip: NO_FIXTURES, timeout: 300_000 }, (t) => {
  const out = join(tmp, "cli", "sgm.png");
  const o = basicOptions();
  const r = ssd1b(["generate", "--model", SGM_FILE(), "--config", TINY(), "--prompt", String(o.prompt), "--negative-prompt", String(o.negativePrompt),
    "--steps", "4", "--guidance", "5", "--seed", "0", "--scheduler", "euler", "--output", out], EMPTY_HF);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /loaded .*tiny-ssd-sgm\.safetensors \(single file; tokenizers from .*tiny-ssd\)/);
  const png = decodePng(readFileSync(out));
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(png.data[i] - ref[i] * 255));
  t.diagnostic(`max difference ${m.toFixed(3)} levels`);
  assert.ok(m <= 1, `PNG vs basic: ${m} levels`);
  assert.match(png.text.parameters, /Model: tiny-ssd-sgm$/);

  const cut = join(tmp, "cut-cli.safetensors");
  const bytes = readFileSync(SGM_FILE());
  writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
  const bad = ssd1b(["generate", "--model", cut, "--config", TINY(), "--prompt", "x", "--output", join(tmp, "cli", "x.png")], EMPTY_HF);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error: .*cut-cli\.safetensors: unreadable single-file checkpoint \(truncated or corrupt download\?\)/);
  assert.ok(!bad.stderr.includes("    at "), "no stack trace");
  const noConfig = ssd1b(["generate", "--model", SGM_FILE(), "--prompt", "x", "--output", join(tmp, "cli", "x.png")], EMPTY_HF);
  assert.equal(noConfig.code, 1);
  assert.match(noConfig.stderr, /matches none of sdxl, ssd-1b, vega, sdxl-refiner; pass --config DIR/);
});
