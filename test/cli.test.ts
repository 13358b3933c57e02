import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, existsSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT, fixture, openFixture, assertModuleClose, NO_FIXTURES } from "./helpers/fixtures.js";
import { TensorStore, readInt64, saveTensors } from "../src/safetensors/index.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

function ssd1b(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of the tiny pipeline folder (configs, tokenizers) with synth weights written by the CLI. */
function tinyModel(dtype = "fp32"): string {
  const dir = mkdtempSync(join(tmpdir(), "tiny-ssd-"));
  cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
  const r = ssd1b("synth", dir, "--dtype", dtype);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

/** Copies the fixture inputs (in.*) to their own file, as a user would prepare them. */
function inputsOf(store: TensorStore, file: string): string {
  const tensors: Record<string, any> = {};
  for (const [k, e] of store.tensors) {
    if (!k.startsWith("in.")) continue;
    tensors[k] = { dtype: e.dtype, shape: e.shape, data: e.dtype === "I64" ? readInt64(e) : store.float32(k) };
  }
  saveTensors(file, tensors);
  return file;
}

test("cli: synth + forward reproduce the UNet and VAE fixtures", { skip: NO_FIXTURES }, () => {
  const dir = tinyModel();
  try {
    for (const f of ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "text_encoder_2/model.safetensors"]) {
      assert.ok(existsSync(join(dir, f)), `synth wrote ${f}`);
    }
    const cases: [string, string[], string[]][] = [
      ["unet", ["unet", "tiny-ssd"], []],
      ["vae", ["vae", "tiny"], ["--mode", "encode"]],
      ["vae", ["vae", "tiny"], ["--mode", "decode"]],
    ];
    for (const [component, fx, extra] of cases) {
      const io = openFixture(...fx, "io.safetensors");
      const inFile = join(dir, `${component}${extra.join("")}-in.safetensors`);
      const all = inputsOf(io, inFile);
      // The VAE fixture holds both directions' inputs: give each mode only its own.
      if (component === "vae") {
        const want = extra[1] === "encode" ? "in.image" : "in.latent";
        saveTensors(all, { [want]: { dtype: "F32", shape: io.get(want).shape, data: io.float32(want) } });
      }
      const outFile = join(dir, "out.safetensors");
      const r = ssd1b("forward", join(dir, component), "--inputs", inFile, "--output", outFile, ...extra);
      assert.equal(r.code, 0, r.stderr);
      const out = TensorStore.open(outFile);
      const expected = [...io.tensors.keys()].filter((k) => k.startsWith("out.") && out.has(k));
      assert.ok(expected.length > 0, `${component}: outputs written`);
      for (const k of expected) assertModuleClose(out.float32(k), io.float32(k), `cli ${component} ${k}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("cli: bad inputs give clear errors and exit codes", { skip: NO_FIXTURES }, () => {
  const dir = tinyModel();
  try {
    const io = openFixture("unet", "tiny-ssd", "io.safetensors");
    const good = inputsOf(io, join(dir, "in.safetensors"));
    const out = join(dir, "out.safetensors");
    // wrong input name
    const bad = join(dir, "bad.safetensors");
    saveTensors(bad, { "in.sampel": { dtype: "F32", shape: [1], data: new Float32Array(1) } });
    let r = ssd1b("forward", join(dir, "unet"), "--inputs", bad, "--output", out);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing input "in.sample"/);
    // wrong dtype
    saveTensors(bad, { "in.input_ids": { dtype: "F32", shape: [1, 77], data: new Float32Array(77) } });
    r = ssd1b("forward", join(dir, "text_encoder"), "--inputs", bad, "--output", out);
    assert.match(r.stderr, /"in.input_ids" is F32, expected I64/);
    // wrong shape: timestep batch differs from the sample's
    const t = io.float32("in.timestep");
    const tensors: Record<string, any> = {};
    for (const k of ["in.sample", "in.encoder_hidden_states", "in.text_embeds", "in.time_ids"]) tensors[k] = { dtype: "F32", shape: io.get(k).shape, data: io.float32(k) };
    tensors["in.timestep"] = { dtype: "F32", shape: [t.length + 1], data: new Float32Array(t.length + 1) };
    saveTensors(bad, tensors);
    r = ssd1b("forward", join(dir, "unet"), "--inputs", bad, "--output", out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /input "timestep" has 3 values, expected shape \[2\]/);
    // VAE without a mode
    r = ssd1b("forward", join(dir, "vae"), "--inputs", good, "--output", out);
    assert.match(r.stderr, /--mode encode or --mode decode/);
    // missing folder
    r = ssd1b("forward", join(dir, "nope"), "--inputs", good, "--output", out);
    assert.match(r.stderr, /model folder not found/);
    // unknown config value
    const cfgPath = join(dir, "unet", "config.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    cfg.mid_block_type = "UNetMidBlockFancy";
    writeFileSync(cfgPath, JSON.stringify(cfg));
    r = ssd1b("forward", join(dir, "unet"), "--inputs", good, "--output", out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unsupported mid_block_type "UNetMidBlockFancy"/);
    assert.ok(!r.stderr.includes("    at "), "no stack trace");
    // unknown command
    r = ssd1b("frobnicate");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
