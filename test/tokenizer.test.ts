import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLIPTokenizer } from "../src/tokenizer/index.js";
import { fixture, NO_FIXTURES } from "./helpers/fixtures.js";

interface Case {
  text: string;
  tokens: string[]; // with bos/eos, untruncated
  untruncated: number[];
  tokenizer: number[]; // padded with <|endoftext|>
  tokenizer_2: number[]; // padded with "!"
}

const load = (name: string) => CLIPTokenizer.fromDirectory(fixture("pipeline", "tiny-ssd", name));

test("special ids and max length come from the tokenizer folders", { skip: NO_FIXTURES }, () => {
  const [t1, t2] = [load("tokenizer"), load("tokenizer_2")];
  for (const t of [t1, t2]) {
    assert.equal(t.maxLength, 77);
    assert.equal(t.bosTokenId, 49406);
    assert.equal(t.eosTokenId, 49407);
  }
  assert.equal(t1.padTokenId, 49407);
  assert.equal(t2.padTokenId, 0);
});

test("every fixture case matches transformers' CLIPTokenizer exactly", { skip: NO_FIXTURES }, async (t) => {
  const { cases } = JSON.parse(readFileSync(fixture("tokenizer", "cases.json"), "utf8")) as { cases: Case[] };
  assert.equal(cases.length, 28);
  const tokenizers = { tokenizer: load("tokenizer"), tokenizer_2: load("tokenizer_2") };
  for (const [i, c] of cases.entries()) {
    await t.test(`case ${i}: ${Array.from(JSON.stringify(c.text)).slice(0, 50).join("")}`, () => {
      for (const [name, tok] of Object.entries(tokenizers)) {
        assert.deepEqual(tok.tokenize(c.text), c.tokens.slice(1, -1), `${name} tokens`);
        assert.deepEqual(tok.encode(c.text), c.untruncated, `${name} untruncated ids`);
        assert.deepEqual(tok.encodePadded(c.text), c[name as "tokenizer" | "tokenizer_2"], `${name} padded ids`);
      }
    });
  }
});

test('tokenizer_2 cuts its pad token "!" out of the text, tokenizer does not', { skip: NO_FIXTURES }, () => {
  // Reference outputs quoted in huggingface/diffusers#4153 (transformers vs open_clip).
  const text = "! !! !!!";
  assert.deepEqual(load("tokenizer").encode(text), [49406, 256, 748, 995, 49407]);
  assert.deepEqual(load("tokenizer_2").encode(text), [49406, 0, 0, 0, 0, 0, 0, 49407]);
});

test("lowercasing is per character: capital sigma becomes σ, never ς", { skip: NO_FIXTURES }, () => {
  const t = load("tokenizer");
  assert.deepEqual(t.tokenize("ΟΔΟΣ"), t.tokenize("οδοσ"));
  assert.notDeepEqual(t.tokenize("ΟΔΟΣ"), t.tokenize("οδος"));
});

test("decomposed and composed accents tokenize alike (NFC)", { skip: NO_FIXTURES }, () => {
  const t = load("tokenizer");
  assert.deepEqual(t.tokenize("cafe\u0301"), t.tokenize("caf\u00e9"));
});

test("tokenizing a prompt after loading is fast", { skip: NO_FIXTURES }, () => {
  const t = load("tokenizer");
  const prompt = "hyperrealistic glamour portrait of an old weary wizard, arcane, freckles, skin pores, 8k";
  t.encodePadded(prompt);
  const n = 200;
  const start = performance.now();
  // Distinct prompts so that the BPE cache does not hide the work.
  for (let i = 0; i < n; i++) t.encodePadded(`${prompt} variation${i} number ${i}`);
  const perPrompt = (performance.now() - start) / n;
  assert.ok(perPrompt < 1, `${perPrompt.toFixed(3)} ms per prompt`);
});

test("a folder without vocab.json fails with a message naming it", () => {
  const dir = mkdtempSync(join(tmpdir(), "clip-tokenizer-"));
  try {
    assert.throws(() => CLIPTokenizer.fromDirectory(dir), (e: Error) => e.message.includes("vocab.json") && e.message.includes(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
