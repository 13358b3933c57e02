/**
 * Textual inversions (SDXL embeddings): an embedding whose vectors are the token-table rows of "red"
 * and "cube" must encode exactly as those words do, wherever each prompt syntax finds it (diffusers'
 * added token, A1111's name, ComfyUI's embedding:NAME); diffusers pools where the argmax of the ids
 * lands (on the embedding), A1111 and ComfyUI at the end-of-text token. Whole vectors stay in one
 * A1111 chunk; bad files and unknown names are errors naming them. The server lists them as A1111
 * and ComfyUI do and its prompts use them; the CLI loads a folder of them.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { startLocalServer } from "./helpers/local-server.js";
import { txt2imgFirst } from "./helpers/a1111-client.js";
import { comfyRefused, runComfyPrompt } from "./helpers/comfy-client.js";
import { runCli } from "./helpers/cli.js";
import { BROWSER_SKIP, launchBrowser, openReadyPage } from "./helpers/browser.js";
import { decodePng } from "../src/image/png.js";
import { readTextualInversion, scanEmbeddingsFolder, TextualInversionError } from "../src/loaders/textual-inversion.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { readFloat32, readHeader, saveTensors } from "../src/safetensors/index.js";
import { chunkPromptWith } from "../src/prompts/a1111.js";
import { EmbeddingVocabulary } from "../src/prompts/embeddings.js";
import { CLIPTokenizer } from "../src/tokenizer/index.js";

const tmp = mkdtempSync(join(tmpdir(), "textual-inversion-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Rows `ids` of a text encoder's token table. */
function tokenRows(model: string, encoder: string, ids: number[]): { data: Float32Array; width: number } {
  const entry = readHeader(join(model, encoder, "model.safetensors")).tensors.get("text_model.embeddings.token_embedding.weight")!;
  const table = readFloat32(entry), width = entry.shape[1];
  const data = new Float32Array(ids.length * width);
  ids.forEach((id, k) => data.set(table.subarray(id * width, (id + 1) * width), k * width));
  return { data, width };
}

function writeEmbedding(file: string, l: { data: Float32Array; width: number }, g: { data: Float32Array; width: number }): string {
  saveTensors(file, {
    clip_l: { dtype: "F32", shape: [l.data.length / l.width, l.width], data: l.data },
    clip_g: { dtype: "F32", shape: [g.data.length / g.width, g.width], data: g.data },
  });
  return file;
}

let pipe: StableDiffusionXLPipeline | undefined, plain: StableDiffusionXLPipeline | undefined;
let redCube: number[] = [];
async function open() {
  if (pipe) return { pipe, plain: plain! };
  const model = tinyModelIn(tmp, "tiny-sdxl");
  const tok = CLIPTokenizer.fromDirectory(join(model, "tokenizer"));
  redCube = tok.encode("red cube").slice(1, -1);
  assert.equal(redCube.length, 2);
  const file = writeEmbedding(join(tmp, "redcube.safetensors"), tokenRows(model, "text_encoder", redCube), tokenRows(model, "text_encoder_2", redCube));
  pipe = await StableDiffusionXLPipeline.fromPretrained(model, { textualInversions: [{ file }] });
  plain = await StableDiffusionXLPipeline.fromPretrained(model);
  return { pipe, plain };
}
after(async () => { await pipe?.release(); await plain?.release(); });

const same = (a: { data: Float32Array }, b: { data: Float32Array }) => assert.deepEqual(Array.from(a.data), Array.from(b.data));

test("an embedding of the rows of 'red cube' encodes as those words: A1111's name (any case), ComfyUI's embedding:NAME", { skip: NO_FIXTURES }, async () => {
  const { pipe: p, plain: q } = await open();
  assert.deepEqual(p.textualInversions.map((t) => [t.token, t.vectors]), [["redcube", 2]]);
  const words = await q.encodePrompt({ prompt: "a photo of red cube, on a table", negativePrompt: "blurry", promptSyntax: "a1111" });
  for (const prompt of ["a photo of redcube, on a table", "a photo of RedCube, on a table"]) {
    const e = await p.encodePrompt({ prompt, negativePrompt: "blurry", promptSyntax: "a1111" });
    same(e.promptEmbeds, words.promptEmbeds);
    same(e.pooledPromptEmbeds, words.pooledPromptEmbeds);
  }
  // the words themselves are unchanged by having the embedding loaded
  same((await p.encodePrompt({ prompt: "a photo of red cube, on a table", negativePrompt: "blurry", promptSyntax: "a1111" })).promptEmbeds, words.promptEmbeds);
  // emphasis weighs its vectors as the words'
  const weighted = await p.encodePrompt({ prompt: "a photo of (redcube:1.3), on a table", promptSyntax: "a1111" });
  same(weighted.promptEmbeds, (await q.encodePrompt({ prompt: "a photo of (red cube:1.3), on a table", promptSyntax: "a1111" })).promptEmbeds);

  const comfyWords = await q.encodePrompt({ prompt: "a photo of red cube, on a table", promptSyntax: "comfyui" });
  for (const prompt of ["a photo of embedding:redcube, on a table", "a photo of embedding:redcube.safetensors , on a table"]) {
    const e = await p.encodePrompt({ prompt, promptSyntax: "comfyui" });
    same(e.promptEmbeds, comfyWords.promptEmbeds);
    same(e.pooledPromptEmbeds, comfyWords.pooledPromptEmbeds);
  }
  // ComfyUI's name is a word of its own: "redcube" alone is text there
  assert.notDeepEqual(Array.from((await p.encodePrompt({ prompt: "a photo of redcube, on a table", promptSyntax: "comfyui" })).promptEmbeds.data), Array.from(comfyWords.promptEmbeds.data));
  await assert.rejects(p.encodePrompt({ prompt: "a photo of embedding:bluecube", promptSyntax: "comfyui" }), (e: Error) => e instanceof PipelineInputError && /embedding:bluecube is not an embedding here \(embeddings: redcube\)/.test(e.message));
  await assert.rejects(q.encodePrompt({ prompt: "embedding:redcube, a photo", promptSyntax: "comfyui" }), /embedding:redcube, is not an embedding here \(none is loaded/);
});

test("diffusers: the token as an added token (exact case, anywhere), pooled where transformers' argmax of the ids lands", { skip: NO_FIXTURES }, async () => {
  const { pipe: p, plain: q } = await open();
  const words = await q.encodePrompt({ prompt: "a photo of red cube on a table", negativePrompt: "" });
  const e = await p.encodePrompt({ prompt: "a photo of redcube on a table", negativePrompt: "" });
  same(e.promptEmbeds, words.promptEmbeds);
  same(e.negativePromptEmbeds!, words.negativePromptEmbeds!);
  // the embedding's ids (vocab + row) are the largest: the pooled output is the last hidden state there, not at EOS
  assert.notDeepEqual(Array.from(e.pooledPromptEmbeds.data), Array.from(words.pooledPromptEmbeds.data));
  const encoder = p.promptEncoder.encoders[1];
  const tok = p.promptEncoder.tokenizers[1];
  const content = p.promptEncoder.embeddings!.diffusersIds("a photo of redcube on a table", (t) => tok.encode(t).slice(1, -1), encoder.config.vocabSize);
  const ids = [tok.bosTokenId, ...content, tok.eosTokenId];
  while (ids.length < tok.maxLength) ids.push(tok.padTokenId);
  const out = await encoder.run(BigInt64Array.from(ids, BigInt));
  const at = ids.indexOf(Math.max(...ids)), width = encoder.config.hiddenSize;
  assert.equal(ids[at], encoder.config.vocabSize + 1, "the embedding's second vector");
  assert.deepEqual(Array.from(out.pooled), Array.from(out.last_hidden_state.subarray(at * width, (at + 1) * width)));
  // an added token matches its exact text only: "RedCube" is plain text
  assert.notDeepEqual(Array.from((await p.encodePrompt({ prompt: "a photo of RedCube on a table", negativePrompt: "" })).promptEmbeds.data), Array.from(words.promptEmbeds.data));
  // the whole pipeline: the same image as the words in A1111's syntax (pooled at EOS there)
  const call = { width: 32, height: 32, numInferenceSteps: 3, seed: 2, scheduler: "EulerDiscreteScheduler", promptSyntax: "a1111" as const, outputType: "latent" as const };
  same((await p.generate({ ...call, prompt: "a redcube" })).latents, (await q.generate({ ...call, prompt: "a red cube" })).latents);
});

test("A1111 chunks: an embedding's vectors are not cut at 75 tokens, they move to the next chunk whole", () => {
  const tok = { bosTokenId: 1, eosTokenId: 2, padTokenId: 2, encode: (t: string) => [1, ...t.split(" ").filter(Boolean).map((w) => (w === "emb" ? 7 : 5)), 2] };
  const vocab = new EmbeddingVocabulary([{ token: "emb", vectors: 3 }]);
  const finder = vocab.a1111Finder((t) => tok.encode(t).slice(1, -1));
  const { chunks } = chunkPromptWith(`${"w ".repeat(73)}emb w`, tok, { findEmbedding: finder, commaBacktrack: 0 });
  assert.equal(chunks.length, 2);
  assert.deepEqual(chunks[0].ids.slice(70, 77), [5, 5, 5, 5, 2, 2, 2], "73 words, then the chunk closes");
  assert.deepEqual(chunks[1].ids.slice(0, 6), [1, -3, -2, -1, 5, 2], "the three vectors (ids r - k) at the next chunk's start");
  // within a chunk they take the place of the name's ids
  assert.deepEqual(chunkPromptWith("w emb w", tok, { findEmbedding: finder }).chunks[0].ids.slice(0, 7), [1, 5, -3, -2, -1, 5, 2]);
});

test("embedding files that do not fit are refused naming the file and what is wrong", { skip: NO_FIXTURES }, async () => {
  const model = tinyModelIn(tmp, "tiny-sdxl");
  const l = tokenRows(model, "text_encoder", [10, 11]), g = tokenRows(model, "text_encoder_2", [10, 11]);
  const cases: [string, () => string, RegExp][] = [
    ["sd1", () => { const f = join(tmp, "sd1.safetensors"); saveTensors(f, { emb_params: { dtype: "F32", shape: [2, 768], data: new Float32Array(1536) } }); return f; }, /is not an SDXL embedding .*emb_params.*SD 1\.x embedding/],
    ["counts", () => writeEmbedding(join(tmp, "counts.safetensors"), l, { data: g.data.subarray(0, g.width), width: g.width }), /clip_l has 2 vectors but clip_g 1/],
    ["width", () => writeEmbedding(join(tmp, "width.safetensors"), { data: new Float32Array(2 * (l.width + 1)), width: l.width + 1 }, g), /its clip_l vectors are \d+ wide, the text encoder's are \d+/],
    ["missing", () => join(tmp, "nope.safetensors"), /nope\.safetensors/],
  ];
  for (const [what, make, message] of cases) {
    await assert.rejects(StableDiffusionXLPipeline.fromPretrained(model, { textualInversions: [{ file: make() }] }), (e: Error) => e instanceof PipelineInputError && message.test(e.message), what);
  }
  // 55 embeddings of 75 vectors are 4125, more than the 4096 held together: refused before any session is made
  const wide = { data: new Float32Array(75 * l.width), width: l.width }, wideG = { data: new Float32Array(75 * g.width), width: g.width };
  const many = Array.from({ length: 55 }, (_, i) => ({ file: writeEmbedding(join(tmp, `many-${i}.safetensors`), wide, wideG) }));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(model, { textualInversions: many }), (e: Error) => e instanceof PipelineInputError && /hold 4125 vectors together .*many-54.*at most 4096/.test(e.message));
  const ok = writeEmbedding(join(tmp, "twice.safetensors"), l, g);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(model, { textualInversions: [{ file: ok }, { file: ok }] }), /both named "twice"/);
});

/** diffusers' textual_inversion_sdxl.py output: one tensor per encoder, named by the placeholder token. */
function writeDiffusersPair(dir: string, token: string, l: { data: Float32Array; width: number }, g: { data: Float32Array; width: number }, suffix = "", shapeOf = (r: { data: Float32Array; width: number }) => [r.data.length / r.width, r.width]): string {
  mkdirSync(dir, { recursive: true });
  saveTensors(join(dir, `learned_embeds${suffix}.safetensors`), { [token]: { dtype: "F32", shape: shapeOf(l), data: l.data } });
  saveTensors(join(dir, `learned_embeds_2${suffix}.safetensors`), { [token]: { dtype: "F32", shape: shapeOf(g), data: g.data } });
  return dir;
}

test("diffusers' trained pair (learned_embeds + learned_embeds_2): by either file or their folder, named by its placeholder token", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const { pipe: p, plain: q } = await open();
  const model = tinyModelIn(tmp, "tiny-sdxl");
  const l = tokenRows(model, "text_encoder", redCube), g = tokenRows(model, "text_encoder_2", redCube);
  const dir = writeDiffusersPair(join(tmp, "trained", "red-cube"), "<red-cube>", l, g);
  writeDiffusersPair(dir, "<red-cube>", l, g, "-steps-500");
  const ref = p.textualInversions[0];
  for (const file of [dir, join(dir, "learned_embeds.safetensors"), join(dir, "learned_embeds_2.safetensors"), join(dir, "learned_embeds_2-steps-500.safetensors")]) {
    const ti = readTextualInversion(file, { dims: [l.width, g.width] });
    assert.deepEqual([ti.token, ti.vectors], ["<red-cube>", 2], file);
    assert.deepEqual(Array.from(ti.clipL), Array.from(ref.clipL), file);
    assert.deepEqual(Array.from(ti.clipG), Array.from(ref.clipG), file);
  }
  assert.equal(readTextualInversion(dir, { token: "rc2" }).token, "rc2");
  // one vector saved 1-D (older scripts) reads as one row
  const one = writeDiffusersPair(join(tmp, "trained", "one"), "<one>", { data: l.data.subarray(0, l.width), width: l.width }, { data: g.data.subarray(0, g.width), width: g.width }, "", (r) => [r.width]);
  assert.equal(readTextualInversion(one).vectors, 1);
  // the pipeline: diffusers' added token, exactly as the clip_l/clip_g file under the same token
  const more = await q.withTextualInversions([{ file: dir }]);
  try {
    const asFile = await q.withTextualInversions([{ file: join(tmp, "redcube.safetensors"), token: "<red-cube>" }]);
    try {
      const prompt = { prompt: "a photo of <red-cube> on a table", negativePrompt: "" };
      const [a, b] = [await more.encodePrompt(prompt), await asFile.encodePrompt(prompt)];
      same(a.promptEmbeds, b.promptEmbeds);
      same(a.pooledPromptEmbeds, b.pooledPromptEmbeds);
      same((await more.encodePrompt({ prompt: "a photo of <red-cube> on a table", promptSyntax: "a1111" })).promptEmbeds, (await q.encodePrompt({ prompt: "a photo of red cube on a table", promptSyntax: "a1111" })).promptEmbeds);
    } finally { await asFile.release(); }
  } finally { await more.release(); }
  // a folder scan lists each pair once, by its token (the checkpoint's name is then taken)
  const scanned = scanEmbeddingsFolder(join(tmp, "trained"));
  assert.deepEqual(scanned.loaded.map((e) => [e.token, e.file]), [["<one>", join(tmp, "trained", "one", "learned_embeds.safetensors")], ["<red-cube>", join(dir, "learned_embeds-steps-500.safetensors")]]);
  assert.deepEqual(scanned.skipped.map((e) => [e.file, /name is taken/.test(e.why)]), [[join(dir, "learned_embeds.safetensors"), true]]);
  // a lone file, two tokens, two tensors: refused naming what is wrong
  const lone = join(tmp, "lone");
  mkdirSync(lone, { recursive: true });
  saveTensors(join(lone, "learned_embeds.safetensors"), { "<x>": { dtype: "F32", shape: [1, l.width], data: l.data.subarray(0, l.width) } });
  assert.throws(() => readTextualInversion(join(lone, "learned_embeds.safetensors")), (e: Error) => e instanceof TextualInversionError && /learned_embeds_2\.safetensors not found: a diffusers-trained embedding is the pair/.test(e.message));
  assert.equal(readTextualInversion(writeDiffusersPair(join(tmp, "mixed"), "<a>", l, g)).token, "<a>");
  saveTensors(join(tmp, "mixed", "learned_embeds_2.safetensors"), { "<b>": { dtype: "F32", shape: [2, g.width], data: g.data } });
  assert.throws(() => readTextualInversion(join(tmp, "mixed")), /names its token "<a>" but .*learned_embeds_2\.safetensors "<b>"/);
  saveTensors(join(tmp, "mixed", "learned_embeds_2.safetensors"), { "<a>": { dtype: "F32", shape: [2, g.width], data: g.data }, "<a>_1": { dtype: "F32", shape: [2, g.width], data: g.data } });
  assert.throws(() => readTextualInversion(join(tmp, "mixed")), /holds 2 tensors; a diffusers embedding file holds one/);
  // a clip_l/clip_g file keeps its layout whatever its name
  const named = join(tmp, "named");
  mkdirSync(named, { recursive: true });
  assert.equal(readTextualInversion(writeEmbedding(join(named, "learned_embeds.safetensors"), l, g)).token, "learned_embeds");
});

test("serve: /sdapi/v1/embeddings and ComfyUI's /embeddings list them; A1111 and ComfyUI prompts use them", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { pipe: p } = await open();
  const dir = join(tmp, "embeddings");
  mkdirSync(join(dir, "sub"), { recursive: true });
  copyFileSync(join(tmp, "redcube.safetensors"), join(dir, "sub", "redcube.safetensors"));
  saveTensors(join(dir, "old-sd1.safetensors"), { emb_params: { dtype: "F32", shape: [1, 768], data: new Float32Array(768) } });
  const folder = scanEmbeddingsFolder(dir);
  assert.deepEqual(folder.loaded.map((e) => [e.token, e.vectors]), [["redcube", 2]]);
  assert.deepEqual(folder.skipped.map((e) => e.token), ["old-sd1"]);
  const server = await startLocalServer(p, { server: { embeddings: { loaded: folder.loaded, skipped: folder.skipped, folder } } });
  try {
    const listed = await (await fetch(`${server.url}/sdapi/v1/embeddings`)).json() as any;
    assert.deepEqual(listed.loaded, { redcube: { step: null, sd_checkpoint: null, sd_checkpoint_name: null, shape: 2048, vectors: 2 } });
    assert.deepEqual(Object.keys(listed.skipped), ["old-sd1"]);
    assert.deepEqual(await (await fetch(`${server.url}/embeddings`)).json(), ["redcube"]);
    // A1111's txt2img (the server's diffusers syntax: the exact name) is the library's call
    const request = { prompt: "a redcube", negative_prompt: "fog", steps: 3, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5, seed: 4 };
    const got = await txt2imgFirst(server.url, request);
    const want = await p.generate({ prompt: "a redcube", negativePrompt: "fog", numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, seeds: [4], scheduler: "Euler" });
    assert.ok(levelDiff(got.image, want.images.data) <= 1, `differs by ${levelDiff(got.image, want.images.data)} levels`);
    // ComfyUI: embedding:redcube is the words it holds
    const graph = (text: string) => ({
      3: { class_type: "KSampler", inputs: { seed: 4, steps: 3, cfg: 5, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } },
      4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: p.model.name } },
      5: { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
      6: { class_type: "CLIPTextEncode", inputs: { text, clip: ["4", 1] } },
      7: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["4", 1] } },
      8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
      9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
    });
    assert.deepEqual(decodePng(await runComfyPrompt(server.url, graph("a embedding:redcube on a table"))).data, decodePng(await runComfyPrompt(server.url, graph("a red cube on a table"))).data);
    // an unknown name is refused before the prompt is queued
    await comfyRefused(server.url, graph("a (embedding:bluecube:1.2) on a table"), undefined, undefined, /embedding:bluecube is not an embedding here \(embeddings: redcube\)/);
  } finally {
    await server.close();
  }
});

test("ssd1b generate --embeddings-dir / --embedding: the library's image with the embedding; a missing file is a usage error", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const { pipe: p } = await open();
  const out = join(tmp, "cli.png");
  const args = ["generate", "--model", tinyModelIn(tmp, "tiny-sdxl"), "--prompt", "a redcube", "--steps", "3", "--width", "32", "--height", "32", "--seed", "3", "--scheduler", "EulerDiscreteScheduler", "--output", out];
  const run = runCli([...args, "--embeddings-dir", join(tmp, "embeddings")]);
  assert.equal(run.code, 0, run.stderr);
  const want = await p.generate({ prompt: "a redcube", numInferenceSteps: 3, width: 32, height: 32, seed: 3, scheduler: "EulerDiscreteScheduler" });
  assert.ok(levelDiff(readFileSync(out), want.images.data) <= 1);
  const bad = runCli([...args, "--embedding", join(tmp, "nothing.safetensors")]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--embedding .*nothing\.safetensors: file not found/);
});

test("withTextualInversions: a pipeline with one more embedding, the UNet and VAE shared; its release keeps the base working", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const { pipe: p, plain: q } = await open();
  const more = await q.withTextualInversions([{ file: join(tmp, "redcube.safetensors"), token: "<rc>" }]);
  try {
    assert.deepEqual(more.textualInversions.map((t) => t.token), ["<rc>"]);
    assert.equal(more.unet, q.unet);
    // (A1111 matches the name's BPE tokens: "<rc>," would tokenize ">," as one piece)
    same((await more.encodePrompt({ prompt: "a photo of <rc> , on a table", promptSyntax: "a1111" })).promptEmbeds, (await p.encodePrompt({ prompt: "a photo of redcube , on a table", promptSyntax: "a1111" })).promptEmbeds);
    await assert.rejects(p.withTextualInversions([{ file: join(tmp, "redcube.safetensors") }]), /both named "redcube"/);
  } finally {
    await more.release();
  }
  assert.equal(q.textualInversions.length, 0);
  assert.ok((await q.generate({ prompt: "a red cube", width: 32, height: 32, numInferenceSteps: 2, seed: 1, outputType: "latent" })).latents.data.every(Number.isFinite));
});

test("web page: the embedding picker adds a name to the prompt box last focused, and the job uses it", { skip: BROWSER_SKIP, timeout: 180_000 }, async () => {
  const { pipe: p } = await open();
  const server = await startLocalServer(p, { server: { embeddings: { loaded: [{ token: "redcube", file: join(tmp, "redcube.safetensors"), vectors: 2 }], skipped: [] } } });
  const browser = await launchBrowser();
  try {
    const { page, consoleErrors } = await openReadyPage(browser, server.url + "/");
    assert.ok(await page.isVisible("#embedding-picker"));
    await page.fill("#negative", "blurry");
    await page.selectOption("#embedding", "redcube");
    assert.equal(await page.inputValue("#negative"), "blurry, redcube", "the negative prompt by default");
    await page.focus("#prompt");
    await page.fill("#prompt", "a photo of");
    await page.selectOption("#embedding", "redcube");
    assert.equal(await page.inputValue("#prompt"), "a photo of, redcube");
    await page.fill("#steps", "3");
    await page.fill("#guidance", "5");
    await page.fill("#seed", "0");
    await page.selectOption("#scheduler", "Euler");
    await page.click("#generate");
    await page.waitForSelector("#gallery .card");
    const src = await page.getAttribute("#gallery .card img", "src");
    const png = Buffer.from(await (await fetch(new URL(src!, server.url))).arrayBuffer());
    const want = await p.generate({ prompt: "a photo of, redcube", negativePrompt: "blurry, redcube", numInferenceSteps: 3, guidanceScale: 5, seed: 0, scheduler: "Euler" });
    assert.ok(levelDiff(png, want.images.data) <= 1, `the page's image vs the library's: ${levelDiff(png, want.images.data)} levels`);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});
