import { test } from "node:test";
import assert from "node:assert/strict";
import { fixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { CLIPTokenizer } from "../src/tokenizer/index.js";
import { applyEmphasis, chunkPrompt, chunkPromptWith, emptyChunk, parsePromptAttention, PromptSyntaxError, type WeightedText } from "../src/prompts/a1111.js";

// Expected values as AUTOMATIC1111's parse_prompt_attention returns them (its doctests and more);
// weights are compared exactly: the same float64 products in the same order.
const CASES: [string, WeightedText[]][] = [
  ["normal text", [["normal text", 1]]],
  ["an (important) word", [["an ", 1], ["important", 1.1], [" word", 1]]],
  ["(unbalanced", [["unbalanced", 1.1]]],
  ["\\(literal\\]", [["(literal]", 1]]],
  ["(unnecessary)(parens)", [["unnecessaryparens", 1.1]]],
  ["a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).", [
    ["a ", 1], ["house", 1.5730000000000004], [" ", 1.1], ["on", 1], [" a ", 1.1], ["hill", 0.55],
    [", sun, ", 1.1], ["sky", 1.4641000000000006], [".", 1.1],
  ]],
  ["", [["", 1]]],
  ["[faded]", [["faded", 1 / 1.1]]],
  ["[[x]]", [["x", (1 / 1.1) * (1 / 1.1)]]],
  ["((x))", [["x", 1.1 * 1.1]]],
  ["(x:1.3)", [["x", 1.3]]],
  ["(x: 0.5 )", [["x", 0.5]]],
  ["(x:.5)", [["x", 0.5]]],
  ["(x:-1)", [["x", -1]]],
  ["(x:+2.)", [["x", 2]]],
  ["((x:1.5))", [["x", 1.5 * 1.1]]],
  ["(a [b] c)", [["a ", 1.1], ["b", 1.1 * (1 / 1.1)], [" c", 1.1]]],
  ["x:1.3) y", [["x:1.3) y", 1]]], // weight without an open bracket: literal text
  ["a) b] c", [["a) b] c", 1]]], // stray closers are text
  ["[unbalanced square", [["unbalanced square", 1 / 1.1]]],
  ["((a) b", [["a", 1.1 * 1.1], [" b", 1.1]]],
  ["time: 12:30", [["time: 12:30", 1]]],
  ["a \\\\ b", [["a \\ b", 1]]],
  ["trailing \\", [["trailing ", 1]]], // a lone backslash vanishes, as in A1111
  ["\\(x:1.2\\)", [["(x:1.2)", 1]]],
  ["a BREAK b", [["a", 1], ["BREAK", -1], ["b", 1]]],
  ["aBREAK b", [["aBREAK b", 1]]], // BREAK only as a whole word
  ["(a BREAK b)", [["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]], // inside brackets it is just text
];

test("parsePromptAttention matches A1111 (nesting, escapes, numbers, BREAK, unbalanced brackets)", () => {
  for (const [prompt, expected] of CASES) assert.deepEqual(parsePromptAttention(prompt), expected, JSON.stringify(prompt));
});

test("an unparsable emphasis number is an error, as in A1111", () => {
  assert.throws(() => parsePromptAttention("(x:1.2.3)"), PromptSyntaxError);
  assert.throws(() => parsePromptAttention("(x:.)"), /invalid emphasis weight/);
});

// A toy tokenizer: one id per character (its code), so ',' is 44.
const chars = (t: string) => [...t].map((c) => c.charCodeAt(0));
const OPTS = { bos: 1, eos: 2, comma: 44 };

test("chunks: BOS + 75 + EOS with per-token weights; BREAK forces a new chunk", () => {
  const { chunks, tokenCount } = chunkPrompt("ab(c)", chars, OPTS);
  assert.equal(chunks.length, 1);
  assert.equal(tokenCount, 3);
  assert.deepEqual(chunks[0].ids.slice(0, 5), [1, 97, 98, 99, 2]);
  assert.deepEqual(chunks[0].weights.slice(0, 5), [1, 1, 1, 1.1, 1]);
  assert.equal(chunks[0].ids.length, 77);
  assert.ok(chunks[0].ids.slice(4).every((id) => id === 2));

  const broken = chunkPrompt("ab BREAK cd", chars, OPTS).chunks;
  assert.equal(broken.length, 2);
  assert.deepEqual(broken[0].ids.slice(0, 4), [1, 97, 98, 2]);
  assert.deepEqual(broken[1].ids.slice(0, 4), [1, 99, 100, 2]);
  assert.equal(chunkPrompt("BREAK", chars, OPTS).chunks.length, 1);
  assert.equal(chunkPrompt("", chars, OPTS).chunks.length, 1);

  // A pad id other than EOS replaces everything after the first EOS (OpenCLIP / tokenizer_2).
  const padded = chunkPrompt("ab", chars, { ...OPTS, pad: 0 }).chunks[0].ids;
  assert.deepEqual(padded.slice(0, 5), [1, 97, 98, 2, 0]);
  assert.ok(padded.slice(4).every((id) => id === 0));
  assert.deepEqual(emptyChunk({ bos: 1, eos: 2, pad: 0 }).ids.slice(0, 3), [1, 2, 0]);
});

test("chunks: 75 tokens fill a chunk; text after a nearby comma moves on (comma_padding_backtrack)", () => {
  const exact = chunkPrompt("x".repeat(75), chars, OPTS);
  assert.equal(exact.chunks.length, 1);
  assert.equal(exact.tokenCount, 75);
  const over = chunkPrompt("x".repeat(76), chars, OPTS);
  assert.equal(over.chunks.length, 2);
  assert.equal(over.tokenCount, 76);
  assert.deepEqual(over.chunks[1].ids.slice(0, 3), [1, 120, 2]);

  // 70 letters, a comma, 10 letters: the 4 letters already past the comma move to chunk 2 with the rest.
  const prompt = `${"a".repeat(70)},${"b".repeat(10)}`;
  const moved = chunkPrompt(prompt, chars, OPTS).chunks;
  assert.equal(moved.length, 2);
  assert.equal(moved[0].ids[71], 44);
  assert.equal(moved[0].ids[72], 2);
  assert.deepEqual(moved[1].ids.slice(0, 12), [1, ...Array(10).fill(98), 2]);
  const cut = chunkPrompt(prompt, chars, { ...OPTS, commaBacktrack: 0 }).chunks;
  assert.deepEqual(cut[1].ids.slice(0, 8), [1, ...Array(6).fill(98), 2]);
});

test("applyEmphasis scales tokens and restores the mean (A1111 'Original')", () => {
  const h = Float32Array.from([1, 2, 3, 4]);
  applyEmphasis(h, [1, 2], 2);
  // scaled [1,2,6,8] (sum 17), restored to sum 10
  const k = 10 / 17;
  assert.deepEqual(Array.from(h), [1 * k, 2 * k, 6 * k, 8 * k].map(Math.fround));
  const n = Float32Array.from([1, 2, 3, 4]);
  applyEmphasis(n, [1, 2], 2, "no-norm");
  assert.deepEqual(Array.from(n), [1, 2, 6, 8]);
});

test("a long prompt gives 2 chunks of 77 ids with the CLIP tokenizer", { skip: NO_FIXTURES }, () => {
  const tok = CLIPTokenizer.fromDirectory(fixture("pipeline", "tiny-ssd", "tokenizer"));
  const prompt = Array.from({ length: 30 }, (_, i) => `(red apple:1.2) number ${i}`).join(" ");
  const { chunks, tokenCount } = chunkPromptWith(prompt, tok);
  assert.equal(chunks.length, 2);
  assert.ok(tokenCount > 75 && tokenCount <= 150, `token count ${tokenCount}`);
  for (const c of chunks) {
    assert.equal(c.ids.length, 77);
    assert.equal(c.weights.length, 77);
    assert.equal(c.ids[0], tok.bosTokenId);
    assert.equal(c.ids[76], tok.eosTokenId);
  }
  // The chunks hold the prompt's ids in order, weights follow the emphasis.
  const body = chunks.flatMap((c) => c.ids.slice(1, 76).filter((id) => id !== tok.eosTokenId));
  const plain = tok.encode(prompt.replace(/[()]|:1\.2/g, "")).slice(1, -1);
  assert.deepEqual(body, plain);
  const red = tok.encode("red").slice(1, -1)[0];
  const i = chunks[0].ids.indexOf(red);
  assert.equal(chunks[0].weights[i], 1.2);
  assert.equal(chunks[0].weights[chunks[0].ids.indexOf(tok.encode("number").slice(1, -1)[0])], 1);

  // A short prompt without emphasis equals diffusers' padded ids, for both tokenizers.
  const tok2 = CLIPTokenizer.fromDirectory(fixture("pipeline", "tiny-ssd", "tokenizer_2"));
  for (const t of [tok, tok2]) {
    const one = chunkPromptWith("An astronaut riding a green horse", t).chunks;
    assert.equal(one.length, 1);
    assert.deepEqual(one[0].ids, t.encodePadded("An astronaut riding a green horse"));
  }
});
