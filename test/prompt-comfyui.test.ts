/**
 * ComfyUI's prompt syntax (prompts/comfyui.ts, promptSyntax "comfyui"): token_weights' parse as
 * ComfyUI's code defines it, word-wise 77-id chunks, and the weights applied against the empty
 * prompt's hidden states, checked on the tiny model's encoders run by hand.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { chunkComfyPrompt, parseComfyWeights } from "../src/prompts/comfyui.js";
import { PromptSyntaxError } from "../src/prompts/errors.js";
import { emptyChunk } from "../src/prompts/a1111.js";

const tmp = mkdtempSync(join(tmpdir(), "prompt-comfyui-"));
let pipe: StableDiffusionXLPipeline | undefined;
after(async () => {
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});
const open = async () => (pipe ??= await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp)));

test("comfyui weights: (x) is x 1.1 per level, (x:w) sets w, \\( \\) are literal, malformed pieces stay text", () => {
  const near = (got: [string, number][], want: [string, number][]) => {
    assert.deepEqual(got.map(([t]) => t), want.map(([t]) => t));
    got.forEach(([, w], i) => assert.ok(Math.abs(w - want[i][1]) < 1e-12, `${want[i][0]}: ${w} vs ${want[i][1]}`));
  };
  near(parseComfyWeights("a cat"), [["a cat", 1]]);
  near(parseComfyWeights("a (cat) dog"), [["a ", 1], ["cat", 1.1], [" dog", 1]]);
  near(parseComfyWeights("((cat))"), [["cat", 1.1 * 1.1]]);
  near(parseComfyWeights("(cat:1.5), ((dog:0.5))"), [["cat", 1.5], [", ", 1], ["dog", 0.5]]);
  near(parseComfyWeights("(a (b:0.5) c)"), [["a ", 1.1], ["b", 0.5], [" c", 1.1]]);
  near(parseComfyWeights("(cat:abc)"), [["cat:abc", 1.1]]);
  near(parseComfyWeights("(a:b:2)"), [["a:b", 2]]);
  near(parseComfyWeights("\\(cat\\) (dog\\):2)"), [["(cat) ", 1], ["dog)", 2]]);
  near(parseComfyWeights("(cat"), [["(cat", 1]]);
  near(parseComfyWeights("cat) (dog)"), [["cat) (dog)", 1]]);
  assert.throws(() => parseComfyWeights("(cat:inf)"), PromptSyntaxError);
  assert.throws(() => parseComfyWeights("(".repeat(65) + "x"), /nests parentheses more than 64 deep/);
});

test("comfyui chunks: BOS, 75 tokens, EOS, pads; a short piece that does not fit moves whole, a long one is cut", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const [tokL, tokG] = [p.promptEncoder.tokenizers[0]!, p.promptEncoder.tokenizers[1]];
  // a plain prompt is diffusers' padded tokenization, for each tokenizer's own pad id
  for (const tok of [tokL, tokG]) {
    const chunks = chunkComfyPrompt("An astronaut riding a green horse", tok);
    assert.equal(chunks.length, 1);
    assert.deepEqual(chunks[0].ids, tok.encodePadded("An astronaut riding a green horse"));
    assert.deepEqual(chunkComfyPrompt("", tok)[0].ids, emptyChunk({ bos: tok.bosTokenId, eos: tok.eosTokenId, pad: tok.padTokenId }).ids);
  }
  const one = tokL.encode("cat").slice(1, -1);
  assert.equal(one.length, 1);
  const word = "photorealistic";
  const wordIds = tokL.encode(word).slice(1, -1);
  assert.ok(wordIds.length > 1 && wordIds.length < 8, `${word} is ${wordIds.length} tokens`);
  // a plain prompt is one piece: cut at 75 tokens
  const plainLong = chunkComfyPrompt("cat ".repeat(100), tokL);
  assert.deepEqual(plainLong.map((c) => c.ids.filter((t) => t === one[0]).length), [75, 25]);
  // 74 tokens leave room for one more: a short piece of another weight starts chunk 2 whole
  const moved = chunkComfyPrompt(`${"cat ".repeat(74)}(${word}:1.2)`, tokL);
  assert.equal(moved.length, 2);
  assert.deepEqual(moved[0].ids.slice(74, 77), [one[0], tokL.eosTokenId, tokL.padTokenId]);
  assert.deepEqual(moved[1].ids.slice(0, wordIds.length + 2), [tokL.bosTokenId, ...wordIds, tokL.eosTokenId]);
  assert.deepEqual(moved[1].weights.slice(1, 1 + wordIds.length), wordIds.map(() => 1.2));
  // a piece of 8 tokens or more is cut where the chunk ends
  const long = "xqzjvkwpyqzxjvkwpqzxjvk";
  const longIds = tokL.encode(long).slice(1, -1);
  assert.ok(longIds.length >= 8, `${long} is ${longIds.length} tokens`);
  const cut = chunkComfyPrompt(`${"cat ".repeat(72)}(${long}:1.1)`, tokL);
  assert.deepEqual(cut[0].ids.slice(73, 77), [...longIds.slice(0, 3), tokL.eosTokenId]);
  assert.deepEqual(cut[1].ids.slice(1, 1 + longIds.length - 3), longIds.slice(3));
  // weights follow their tokens; BOS, EOS and pads weigh 1
  const w = chunkComfyPrompt("a (cat:1.5)", tokL)[0].weights;
  assert.deepEqual(w.slice(0, 4), [1, 1, 1.5, 1]);
  assert.ok(w.slice(3).every((x) => x === 1));
});

test("comfyui prompts: plain prompts are diffusers', weights move hidden states from the empty prompt's, shorter conditionings repeat", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const args = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly, blurry, poor quality" };
  const plain = await p.encodePrompt(args);
  const comfy = await p.encodePrompt({ ...args, promptSyntax: "comfyui" });
  assert.deepEqual(comfy.promptEmbeds.data, plain.promptEmbeds.data);
  assert.deepEqual(comfy.negativePromptEmbeds!.data, plain.negativePromptEmbeds!.data);
  assert.deepEqual(comfy.pooledPromptEmbeds.data, plain.pooledPromptEmbeds.data);

  // "a (red:1.5) cube": token 2 of each encoder's chunk is (z - z_empty) * 1.5 + z_empty, the rest as plain
  const weighted = await p.encodePrompt({ prompt: "a (red:1.5) cube", promptSyntax: "comfyui", doClassifierFreeGuidance: false });
  const D = weighted.promptEmbeds.shape[2];
  let col = 0;
  for (const k of [0, 1] as const) {
    const tok = p.promptEncoder.tokenizers[k]!, enc = p.promptEncoder.encoders[k]!;
    const width = enc.config.hiddenSize;
    const z = (await enc.run(BigInt64Array.from(tok.encodePadded("a red cube"), BigInt))).penultimate_hidden_state;
    const empty = (await enc.run(BigInt64Array.from(tok.encodePadded(""), BigInt))).penultimate_hidden_state;
    for (let t = 0; t < 77; t++) {
      for (let i = 0; i < width; i++) {
        const want = t === 2 ? (z[t * width + i] - empty[t * width + i]) * 1.5 + empty[t * width + i] : z[t * width + i];
        const got = weighted.promptEmbeds.data[t * D + col + i];
        assert.ok(Math.abs(got - want) <= 1e-6 * (1 + Math.abs(want)), `encoder ${k} token ${t}: ${got} vs ${want}`);
      }
    }
    col += width;
  }
  // the pooled embedding is the unweighted first chunk's
  const pooled = (await p.promptEncoder.encoders[1].run(BigInt64Array.from(p.promptEncoder.tokenizers[1].encodePadded("a red cube"), BigInt))).text_embeds!;
  assert.deepEqual(weighted.pooledPromptEmbeds.data, pooled);

  // a 2-chunk prompt with a 1-chunk negative: the negative's chunk twice (ComfyUI's repeat to the least common multiple)
  const long = await p.encodePrompt({ prompt: "cat ".repeat(100), negativePrompt: "blurry", promptSyntax: "comfyui" });
  assert.deepEqual(long.promptEmbeds.shape, [1, 154, D]);
  const neg = long.negativePromptEmbeds!.data;
  assert.deepEqual(neg.subarray(77 * D), neg.subarray(0, 77 * D));
  assert.deepEqual(neg.subarray(0, 77 * D), (await p.encodePrompt({ prompt: "blurry", doClassifierFreeGuidance: false })).promptEmbeds.data);
  // chunk counts whose least common multiple is above the limit are refused
  await assert.rejects(p.encodePrompt({ prompt: "cat ".repeat(75 * 4 + 10), negativePrompt: "dog ".repeat(75 * 3 + 10), promptSyntax: "comfyui" }), (e: Error) => e instanceof PipelineInputError && /make 5 and 4 chunks .* repeats them to 20/.test(e.message));
});
