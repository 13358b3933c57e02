import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, openFixture, assertModuleClose, diff, NO_FIXTURES } from "./helpers/fixtures.js";
import { Graph } from "../src/ir/graph.js";
import { WeightBuilder, shapeOnlySource } from "../src/nn/weights.js";
import { openComponent } from "../src/loaders/component.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { writeSafetensors, f32ToF16, f16ToF32 } from "../src/safetensors/index.js";
import { buildVaeDecoder, buildVaeEncoder, parseVaeConfig } from "../src/models/vae/autoencoder-kl.js";
import { openVae } from "../src/loaders/vae.js";

const WEIGHTS = "diffusion_pytorch_model.safetensors";

function manifest(name: string): Record<string, number[]> {
  return JSON.parse(readFileSync(fixture("vae", name, "manifest.json"), "utf8"));
}
function rawConfig(name: string): Record<string, any> {
  return JSON.parse(readFileSync(fixture("vae", name, "config.json"), "utf8"));
}

/** A diffusers-layout vae/ folder with synth weights for the fixture's manifest (optionally edited). */
function synthVaeFolder(name: string, opts: { file?: string; dtype?: "fp32" | "fp16"; edit?: (p: [string, number[]][]) => [string, number[]][] } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), `vae-${name}-`));
  copyFileSync(fixture("vae", name, "config.json"), join(dir, "config.json"));
  let params = Object.entries(manifest(name));
  if (opts.edit) params = opts.edit(params);
  writeSynthFile(join(dir, opts.file ?? WEIGHTS), params, opts.dtype ?? "fp32");
  return dir;
}

const fmt = (d: { relL2: number; maxAbs: number; maxRef: number }) =>
  `relL2 ${d.relL2.toExponential(2)}, max|d| ${d.maxAbs.toExponential(2)} (max|ref| ${d.maxRef.toPrecision(3)})`;

/** Encodes in.image and decodes in.latent through a vae/ folder exactly as a user would. */
async function runVae(dir: string, name: string, variant?: "fp16") {
  const io = openFixture("vae", name, "io.safetensors");
  const vae = openVae(dir, variant);
  const enc = await vae.encoder(io.get("in.image").shape);
  const encoded = await enc.run({ image: io.float32("in.image") });
  await enc.release();
  const dec = await vae.decoder(io.get("in.latent").shape);
  const decoded = await dec.run({ latent: io.float32("in.latent") });
  await dec.release();
  return { io, vae, out: { mean: encoded.mean, logvar: encoded.logvar, decoded: decoded.decoded } };
}

for (const name of ["tiny", "sdxl-synth"]) {
  test(`vae ${name}: encode (mean, logvar) and decode match diffusers`, { skip: NO_FIXTURES }, async (t) => {
    const dir = synthVaeFolder(name);
    try {
      const { io, vae, out } = await runVae(dir, name);
      assert.deepEqual(vae.unusedKeys(), []);
      for (const key of ["mean", "logvar", "decoded"] as const) {
        const d = assertModuleClose(out[key], io.float32(`out.${key}`), `vae ${name} ${key}`);
        t.diagnostic(`${key}: ${fmt(d)}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("vae tiny: the .fp16 variant loads and computes in float32 from the half-precision weights", { skip: NO_FIXTURES }, async (t) => {
  // fp16 weights differ from the reference's fp32 weights by rounding (relative ~5e-4 per weight), so
  // against the fp32 reference only a looser bound holds. The exact check is against the same model
  // with fp32 weights rounded through fp16: there the fp16 path (Cast to float32 in the graph) must
  // agree to float32 accuracy.
  const name = "tiny";
  const half = synthVaeFolder(name, { file: "diffusion_pytorch_model.fp16.safetensors", dtype: "fp16" });
  const rounded = mkdtempSync(join(tmpdir(), "vae-tiny-rounded-"));
  try {
    copyFileSync(fixture("vae", name, "config.json"), join(rounded, "config.json"));
    const specs = Object.entries(manifest(name)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, shape]) => ({ name: n, shape, dtype: "F32" as const }));
    writeSafetensors(join(rounded, WEIGHTS), specs, (s) => f16ToF32(f32ToF16(synthTensor(s.name, s.shape))));

    assert.equal(openComponent(half).variant, "fp16");
    const a = await runVae(half, name, "fp16");
    const b = await runVae(rounded, name);
    for (const key of ["mean", "logvar", "decoded"] as const) {
      const exact = diff(a.out[key], b.out[key]);
      assert.ok(exact.relL2 <= 1e-6, `fp16 file vs fp16-rounded fp32 file, ${key}: ${fmt(exact)}`);
      const loose = diff(a.out[key], a.io.float32(`out.${key}`));
      assert.ok(loose.relL2 <= 1e-2 && loose.maxAbs <= 2e-2 * loose.maxRef, `fp16 vs fp32 reference, ${key}: ${fmt(loose)}`);
      t.diagnostic(`${key}: vs rounded-fp32 ${fmt(exact)}; vs fp32 reference ${fmt(loose)}`);
    }
  } finally {
    rmSync(half, { recursive: true, force: true });
    rmSync(rounded, { recursive: true, force: true });
  }
});

for (const name of ["tiny", "sdxl-synth"]) {
  test(`vae ${name}: requested parameter names and shapes equal the checkpoint manifest`, { skip: NO_FIXTURES }, () => {
    const config = parseVaeConfig(rawConfig(name));
    const graph = new Graph();
    const vb = WeightBuilder.root(graph, shapeOnlySource());
    buildVaeEncoder(vb, config, [1, 3, 64, 64]);
    buildVaeDecoder(vb, config, [1, 4, 8, 8]);
    const got = Object.fromEntries([...vb.requested()].sort(([x], [y]) => (x < y ? -1 : 1)));
    assert.deepEqual(got, manifest(name));
  });
}

test("vae: a missing tensor and a wrong-shape tensor are reported by key", { skip: NO_FIXTURES }, async () => {
  const missingKey = "decoder.mid_block.attentions.0.to_k.bias";
  const badKey = "encoder.down_blocks.0.downsamplers.0.conv.weight";
  const missing = synthVaeFolder("tiny", { edit: (p) => p.filter(([k]) => k !== missingKey) });
  const wrong = synthVaeFolder("tiny", { edit: (p) => p.map(([k, s]) => [k, k === badKey ? [32, 32, 1, 1] : s]) });
  try {
    // Both halves are checked against the file when the VAE is opened, before any session is built.
    assert.throws(() => openVae(missing), (e: Error) => e.message.includes(`missing tensor "${missingKey}"`) && e.message.includes("[64]"));
    assert.throws(() => openVae(wrong), (e: Error) => e.message.includes(`"${badKey}" has shape [32,32,1,1]`) && e.message.includes("[32,32,3,3]"));
  } finally {
    rmSync(missing, { recursive: true, force: true });
    rmSync(wrong, { recursive: true, force: true });
  }
});

test("vae: unsupported configs and shapes are rejected with the offending value", { skip: NO_FIXTURES }, () => {
  const base = rawConfig("tiny");
  assert.throws(() => parseVaeConfig({ ...base, act_fn: "mish" }), /act_fn "mish" is not supported/);
  assert.throws(() => parseVaeConfig({ ...base, down_block_types: ["DownEncoderBlock2D", "AttnDownEncoderBlock2D"] }), /"AttnDownEncoderBlock2D" is not supported/);
  assert.throws(() => parseVaeConfig({ ...base, up_block_types: ["UpDecoderBlock2D"] }), /up_block_types must list 2 blocks/);
  assert.throws(() => parseVaeConfig({ ...base, norm_num_groups: 24 }), /not divisible by norm_num_groups 24/);
  assert.throws(() => parseVaeConfig({ ...base, _class_name: "AutoencoderTiny" }), /AutoencoderTiny/);
  const cfg = parseVaeConfig(base);
  const vb = WeightBuilder.root(new Graph(), shapeOnlySource());
  assert.throws(() => buildVaeEncoder(vb, cfg, [1, 3, 31, 32]), /multiples of 2/);
  assert.throws(() => buildVaeDecoder(vb, cfg, [1, 3, 8, 8]), /\[B, 4, h, w\]/);
  // later diffusers options are honoured
  const noAttn = WeightBuilder.root(new Graph(), shapeOnlySource());
  buildVaeDecoder(noAttn, parseVaeConfig({ ...base, mid_block_add_attention: false, use_post_quant_conv: false }), [1, 4, 8, 8]);
  const keys = [...noAttn.requested().keys()];
  assert.ok(!keys.some((k) => k.includes("attentions") || k.startsWith("post_quant_conv")));
});
