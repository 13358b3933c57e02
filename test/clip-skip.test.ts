import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { TensorStore } from "../src/safetensors/index.js";
import type { UNetFeeds } from "../src/pipelines/sessions.js";

const tmp = mkdtempSync(join(tmpdir(), "clip-skip-"));
let pipe: StableDiffusionXLPipeline | undefined;
after(async () => {
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});
const open = async () => (pipe ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp)));

const PROMPT = "An astronaut riding a green horse";

/** Entry `i` of stacked [N, 1, S, D] hidden states. */
const layer = (stacked: Float32Array, size: number, i: number) => stacked.subarray(i * size, (i + 1) * size);

/** Columns [from, to) of each row of [rows, width] data. */
function columns(data: Float32Array, width: number, from: number, to: number): Float32Array {
  const rows = data.length / width;
  const out = new Float32Array(rows * (to - from));
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * width + from, r * width + to), r * (to - from));
  return out;
}

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

test("CLIP hidden_states: embeddings first, each layer's output after, the penultimate at -2, final_layer_norm(last) = last_hidden_state", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const enc = p.promptEncoder.encoders[0]!;
  const { hiddenSize: D, numHiddenLayers: L } = enc.config;
  const ids = p.promptEncoder.tokenizers[0]!.encodePadded(PROMPT);
  const S = ids.length;
  const out = await enc.run(BigInt64Array.from(ids, BigInt));
  const size = S * D;
  assert.equal(out.hidden_states.length, (L + 1) * size, "numHiddenLayers + 1 entries");
  assert.deepEqual(layer(out.hidden_states, size, L - 1), out.penultimate_hidden_state);
  // hidden_states[0]: token embedding + position embedding, from the weight file by hand
  const w = TensorStore.open(join(tinyModelIn(tmp), "text_encoder", "model.safetensors"));
  const tokens = w.float32("text_model.embeddings.token_embedding.weight"), positions = w.float32("text_model.embeddings.position_embedding.weight");
  const emb = new Float32Array(size);
  for (let s = 0; s < S; s++) for (let d = 0; d < D; d++) emb[s * D + d] = tokens[ids[s] * D + d] + positions[s * D + d];
  assert.ok(maxAbsDiff(layer(out.hidden_states, size, 0), emb) <= 1e-6, "hidden_states[0] = embeddings");
  // last_hidden_state = final_layer_norm(hidden_states[-1]), by hand
  const gamma = w.float32("text_model.final_layer_norm.weight"), beta = w.float32("text_model.final_layer_norm.bias");
  const last = layer(out.hidden_states, size, L);
  const normed = new Float32Array(size);
  for (let s = 0; s < S; s++) {
    const row = last.subarray(s * D, (s + 1) * D);
    const mean = row.reduce((a, v) => a + v, 0) / D;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / D;
    for (let d = 0; d < D; d++) normed[s * D + d] = ((row[d] - mean) / Math.sqrt(variance + enc.config.layerNormEps)) * gamma[d] + beta[d];
  }
  assert.ok(maxAbsDiff(normed, out.last_hidden_state) <= 1e-5, `final_layer_norm(hidden_states[-1]) = last_hidden_state (max|Δ| ${maxAbsDiff(normed, out.last_hidden_state)})`);
});

test("clipSkip: diffusers' hidden_states[-(clip_skip + 2)] of both encoders; the pooled embedding stays; per encoder with -1 for the last layer", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const [e1, e2] = [p.promptEncoder.encoders[0]!, p.promptEncoder.encoders[1]];
  const d1 = e1.config.hiddenSize, D = d1 + e2.config.hiddenSize;
  const run = async (k: 0 | 1) => (await p.promptEncoder.encoders[k]!.run(BigInt64Array.from(p.promptEncoder.tokenizers[k]!.encodePadded(PROMPT), BigInt)));
  const [o1, o2] = [await run(0), await run(1)];
  const size1 = o1.penultimate_hidden_state.length, size2 = o2.penultimate_hidden_state.length;
  const fromEnd = (o: typeof o1, size: number, n: number) => layer(o.hidden_states, size, o.hidden_states.length / size - n);

  const plain = await p.encodePrompt({ prompt: PROMPT, negativePrompt: "blurry" });
  const zero = await p.encodePrompt({ prompt: PROMPT, negativePrompt: "blurry", clipSkip: 0 });
  assert.deepEqual(zero.promptEmbeds.data, plain.promptEmbeds.data, "clipSkip 0 is the default");

  for (const skip of [1, 2, e1.config.numHiddenLayers - 1]) {
    const e = await p.encodePrompt({ prompt: PROMPT, negativePrompt: "blurry", clipSkip: skip });
    assert.deepEqual(columns(e.promptEmbeds.data, D, 0, d1), fromEnd(o1, size1, skip + 2), `text_encoder at clip skip ${skip}`);
    assert.deepEqual(columns(e.promptEmbeds.data, D, d1, D), fromEnd(o2, size2, skip + 2), `text_encoder_2 at clip skip ${skip}`);
    assert.deepEqual(e.pooledPromptEmbeds.data, plain.pooledPromptEmbeds.data, "pooled: text_encoder_2's last layer, whatever the skip");
    assert.notDeepEqual(e.negativePromptEmbeds!.data, plain.negativePromptEmbeds!.data, "the negative prompt is skipped too");
    // A1111 syntax: same layer choice for a plain prompt
    const a = await p.encodePrompt({ prompt: PROMPT, negativePrompt: "blurry", clipSkip: skip, promptSyntax: "a1111" });
    assert.deepEqual(a.promptEmbeds.data, e.promptEmbeds.data, `a1111 syntax at clip skip ${skip}`);
  }
  // A1111's sdxl_clip_l_skip with "Clip skip: 1": CLIP-L's last layer (not normed), CLIP-G's penultimate
  const l = await p.encodePrompt({ prompt: PROMPT, clipSkip: { textEncoder: -1 } });
  assert.deepEqual(columns(l.promptEmbeds.data, D, 0, d1), fromEnd(o1, size1, 1));
  assert.deepEqual(columns(l.promptEmbeds.data, D, d1, D), columns(plain.promptEmbeds.data, D, d1, D));
});

test("clipSkip: bad values are input errors naming the range", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const L = p.promptEncoder.encoders[0]!.config.numHiddenLayers;
  for (const clipSkip of [-1, 1.5, L, Number.NaN, { textEncoder: -2 }, { textEncoder2: L }]) {
    await assert.rejects(p.encodePrompt({ prompt: PROMPT, clipSkip }), (e: Error) => e instanceof PipelineInputError && /clipSkip.* must be an integer from -?\d+ to \d+/.test(e.message), JSON.stringify(clipSkip));
  }
});

test("clipSkip in generate: the UNet gets the skipped embeddings, negative half first", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const p = await open();
  const e = await p.encodePrompt({ prompt: PROMPT, negativePrompt: "blurry", clipSkip: 1 });
  const seen: UNetFeeds[] = [];
  const run = p.unet.run.bind(p.unet);
  p.unet.run = (b, h, w, feeds) => { seen.push(feeds); return run(b, h, w, feeds); };
  try {
    await p.generate({ prompt: PROMPT, negativePrompt: "blurry", clipSkip: 1, numInferenceSteps: 1, guidanceScale: 5, width: 32, height: 32, seed: 3, outputType: "latent" });
  } finally {
    p.unet.run = run;
  }
  const n = e.promptEmbeds.data.length;
  assert.deepEqual(seen[0].encoder_hidden_states.subarray(0, n), e.negativePromptEmbeds!.data);
  assert.deepEqual(seen[0].encoder_hidden_states.subarray(n), e.promptEmbeds.data);
});
