/**
 * TAESD (diffusers AutoencoderTiny) against diffusers 0.27.2 (fixtures taesd/): the real taesdxl
 * config (64x64) and a tiny one, synth weights. Encode and decode through `ssd1b forward`, the decode
 * through a standalone decoder file (--taesd FILE), and the pipeline's TAESD paths: previewDecode and
 * the decoder fastDecode runs, on a pipeline loaded with { taesd } as --taesd loads it.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, assertMaxAbs, assertModuleClose, diff, fixture, openFixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { expectedParameters } from "../src/models/components.js";
import { decoderFileKey, parseTaesdConfig, scaleTaesdLatents, unscaleTaesdLatents } from "../src/models/taesd/autoencoder-tiny.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { saveTensors, writeSafetensors, TensorStore } from "../src/safetensors/index.js";
import { TaesdRunner } from "../src/pipelines/taesd-runner.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const CONFIGS = ["taesdxl", "tiny"] as const;
type ConfigName = (typeof CONFIGS)[number];

const tmp = mkdtempSync(join(tmpdir(), "taesd-fixture-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const fmt = (d: { maxAbs: number; relL2: number }) => `max|d| ${d.maxAbs.toExponential(2)}, relL2 ${d.relL2.toExponential(2)}`;
const configOf = (name: ConfigName) => JSON.parse(readFileSync(fixture("taesd", `config-${name}.json`), "utf8"));
const io = (name: ConfigName) => openFixture("taesd", `io-${name}.safetensors`);

/** A diffusers AutoencoderTiny folder: the fixture's config.json (as save_pretrained writes it) and synth weights. */
function taesdFolder(name: ConfigName): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(fixture("taesd", `config-${name}.json`), join(dir, "config.json"));
  synthModel(dir, "fp32");
  return dir;
}
const folders = new Map<ConfigName, string>();
const folderOf = (name: ConfigName) => folders.get(name) ?? folders.set(name, taesdFolder(name)).get(name)!;

/** diffusers' decode(z).sample as the pipelines see it: (x/2 + 0.5).clamp(0, 1), NHWC. */
function toImage(decoded: Float32Array, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * 3);
  for (let c = 0; c < 3; c++) for (let p = 0; p < h * w; p++) out[p * 3 + c] = Math.min(1, Math.max(0, Math.fround(Math.fround(decoded[c * h * w + p] / 2) + 0.5)));
  return out;
}

test("taesd config: the taesdxl file written by 0.27.2 and its 134 tensors", { skip: NO_FIXTURES }, () => {
  const raw = configOf("taesdxl");
  const cfg = parseTaesdConfig(raw);
  // diffusers' decoder really is [3, 3, 3, 1] (the encoder [1, 3, 3, 3]); block_out_channels is the extra key 0.27.2 writes
  assert.deepEqual([cfg.numEncoderBlocks, cfg.numDecoderBlocks], [[1, 3, 3, 3], [3, 3, 3, 1]]);
  assert.deepEqual([cfg.latentMagnitude, cfg.latentShift, cfg.scalingFactor, cfg.forceUpcast, cfg.actFn], [3, 0.5, 1, false, "relu"]);
  const manifest: Record<string, number[]> = JSON.parse(readFileSync(fixture("taesd", "manifest-taesdxl.json"), "utf8"));
  const got = Object.fromEntries([...expectedParameters("autoencoder-tiny", raw)].sort(([a], [b]) => (a < b ? -1 : 1)));
  assert.equal(Object.keys(manifest).length, 134);
  assert.deepEqual(got, Object.fromEntries(Object.entries(manifest).sort(([a], [b]) => (a < b ? -1 : 1))));
  // as diffusers' from_config: a key listed in _use_default_values takes the class default
  assert.deepEqual(parseTaesdConfig({ ...raw, num_decoder_blocks: [1, 1, 1, 1], _use_default_values: ["num_decoder_blocks"] }).numDecoderBlocks, [3, 3, 3, 1]);
  // the tiny config differs only in the widths
  assert.deepEqual(parseTaesdConfig(configOf("tiny")), { ...cfg, encoderBlockOutChannels: [8, 8, 8, 8], decoderBlockOutChannels: [8, 8, 8, 8] });
});

for (const name of CONFIGS) {
  test(`cli forward ${name}: encode (in.image -> out.latents) and decode (in.latent -> out.decoded) match diffusers`, { skip: NO_FIXTURES, timeout: 300_000 }, (t) => {
    const ref = io(name);
    const dir = folderOf(name);
    const forward = (mode: string, input: string) => {
      const inputs = join(tmp, `${name}-${mode}-in.safetensors`), output = join(tmp, `${name}-${mode}-out.safetensors`);
      saveTensors(inputs, { [input]: { dtype: "F32", shape: ref.get(input).shape, data: ref.float32(input) } });
      const r = spawnSync(process.execPath, [CLI, "forward", dir, "--mode", mode, "--inputs", inputs, "--output", output], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return TensorStore.open(output);
    };
    const enc = forward("encode", "in.image");
    assert.deepEqual(enc.get("out.latents").shape, [1, 4, 8, 8]);
    const e = assertModuleClose(enc.float32("out.latents"), ref.float32("out.latents"), `${name} encode`);
    t.diagnostic(`encode: ${fmt(e)}`);
    const dec = forward("decode", "in.latent");
    assert.deepEqual(dec.get("out.decoded").shape, [1, 3, 64, 64]);
    const d = assertModuleClose(dec.float32("out.decoded"), ref.float32("out.decoded"), `${name} decode`);
    t.diagnostic(`decode: ${fmt(d)}`);
    // the output is not clamped: it goes below -1 here
    assert.ok(Math.min(...dec.float32("out.decoded")) < -1.1);
    const s = assertModuleClose(scaleTaesdLatents(parseTaesdConfig(configOf(name)), ref.float32("out.latents")), ref.float32("out.scale_latents"), `${name} scale_latents`);
    t.diagnostic(`scale_latents: ${fmt(s)}`);
    assert.ok(diff(unscaleTaesdLatents(parseTaesdConfig(configOf(name)), ref.float32("out.scale_latents")), ref.float32("out.latents")).relL2 < 2e-5, "unscale_latents inverts it (up to float32 rounding near 0.5)");
  });
}

test("taesd decoder file (--taesd taesdxl_decoder.safetensors): the same weights under taesd.py's keys decode as diffusers", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const ref = io("taesdxl");
  const specs = [...expectedParameters("autoencoder-tiny", configOf("taesdxl"))].filter(([k]) => k.startsWith("decoder."))
    .map(([k, shape]) => ({ name: decoderFileKey(k)!, shape, dtype: "F32" as const, from: k }));
  const file = join(tmp, "taesdxl_decoder.safetensors");
  writeSafetensors(file, specs, (s) => synthTensor(specs.find((x) => x.name === s.name)!.from, s.shape));
  const runner = TaesdRunner.open(file);
  try {
    assert.equal(runner.scaleFactor, 8);
    const d = assertModuleClose(await runner.decode(ref.float32("in.latent"), 8, 8), ref.float32("out.decoded"), "decoder file decode");
    t.diagnostic(`decode: ${fmt(d)}`);
  } finally {
    await runner.release();
  }
});

/** pipeline/tiny-ssd with a 4-stage (8x) VAE, so that taesdxl fits it as taesdxl fits SDXL; synth weights. */
function tinyModel8x(): string {
  const dir = join(tmp, "tiny-ssd-8x");
  cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
  const file = join(dir, "vae", "config.json");
  const vae = JSON.parse(readFileSync(file, "utf8"));
  Object.assign(vae, { block_out_channels: [32, 32, 32, 32], down_block_types: Array(4).fill("DownEncoderBlock2D"), up_block_types: Array(4).fill("UpDecoderBlock2D") });
  writeFileSync(file, JSON.stringify(vae));
  synthModel(dir, "fp32");
  return dir;
}

test("pipeline taesd (as --taesd loads it): previewDecode and the fastDecode decoder give diffusers' decode", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const ref = io("taesdxl");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModel8x(), { taesd: folderOf("taesdxl") });
  try {
    assert.equal(pipe.vaeScaleFactor, 8);
    const latent = ref.float32("in.latent");
    const expected = toImage(ref.float32("out.decoded"), 64, 64);
    // fastDecode decodes the final latents with this runner (scaling_factor 1: the latents as they are)
    const fast = await pipe.taesd!.decodeLatents({ data: latent, shape: [1, 4, 8, 8] });
    assert.deepEqual(fast.shape, [1, 64, 64, 3]);
    const d = assertMaxAbs(fast.data, expected, 2e-3, "fastDecode decoder");
    t.diagnostic(`fastDecode image: max|d| ${d.maxAbs.toExponential(2)}`);
    // previews: the same decode as 8-bit RGB, at most one level from diffusers' image
    const preview = await pipe.previewDecode(latent, [1, 4, 8, 8]);
    assert.deepEqual([preview.width, preview.height], [64, 64]);
    const levels = Math.max(...Array.from(preview.data, (v, i) => Math.abs(v - expected[i] * 255)));
    t.diagnostic(`preview: ${levels.toFixed(3)} levels of 255`);
    assert.ok(levels <= 1, `preview: ${levels} levels from diffusers`);
    // and fastDecode in generate is that decoder on the final latents
    const out = await pipe.generate({ prompt: "a cat", numInferenceSteps: 1, seed: 0, width: 64, height: 64, fastDecode: true });
    assert.deepEqual(out.images.data, (await pipe.taesd!.decodeLatents(out.latents)).data);
  } finally {
    await pipe.release();
  }
});
