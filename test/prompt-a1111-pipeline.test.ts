import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import type { UNetFeeds } from "../src/pipelines/sessions.js";
import { applyEmphasis, chunkPromptWith } from "../src/prompts/a1111.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const tmp = mkdtempSync(join(tmpdir(), "prompt-a1111-"));
let pipe: StableDiffusionXLPipeline | undefined;
after(async () => {
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

const tinyModel = () => tinyModelIn(tmp);
const open = async () => (pipe ??= await StableDiffusionXLPipeline.fromPretrained(tinyModel()));

const LONG = () => JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "cases.json"), "utf8")).long_prompt as { prompt: string; negative_prompt: string };

/** Columns [from, to) of each row of [rows, width] data. */
function columns(data: Float32Array, width: number, from: number, to: number): Float32Array {
  const rows = data.length / width;
  const out = new Float32Array(rows * (to - from));
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * width + from, r * width + to), r * (to - from));
  return out;
}

test("a1111 prompts: a plain prompt gives exactly the diffusers embeddings", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  for (const args of [
    { prompt: "An astronaut riding a green horse", negativePrompt: "ugly, blurry, poor quality" },
    { prompt: ["a red cube", "a blue sphere on grass"], numImagesPerPrompt: 2 }, // zero negatives (force_zeros_for_empty_prompt)
    { prompt: "a castle", negativePrompt: "" },
  ]) {
    const plain = await p.encodePrompt(args);
    const a1111 = await p.encodePrompt({ ...args, promptSyntax: "a1111" });
    assert.deepEqual(a1111.promptEmbeds.shape, plain.promptEmbeds.shape);
    assert.deepEqual(a1111.promptEmbeds.data, plain.promptEmbeds.data);
    assert.deepEqual(a1111.pooledPromptEmbeds.data, plain.pooledPromptEmbeds.data);
    assert.deepEqual(a1111.negativePromptEmbeds?.data, plain.negativePromptEmbeds?.data);
    assert.deepEqual(a1111.negativePooledPromptEmbeds?.data, plain.negativePooledPromptEmbeds?.data);
  }
});

test("a1111 prompts: a long prompt gives 154-token embeddings, chunk by chunk, and the pipeline runs on them", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const p = await open();
  const { prompt, negative_prompt: negativePrompt } = LONG();
  const tok = p.promptEncoder.tokenizers[0]!;
  assert.ok(tok.encode(prompt).length > 77, "the prompt is longer than 77 tokens");
  const e = await p.encodePrompt({ prompt, negativePrompt, promptSyntax: "a1111" });
  assert.deepEqual(e.promptEmbeds.shape, [1, 154, 64]);
  assert.deepEqual(e.negativePromptEmbeds!.shape, [1, 154, 64], "the negative prompt is filled up to the same chunk count");
  assert.deepEqual(e.pooledPromptEmbeds.shape, [1, 32]);
  // The second chunk of text_encoder's half is that encoder's output for the chunk's 77 ids.
  const { chunks } = chunkPromptWith(prompt, tok);
  assert.equal(chunks.length, 2);
  const enc = p.promptEncoder.encoders[0]!;
  const d1 = enc.config.hiddenSize;
  const second = (await enc.run(BigInt64Array.from(chunks[1].ids, BigInt))).penultimate_hidden_state;
  assert.deepEqual(columns(e.promptEmbeds.data, 64, 0, d1).subarray(77 * d1), second);
  // The pooled embedding is the first chunk's.
  const chunks2 = chunkPromptWith(prompt, p.promptEncoder.tokenizers[1]).chunks;
  const first2 = await p.promptEncoder.encoders[1].run(BigInt64Array.from(chunks2[0].ids, BigInt));
  assert.deepEqual(e.pooledPromptEmbeds.data, first2.text_embeds);

  const seen: UNetFeeds[] = [];
  const run = p.unet.run.bind(p.unet);
  p.unet.run = (b, h, w, feeds) => { seen.push(feeds); return run(b, h, w, feeds); };
  try {
    const out = await p.generate({ prompt, negativePrompt, promptSyntax: "a1111", numInferenceSteps: 2, seed: 2024, scheduler: "euler" });
    assert.equal(seen.length, 2);
    assert.equal(seen[0].encoder_hidden_states.length, 2 * 154 * 64, "UNet sequence 154");
    assert.ok(out.images.data.every(Number.isFinite));
    // BREAK starts a new chunk; no negative prompt gives zeros of the same length
    const brk = await p.generate({ prompt: "a cat BREAK a dog", promptSyntax: "a1111", numInferenceSteps: 1, seed: 1, outputType: "latent" });
    assert.equal(seen[2].encoder_hidden_states.length, 2 * 154 * 64);
    assert.ok(brk.latents.data.every(Number.isFinite));
  } finally {
    p.unet.run = run;
  }
});

test("a1111 prompts: emphasis scales each encoder's hidden states and restores their mean", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const plain = await p.encodePrompt({ prompt: "a cat", doClassifierFreeGuidance: false });
  const weighted = await p.encodePrompt({ prompt: "a (cat:1.3)", promptSyntax: "a1111", doClassifierFreeGuidance: false });
  const weights = Array(77).fill(1);
  weights[2] = 1.3; // BOS, "a", "cat"
  const d1 = p.promptEncoder.encoders[0]!.config.hiddenSize;
  for (const [from, to] of [[0, d1], [d1, 64]]) {
    const expected = columns(plain.promptEmbeds.data, 64, from, to);
    applyEmphasis(expected, weights, to - from);
    assert.deepEqual(columns(weighted.promptEmbeds.data, 64, from, to), expected);
  }
  assert.deepEqual(weighted.pooledPromptEmbeds.data, plain.pooledPromptEmbeds.data, "emphasis leaves the pooled embedding");
  // the default syntax takes the brackets literally
  const literal = await p.encodePrompt({ prompt: "a (cat:1.3)", doClassifierFreeGuidance: false });
  assert.notDeepEqual(literal.promptEmbeds.data, weighted.promptEmbeds.data);
  await assert.rejects(p.encodePrompt({ prompt: "x", promptSyntax: "markdown" as "a1111" }), (e: Error) => e instanceof PipelineInputError && /unknown prompt syntax "markdown"/.test(e.message));
});

test("cli --prompt-syntax a1111: a long prompt runs; an unknown syntax is a usage error", { skip: NO_FIXTURES, timeout: 300_000 }, () => {
  const dir = tinyModel();
  const ssd1b = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  const out = join(tmp, "cli", "long.png");
  const r = ssd1b(["generate", "--model", dir, "--prompt", LONG().prompt, "--prompt-syntax", "a1111", "--steps", "1", "--seed", "1", "--output", out]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /truncated/);
  const bad = ssd1b(["generate", "--model", dir, "--prompt", "x", "--prompt-syntax", "comfy", "--output", out]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--prompt-syntax must be diffusers, a1111 or comfyui, got "comfy"/);
});
