/**
 * Hostile prompts: the A1111 and LoRA-tag parsers run in linear time, the chunk and length limits
 * hold, and fuzzed prompts fail only with the parsers' own errors. FUZZ_SCALE=20 for a longer run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chunkPrompt, MAX_PROMPT_CHARS, MAX_PROMPT_CHUNKS, parsePromptAttention, PromptSyntaxError } from "../src/prompts/a1111.js";
import { extractLoraTags, LoraTagError } from "../src/prompts/lora-tags.js";
import { Prng, fuzzCases, fuzzSeed } from "./helpers/prng.js";
import { referenceAttention, referenceLoraScan } from "./helpers/prompt-reference.js";

const chars = (t: string) => [...t].map((c) => c.charCodeAt(0));
const OPTS = { bos: 1, eos: 2, comma: 44 };

const timed = <T>(f: () => T): [T, number] => { const t = performance.now(); const v = f(); return [v, performance.now() - t]; };

test("BREAK x1666 (10 KB) is refused at the chunk limit, in milliseconds", () => {
  const prompt = "BREAK ".repeat(1666);
  const t = performance.now();
  assert.throws(() => chunkPrompt(prompt, chars, OPTS), (e: Error) => e instanceof PromptSyntaxError && e.message.includes(`more than ${MAX_PROMPT_CHUNKS} chunks`));
  assert.ok(performance.now() - t < 200, `${performance.now() - t} ms`);
  // up to the limit it works
  assert.equal(chunkPrompt("a BREAK ".repeat(MAX_PROMPT_CHUNKS - 1) + "a", chars, OPTS).chunks.length, MAX_PROMPT_CHUNKS);
  assert.equal(chunkPrompt("x".repeat(75 * 40), chars, { ...OPTS, maxChunks: 40 }).chunks.length, 40);
});

test("10,000 spaces (and other long runs) parse in linear time", () => {
  for (const unit of [" ", "\t", ": ", "(", ")", "[", "\\(", "BREAK", " BREAKx", "1", ":1", "a, "]) {
    const prompt = unit.repeat(Math.floor(10_000 / unit.length));
    const [, ms] = timed(() => parsePromptAttention(prompt));
    assert.ok(ms < 150, `${JSON.stringify(unit)} x ${prompt.length / unit.length}: ${ms.toFixed(0)} ms`);
    const [, ms2] = timed(() => extractLoraTags(prompt.repeat(10))); // 100 KB: no length limit needed
    assert.ok(ms2 < 150, `LoRA tags ${JSON.stringify(unit)}: ${ms2.toFixed(0)} ms`);
  }
  // tag-shaped runs: spaces before no tag, unclosed tags, long numbers
  for (const prompt of [" ".repeat(100_000) + "<lora:", "<lora:".repeat(20_000), `<lora:x:${"1".repeat(50_000)}x>`, `${" \t".repeat(50_000)}<lora:a:1>`]) {
    const [, ms] = timed(() => { try { extractLoraTags(prompt); } catch (e) { assert.ok(e instanceof LoraTagError); } });
    assert.ok(ms < 150, `${JSON.stringify(prompt.slice(0, 20))}…: ${ms.toFixed(0)} ms`);
  }
});

test("the A1111 parser refuses prompts over MAX_PROMPT_CHARS; the worst bracket nesting under it stays fast", () => {
  assert.throws(() => parsePromptAttention("a".repeat(MAX_PROMPT_CHARS + 1)), (e: Error) => e instanceof PromptSyntaxError && e.message.includes(`limit of ${MAX_PROMPT_CHARS}`));
  const n = Math.floor(MAX_PROMPT_CHARS / 3);
  for (const prompt of ["(a".repeat(n) + ")".repeat(n), "(a".repeat(MAX_PROMPT_CHARS / 2), "[a(b".repeat(MAX_PROMPT_CHARS / 4)]) {
    const [, ms] = timed(() => parsePromptAttention(prompt));
    assert.ok(ms < 1000, `${prompt.slice(0, 8)}…: ${ms.toFixed(0)} ms`);
  }
});

const PIECES = ["(", ")", "[", "]", "\\", "\\(", "\\)", "\\\\", ":", ":1.2)", ": 0.5 )", ":-1)", ":+2.)", ":1.2.3)", ":.)", "BREAK", " BREAK ", "BREAKx", "_BREAK", "\u00e9BREAK", "a", " ", "\t", "\n", ",", "\u00e9", "\u{1F600}", "\u3000", "\ufeff", ">", "<", "1", "."];
const TAGS = ["<lora:", "<lora:x>", " <lora:x:0.8> ", "\t<lora:y:-1.5>", "<lora:x:1:2>", "<lora::1>", "<lora:x:abc>", "<lora:x:1e400>", "<lora:a<lora:b:1>"];

test("prompt fuzz: random prompts parse, chunk and strip LoRA tags or fail with the parsers' own errors", () => {
  const seed = fuzzSeed(99);
  const r = new Prng(seed);
  const cases = fuzzCases(20_000);
  const rss0 = process.memoryUsage().rss;
  let slowest = 0, failed = 0, compared = 0;
  for (let c = 0; c < cases; c++) {
    const n = r.chance(0.01) ? 2000 + r.int(4000) : r.int(60);
    const prompt = Array.from({ length: n }, () => (r.chance(0.1) ? String.fromCharCode(r.int(0x3000)) : r.chance(0.03) ? r.pick(TAGS) : r.pick(PIECES))).join("");
    if (n < 100) { // the same results as the regex versions they replaced
      const ref = referenceLoraScan(prompt);
      let got: ReturnType<typeof extractLoraTags> | undefined;
      try { got = extractLoraTags(prompt); } catch (e) { assert.ok(e instanceof LoraTagError); }
      if (got) { assert.equal(got.text, ref.text, JSON.stringify(prompt)); assert.equal(got.tags.length, ref.args.length); }
      let want: unknown, mine: unknown;
      try { want = referenceAttention(ref.text); } catch { want = "error"; }
      try { mine = parsePromptAttention(ref.text); } catch (e) { assert.ok(e instanceof PromptSyntaxError); mine = "error"; }
      assert.deepEqual(mine, want, JSON.stringify(ref.text));
      compared++;
    }
    const t = performance.now();
    try {
      const { text } = extractLoraTags(prompt);
      const parsed = parsePromptAttention(text);
      assert.ok(parsed.length > 0 && parsed.every(([s, w]) => typeof s === "string" && Number.isFinite(w) || w === Infinity || w === -Infinity));
      const { chunks } = chunkPrompt(text, chars, OPTS);
      assert.ok(chunks.length >= 1 && chunks.length <= MAX_PROMPT_CHUNKS && chunks.every((k) => k.ids.length === 77 && k.weights.length === 77));
    } catch (e) {
      failed++;
      if (!(e instanceof PromptSyntaxError || e instanceof LoraTagError)) assert.fail(`seed ${seed} case ${c}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${JSON.stringify(prompt.slice(0, 300))}`);
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
  const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(`prompt fuzz: ${cases} cases (seed ${seed}), ${compared} compared with the regex parsers, ${failed} refused; slowest ${slowest.toFixed(0)} ms; rss +${grown.toFixed(0)} MiB`);
  assert.ok(slowest < 500, `a case took ${slowest} ms`);
  assert.ok(grown < 256, `rss grew ${grown.toFixed(0)} MiB`);
});
