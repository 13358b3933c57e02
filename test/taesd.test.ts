/**
 * TAESD (diffusers AutoencoderTiny): parameter names of a full-size TAESDXL against the diffusers
 * state dict, the decoder and encoder against a plain-TypeScript reference, the standalone decoder
 * file (taesd.py's Sequential keys), and the pipeline's fastDecode / previewDecode / CLI flags.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, diff } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { detectComponentKind, expectedParameters } from "../src/models/components.js";
import { TAESDXL_CONFIG, parseTaesdConfig, decoderFileConfig } from "../src/models/taesd/autoencoder-tiny.js";
import { openTaesdWeights } from "../src/loaders/taesd.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { writeSafetensors, readHeader, TensorStore } from "../src/safetensors/index.js";
import { ModelSourceError, openTaesdSource } from "../src/loaders/model-source.js";
import { TaesdRunner, taesdPreviewMaker } from "../src/pipelines/taesd-runner.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { toRgb8 } from "../src/image/image.js";
import { decodePng } from "../src/image/png.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const tmp = mkdtempSync(join(tmpdir(), "taesd-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** An AutoencoderTiny folder: `config` as config.json, synth weights written by the synth command. */
function taesdFolder(name: string, config: Record<string, unknown>, dtype: "fp32" | "fp16" = "fp32"): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  synthModel(dir, dtype);
  return dir;
}

/** A standalone decoder file with taesd.py's keys (entry 0 is the clamp), holding the synth values of the diffusers keys. */
function decoderFile(name: string, config: Record<string, unknown>, rename = (k: string) => `${Number(k.split(".")[2]) + 1}.${k.split(".").slice(3).join(".")}`): string {
  const file = join(tmp, name);
  const specs = [...expectedParameters("autoencoder-tiny", config)].filter(([k]) => k.startsWith("decoder."))
    .map(([k, shape]) => ({ name: rename(k), shape, dtype: "F32" as const, from: k }));
  writeSafetensors(file, specs, (s) => synthTensor(specs.find((x) => x.name === s.name)!.from, s.shape));
  return file;
}

// ---------------------------------------------------------------------------------------------
// (a) Full-size TAESDXL: the diffusers state-dict keys, written out from diffusers' structure:
// DecoderTiny.layers = conv_in, ReLU, 3 blocks, Upsample, conv, 3 blocks, Upsample, conv, 3 blocks,
// Upsample, conv, 1 block, conv_out; EncoderTiny.layers = conv, 1 block, (stride-2 conv, 3 blocks) x3, conv.

const BLOCK_KEYS = (p: string, ch: number): [string, number[]][] => [0, 2, 4].flatMap((i) => [
  [`${p}.conv.${i}.weight`, [ch, ch, 3, 3]], [`${p}.conv.${i}.bias`, [ch]],
] as [string, number[]][]);

function taesdxlKeys(): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const put = (entries: [string, number[]][]) => { for (const [k, s] of entries) m.set(k, s); };
  const dec = "decoder.layers", enc = "encoder.layers";
  put([[`${dec}.0.weight`, [64, 4, 3, 3]], [`${dec}.0.bias`, [64]]]);
  for (const i of [2, 3, 4, 7, 8, 9, 12, 13, 14, 17]) put(BLOCK_KEYS(`${dec}.${i}`, 64));
  for (const i of [6, 11, 16]) put([[`${dec}.${i}.weight`, [64, 64, 3, 3]]]);
  put([[`${dec}.18.weight`, [3, 64, 3, 3]], [`${dec}.18.bias`, [3]]]);
  put([[`${enc}.0.weight`, [64, 3, 3, 3]], [`${enc}.0.bias`, [64]]]);
  for (const i of [1, 3, 4, 5, 7, 8, 9, 11, 12, 13]) put(BLOCK_KEYS(`${enc}.${i}`, 64));
  for (const i of [2, 6, 10]) put([[`${enc}.${i}.weight`, [64, 64, 3, 3]]]);
  put([[`${enc}.14.weight`, [4, 64, 3, 3]], [`${enc}.14.bias`, [4]]]);
  return m;
}

const sorted = (m: Map<string, number[]>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

test("taesdxl: parameter names and shapes are diffusers' AutoencoderTiny state dict", () => {
  const got = expectedParameters("autoencoder-tiny", TAESDXL_CONFIG);
  assert.equal(got.size, 134);
  // spot checks of every key pattern
  assert.deepEqual(got.get("decoder.layers.0.weight"), [64, 4, 3, 3]);
  assert.deepEqual(got.get("decoder.layers.2.conv.4.bias"), [64]);
  assert.deepEqual(got.get("decoder.layers.6.weight"), [64, 64, 3, 3]);
  assert.equal(got.has("decoder.layers.6.bias"), false, "convs between stages have no bias");
  assert.equal(got.has("decoder.layers.5.weight"), false, "entry 5 is the upsampling");
  assert.deepEqual(got.get("decoder.layers.18.bias"), [3]);
  assert.deepEqual(got.get("encoder.layers.2.weight"), [64, 64, 3, 3]);
  assert.deepEqual(got.get("encoder.layers.14.weight"), [4, 64, 3, 3]);
  assert.equal([...got.keys()].some((k) => k.includes("skip")), false, "equal widths: identity skips");
  assert.deepEqual(sorted(got), sorted(taesdxlKeys()));
});

test("taesd config: detection, defaults and rejected structures", () => {
  assert.equal(detectComponentKind(TAESDXL_CONFIG), "autoencoder-tiny");
  const { _class_name, ...unnamed } = TAESDXL_CONFIG;
  assert.equal(detectComponentKind({ ...unnamed, block_out_channels: [64, 64, 64, 64] }), "autoencoder-tiny", "recognised without _class_name");
  const c = parseTaesdConfig({ _class_name: "AutoencoderTiny" });
  assert.deepEqual([c.decoderBlockOutChannels, c.numDecoderBlocks, c.latentChannels, c.scalingFactor, c.actFn], [[64, 64, 64, 64], [3, 3, 3, 1], 4, 1, "relu"]);
  assert.throws(() => parseTaesdConfig({ act_fn: "mish" }), /act_fn "mish" is not supported/);
  assert.throws(() => parseTaesdConfig({ upsample_fn: "bilinear" }), /upsample_fn "bilinear"/);
  assert.throws(() => parseTaesdConfig({ decoder_block_out_channels: [64, 32], num_decoder_blocks: [1, 1] }), /must all be equal/);
  assert.throws(() => parseTaesdConfig({ num_decoder_blocks: [3, 3] }), /same length/);
  assert.throws(() => parseTaesdConfig({ _class_name: "AutoencoderKL" }), /not an AutoencoderTiny/);
});

// ---------------------------------------------------------------------------------------------
// (b) A plain-TypeScript reference: naive loops, no IR.

interface T4 { data: Float32Array; c: number; h: number; w: number }

function conv(x: T4, key: string, cout: number, opts: { stride?: number; bias?: boolean } = {}): T4 {
  const s = opts.stride ?? 1;
  const wt = synthTensor(`${key}.weight`, [cout, x.c, 3, 3]);
  const b = opts.bias === false ? undefined : synthTensor(`${key}.bias`, [cout]);
  const h = Math.floor((x.h + 2 - 3) / s) + 1, w = Math.floor((x.w + 2 - 3) / s) + 1;
  const out = new Float32Array(cout * h * w);
  for (let o = 0; o < cout; o++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
    let acc = b ? b[o] : 0;
    for (let ci = 0; ci < x.c; ci++) for (let ki = 0; ki < 3; ki++) for (let kj = 0; kj < 3; kj++) {
      const y = i * s + ki - 1, z = j * s + kj - 1;
      if (y >= 0 && y < x.h && z >= 0 && z < x.w) acc += wt[((o * x.c + ci) * 3 + ki) * 3 + kj] * x.data[(ci * x.h + y) * x.w + z];
    }
    out[(o * h + i) * w + j] = acc;
  }
  return { data: out, c: cout, h, w };
}
const map = (x: T4, f: (v: number) => number): T4 => ({ ...x, data: x.data.map(f) });
const relu = (x: T4) => map(x, (v) => Math.max(v, 0));
function upsample(x: T4, f: number): T4 {
  const h = x.h * f, w = x.w * f, out = new Float32Array(x.c * h * w);
  for (let c = 0; c < x.c; c++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out[(c * h + i) * w + j] = x.data[(c * x.h + Math.floor(i / f)) * x.w + Math.floor(j / f)];
  return { data: out, c: x.c, h, w };
}
function block(x: T4, key: string): T4 {
  const h = conv(relu(conv(relu(conv(x, `${key}.conv.0`, x.c)), `${key}.conv.2`, x.c)), `${key}.conv.4`, x.c);
  return relu({ ...x, data: h.data.map((v, i) => v + x.data[i]) });
}

/** TINY: decoder widths 8 with [2, 1, 1] blocks, encoder widths 8 with [1, 1, 1] blocks, 4 latent channels. */
const TINY = {
  _class_name: "AutoencoderTiny", act_fn: "relu", latent_channels: 4, in_channels: 3, out_channels: 3,
  decoder_block_out_channels: [8, 8, 8], num_decoder_blocks: [2, 1, 1],
  encoder_block_out_channels: [8, 8, 8], num_encoder_blocks: [1, 1, 1], upsampling_scaling_factor: 2,
};

/** TINY's DecoderTiny by hand: tanh clamp; conv 0, ReLU 1, blocks 2 3, up 4, conv 5, block 6, up 7, conv 8, block 9, conv 10; then x·2 - 1. */
function referenceDecode(z: T4): T4 {
  const p = "decoder.layers";
  let x = map(z, (v) => Math.tanh(v / 3) * 3);
  x = relu(conv(x, `${p}.0`, 8));
  x = block(block(x, `${p}.2`), `${p}.3`);
  x = conv(upsample(x, 2), `${p}.5`, 8, { bias: false });
  x = block(x, `${p}.6`);
  x = conv(upsample(x, 2), `${p}.8`, 8, { bias: false });
  x = conv(block(x, `${p}.9`), `${p}.10`, 3);
  return map(x, (v) => v * 2 - 1);
}

/** TINY's EncoderTiny by hand: (x + 1) / 2; conv 0, block 1, conv/2 2, block 3, conv/2 4, block 5, conv 6. */
function referenceEncode(img: T4): T4 {
  const p = "encoder.layers";
  let x = conv(map(img, (v) => (v + 1) / 2), `${p}.0`, 8);
  x = block(x, `${p}.1`);
  x = block(conv(x, `${p}.2`, 8, { stride: 2, bias: false }), `${p}.3`);
  x = block(conv(x, `${p}.4`, 8, { stride: 2, bias: false }), `${p}.5`);
  return conv(x, `${p}.6`, 4);
}

function randomT4(c: number, h: number, w: number, scale: number, seed: number): T4 {
  let s = seed;
  const data = Float32Array.from({ length: c * h * w }, () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s / 2 ** 32 * 2 - 1) * scale; });
  return { data, c, h, w };
}

test("taesd decoder and encoder match a plain reference (tiny config)", async (t) => {
  const runner = TaesdRunner.open(taesdFolder("tiny-ref", TINY));
  try {
    assert.equal(runner.scaleFactor, 4);
    const z = randomT4(4, 3, 5, 4, 7); // beyond ±3: the tanh clamp matters
    const running = runner.decode(z.data, 3, 5);
    assert.equal(runner.busy, true);
    const got = await running;
    assert.equal(runner.busy, false);
    const ref = referenceDecode(z);
    assert.deepEqual([ref.c, ref.h, ref.w], [3, 12, 20]);
    const d = diff(got, ref.data);
    t.diagnostic(`decoder relL2 ${d.relL2.toExponential(2)}`);
    assert.ok(d.relL2 < 1e-5, `decoder relL2 ${d.relL2}`);

    const img = randomT4(3, 8, 12, 1, 11);
    const enc = await runner.taesd.encoder([1, 3, 8, 12]);
    const latents = (await enc.run({ image: img.data })).latents;
    await enc.release();
    const eref = referenceEncode(img);
    assert.deepEqual([eref.c, eref.h, eref.w], [4, 2, 3]);
    const e = diff(latents, eref.data);
    t.diagnostic(`encoder relL2 ${e.relL2.toExponential(2)}`);
    assert.ok(e.relL2 < 1e-5, `encoder relL2 ${e.relL2}`);
  } finally {
    await runner.release();
  }
});

test("taesd folder: missing, wrong-shape and leftover tensors are named; fp16 weights load", async () => {
  const dir = taesdFolder("tiny-missing", TINY);
  const weights = join(dir, "diffusion_pytorch_model.safetensors");
  const params = [...expectedParameters("autoencoder-tiny", TINY)].filter(([k]) => k !== "decoder.layers.6.conv.2.bias");
  writeSafetensors(weights, params.map(([name, shape]) => ({ name, shape, dtype: "F32" as const })), (s) => synthTensor(s.name, s.shape));
  assert.throws(() => TaesdRunner.open(dir), /missing tensor "decoder\.layers\.6\.conv\.2\.bias" \(expected shape \[8\]\)/);
  const wrongKey = "encoder.layers.2.weight";
  writeSafetensors(weights, [...expectedParameters("autoencoder-tiny", TINY)].map(([name, shape]) => ({ name, shape: name === wrongKey ? [8, 8, 1, 1] : shape, dtype: "F32" as const })), (s) => synthTensor(s.name, s.shape));
  assert.throws(() => TaesdRunner.open(dir), /tensor "encoder\.layers\.2\.weight" has shape \[8,8,1,1\], the config expects \[8,8,3,3\]/);
  const extra: [string, number[]][] = [...expectedParameters("autoencoder-tiny", TINY), ["decoder.layers.11.weight", [3, 3, 3, 3]]];
  writeSafetensors(weights, extra.map(([name, shape]) => ({ name, shape, dtype: "F32" as const })), (s) => synthTensor(s.name, s.shape));
  assert.throws(() => TaesdRunner.open(dir), /tensor\(s\) in the checkpoint are not used by a model with this config.json/);
  const half = taesdFolder("tiny-fp16", TINY, "fp16");
  const r = TaesdRunner.open(half, { variant: "fp32" }); // falls back to the weights that are there
  await r.release();
});

// ---------------------------------------------------------------------------------------------
// (d) The standalone decoder file (madebyollin/taesd's Sequential keys).

test("taesd decoder file: Sequential-index keys give the same decoder as the diffusers folder", async () => {
  const folder = TaesdRunner.open(taesdFolder("tiny-folder", TINY));
  const file = decoderFile("tiny_decoder.safetensors", TINY);
  assert.ok(readHeader(file).tensors.has("1.weight") && readHeader(file).tensors.has("3.conv.0.weight"));
  const single = TaesdRunner.open(file);
  try {
    assert.equal(single.taesd.hasEncoder, false);
    assert.deepEqual(single.config.decoderBlockOutChannels, [8, 8, 8]);
    assert.deepEqual(single.config.numDecoderBlocks, [2, 1, 1]);
    const z = randomT4(4, 3, 5, 4, 3);
    assert.deepEqual(await single.decode(z.data, 3, 5), await folder.decode(z.data, 3, 5));
    await assert.rejects(single.taesd.encoder([1, 3, 8, 8]), /decoder file has no encoder/);
  } finally {
    await single.release();
    await folder.release();
  }
});

test("taesd decoder file: a full-size taesdxl_decoder layout is read as TAESDXL's decoder", async () => {
  // taesd.py's Decoder: Clamp 0, conv 1, ReLU 2, blocks 3-5, Upsample 6, conv 7, blocks 8-10, Upsample 11,
  // conv 12, blocks 13-15, Upsample 16, conv 17, block 18, conv 19.
  const file = decoderFile("taesdxl_decoder.safetensors", TAESDXL_CONFIG);
  const keys = [...readHeader(file).tensors.keys()];
  const expected = ["1.weight", "1.bias", "7.weight", "12.weight", "17.weight", "19.weight", "19.bias",
    ...[3, 4, 5, 8, 9, 10, 13, 14, 15, 18].flatMap((i) => [0, 2, 4].flatMap((k) => [`${i}.conv.${k}.weight`, `${i}.conv.${k}.bias`]))];
  assert.deepEqual(keys.sort(), expected.sort());
  const cfg = parseTaesdConfig(decoderFileConfig(readHeader(file).tensors, file));
  const full = parseTaesdConfig(TAESDXL_CONFIG);
  assert.deepEqual([cfg.latentChannels, cfg.outChannels, cfg.decoderBlockOutChannels, cfg.numDecoderBlocks, cfg.upsamplingScalingFactor],
    [full.latentChannels, full.outChannels, full.decoderBlockOutChannels, full.numDecoderBlocks, full.upsamplingScalingFactor]);
  const single = TaesdRunner.open(file);
  const folder = TaesdRunner.open(taesdFolder("taesdxl", TAESDXL_CONFIG));
  try {
    const z = randomT4(4, 2, 3, 3, 5);
    assert.deepEqual(await single.decode(z.data, 2, 3), await folder.decode(z.data, 2, 3));
  } finally {
    await single.release();
    await folder.release();
  }
});

test("taesd decoder file: encoder files, diffusers-named files, .pth and other checkpoints are refused clearly", () => {
  const enc = decoderFile("taesd_encoder.safetensors", TINY, (k) => k.replace(/^decoder\.layers\./, ""));
  assert.throws(() => openTaesdSource(enc, undefined), (e: Error) => e instanceof ModelSourceError && /entry 0 is a conv, as in a TAESD encoder/.test(e.message));
  const named = decoderFile("diffusers-named.safetensors", TINY, (k) => k);
  assert.throws(() => openTaesdSource(named, undefined), /diffusers AutoencoderTiny names.*pass the folder/);
  const pth = join(tmp, "taesdxl_decoder.pth");
  writeFileSync(pth, "not really");
  assert.throws(() => openTaesdSource(pth, undefined), /only \.safetensors decoder files/);
  const other = decoderFile("other.safetensors", TINY, (k) => `first_stage_model.${k}`);
  assert.throws(() => openTaesdSource(other, undefined), /not a TAESD decoder file: unexpected tensor "first_stage_model/);
  assert.throws(() => openTaesdSource(join(tmp, "nowhere"), undefined), /TAESD ".*nowhere" not found/);
  assert.throws(() => openTaesdSource("someone/missing-taesd", undefined, { HF_HOME: join(tmp, "hf") }), /not in the Hugging Face cache; download it with: npx ssd1b download --taesd someone\/missing-taesd/);
});

// ---------------------------------------------------------------------------------------------
// (c) The pipeline: tiny-ssd (VAE scale 2) with a tiny TAESD of the same scale.

const PIPE_TAESD = {
  _class_name: "AutoencoderTiny", act_fn: "relu", latent_channels: 4,
  decoder_block_out_channels: [8, 8], num_decoder_blocks: [1, 1], encoder_block_out_channels: [8, 8], num_encoder_blocks: [1, 1],
};
/** PIPE_TAESD's decoder by hand: conv 0, ReLU 1, block 2, up 3, conv 4, block 5, conv 6. */
function referencePipeDecode(z: T4): T4 {
  const p = "decoder.layers";
  let x = relu(conv(map(z, (v) => Math.tanh(v / 3) * 3), `${p}.0`, 8));
  x = conv(upsample(block(x, `${p}.2`), 2), `${p}.4`, 8, { bias: false });
  return map(conv(block(x, `${p}.5`), `${p}.6`, 3), (v) => v * 2 - 1);
}

const basic = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly, blurry, poor quality", numInferenceSteps: 3, guidanceScale: 5, seed: 0, scheduler: "euler" };

test("pipeline fastDecode: TAESD decodes the final latents at the VAE's size; previews; same latents as the VAE path", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = tinyModelIn(tmp);
  const taesd = taesdFolder("pipe-taesd", PIPE_TAESD);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, { taesd });
  try {
    const fast = await pipe.generate({ ...basic, fastDecode: true, numImagesPerPrompt: 2 });
    const slow = await pipe.generate({ ...basic, numImagesPerPrompt: 2 });
    assert.deepEqual(fast.images.shape, [2, 32, 32, 3]);
    assert.deepEqual(fast.images.shape, slow.images.shape);
    assert.deepEqual(fast.latents.data, slow.latents.data);
    assert.ok(diff(fast.images.data, slow.images.data).maxAbs > 1e-3, "another decoder ran");
    const [n, c, h, w] = fast.latents.shape;
    for (let b = 0; b < n; b++) {
      const per = c * h * w;
      const ref = referencePipeDecode({ data: fast.latents.data.slice(b * per, (b + 1) * per), c, h, w });
      const expected = new Float32Array(32 * 32 * 3);
      for (let ch = 0; ch < 3; ch++) for (let p = 0; p < 32 * 32; p++) expected[p * 3 + ch] = Math.min(1, Math.max(0, ref.data[ch * 1024 + p] / 2 + 0.5));
      const d = diff(fast.images.data.subarray(b * 3072, (b + 1) * 3072), expected);
      assert.ok(d.maxAbs < 1e-5, `image ${b}: max|d| ${d.maxAbs}`);
      // previews are the same decode, as 8-bit RGB
      const preview = await pipe.previewDecode(fast.latents.data, fast.latents.shape, b);
      assert.deepEqual(preview, toRgb8(fast.images, b));
    }
    const png = await taesdPreviewMaker(pipe.taesd!, fast.latents.data, fast.latents.shape, 1)();
    assert.deepEqual(decodePng(png!).data, toRgb8(fast.images, 1).data);
    // previews from onStep, while sampling
    const seen: number[] = [];
    await pipe.generate({ ...basic, onStep: async ({ step, latents, shape }) => {
      const img = await pipe.previewDecode(latents, shape);
      assert.deepEqual([img.width, img.height], [32, 32]);
      seen.push(step);
    } });
    assert.deepEqual(seen, [0, 1, 2]);
    // img2img: the init image still goes through the VAE, the result through TAESD
    const i2i = await pipe.img2img({ ...basic, image: toRgb8(slow.images, 0), strength: 0.6, fastDecode: true });
    assert.deepEqual(i2i.images.shape, [1, 32, 32, 3]);
    assert.deepEqual(i2i.images.data, (await pipe.taesd!.decodeLatents(i2i.latents)).data);
  } finally {
    await pipe.release();
  }
});

test("pipeline taesd: decoder file, wrong latent channels, wrong scale, not a TAESD, fastDecode without one", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = tinyModelIn(tmp);
  const folderPipe = await StableDiffusionXLPipeline.fromPretrained(dir, { taesd: taesdFolder("pipe-taesd-2", PIPE_TAESD) });
  const filePipe = await StableDiffusionXLPipeline.fromPretrained(dir, { taesd: decoderFile("pipe_decoder.safetensors", PIPE_TAESD) });
  try {
    const a = await folderPipe.generate({ ...basic, fastDecode: true });
    const b = await filePipe.generate({ ...basic, fastDecode: true });
    assert.deepEqual(a.images.data, b.images.data);
  } finally {
    await folderPipe.release();
    await filePipe.release();
  }
  const wide = taesdFolder("pipe-taesd-8ch", { ...PIPE_TAESD, latent_channels: 8 });
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { taesd: wide }),
    (e: Error) => e instanceof ModelSourceError && /latent_channels 8/.test(e.message) && /4-channel latents/.test(e.message) && e.message.includes(wide));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { taesd: taesdFolder("pipe-taesdxl", TAESDXL_CONFIG) }), /upscales latents 8x, the model's VAE 2x/);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { taesd: join(dir, "vae") }), /describes an AutoencoderKL, not an AutoencoderTiny \(TAESD\) \(a full VAE: pass it with --vae\)/);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { taesd: join(dir, "tokenizer") }), /no config.json/);
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { vae: taesdFolder("pipe-taesd-3", PIPE_TAESD) }), /AutoencoderTiny, not an AutoencoderKL \(a TAESD: pass it with --taesd/);
  const plain = await StableDiffusionXLPipeline.fromPretrained(dir);
  try {
    await assert.rejects(plain.generate({ ...basic, fastDecode: true }), (e: Error) => e instanceof PipelineInputError && /fastDecode needs a TAESD/.test(e.message));
    await assert.rejects(plain.previewDecode(new Float32Array(4 * 16 * 16), [1, 4, 16, 16]), /previewDecode needs a TAESD/);
    await plain.loadTaesd(taesdFolder("pipe-taesd-4", PIPE_TAESD));
    await assert.rejects(plain.previewDecode(new Float32Array(3 * 16), [1, 3, 4, 4]), /latents \[1,3,4,4\] must be \[B, 4, h, w\]/);
    const img = await plain.previewDecode(new Float32Array(4 * 16 * 16), [1, 4, 16, 16]);
    assert.deepEqual([img.width, img.height], [32, 32]);
  } finally {
    await plain.release();
  }
});

test("cli --taesd --fast-decode: the PNG is the library's fast decode; --fast-decode alone is a usage error", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = tinyModelIn(tmp);
  const taesd = taesdFolder("cli-taesd", PIPE_TAESD);
  const out = join(tmp, "cli", "fast.png");
  const args = ["generate", "--model", dir, "--prompt", basic.prompt, "--negative-prompt", basic.negativePrompt, "--steps", "3", "--seed", "0", "--scheduler", "euler"];
  const r = spawnSync(process.execPath, [CLI, ...args, "--taesd", taesd, "--fast-decode", "--output", out], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /taesd .*cli-taesd \(fast decode\)/);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, { taesd });
  try {
    const lib = await pipe.generate({ ...basic, fastDecode: true });
    assert.deepEqual(decodePng(readFileSync(out)).data, toRgb8(lib.images).data);
  } finally {
    await pipe.release();
  }
  const bad = spawnSync(process.execPath, [CLI, ...args, "--fast-decode", "--output", join(tmp, "cli", "x.png")], { encoding: "utf8" });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--fast-decode needs --taesd/);
  const help = spawnSync(process.execPath, [CLI, "generate", "--help"], { encoding: "utf8" });
  assert.match(help.stdout, /--taesd DIR\|FILE/);
  assert.match(help.stdout, /--fast-decode/);
});

test("synth: a model folder's taesd/ gets weights; the synth TAESDXL loads", () => {
  const dir = join(tmp, "synth-model");
  mkdirSync(join(dir, "taesd"), { recursive: true });
  writeFileSync(join(dir, "taesd", "config.json"), JSON.stringify(TAESDXL_CONFIG));
  const files = synthModel(dir, "fp16");
  assert.deepEqual(files, [join(dir, "taesd", "diffusion_pytorch_model.fp16.safetensors")]);
  const t = openTaesdWeights({ ...openTaesdSource(join(dir, "taesd"), "fp16") });
  assert.equal(t.hasEncoder, true);
});

test("ssd1b forward runs a TAESD folder: decode = the plain reference; encode needs --mode", async () => {
  const dir = taesdFolder("tiny-forward", TINY);
  const z = randomT4(4, 3, 5, 4, 3);
  const inFile = join(tmp, "forward-in.safetensors"), outFile = join(tmp, "forward-out.safetensors");
  writeSafetensors(inFile, [{ name: "in.latent", shape: [1, 4, 3, 5], dtype: "F32" }], () => z.data);
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, "forward", dir, "--inputs", inFile, "--output", outFile, ...args], { encoding: "utf8" });
  let r = run("--mode", "decode");
  assert.equal(r.status, 0, r.stderr);
  const out = TensorStore.open(outFile).float32("out.decoded");
  assert.ok(diff(out, referenceDecode(z).data).relL2 < 1e-5);
  r = run();
  assert.equal(r.status, 2);
  assert.match(r.stderr, /TAESD needs --mode encode or --mode decode/);
});
