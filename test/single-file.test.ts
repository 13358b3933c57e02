import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { readFloat32 } from "../src/safetensors/index.js";
import { checkCheckpoint, expectedParameters, type ComponentKind } from "../src/models/components.js";
import { parseUNetConfig } from "../src/models/unet/config.js";
import { parseVaeConfig } from "../src/models/vae/config.js";
import { clipHasProjection, parseClipTextConfig } from "../src/models/clip/config.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { openSingleFile, SingleFileError, type SingleFileComponent } from "../src/loaders/single-file.js";
import { unetPrefixTable } from "../src/loaders/sgm-names.js";
import { builtinConfigs, type Architecture } from "../src/loaders/builtin-configs/index.js";

const SGM_FILE = () => fixture("single-file", "tiny-ssd-sgm.safetensors");
const TINY = () => fixture("pipeline", "tiny-ssd");
const COMPONENTS: [ComponentKind, SingleFileComponent, string][] = [
  ["unet", "unet", "unet"], ["vae", "vae", "vae"], ["clip-text", "textEncoder", "text_encoder"], ["clip-text-projection", "textEncoder2", "text_encoder_2"],
];

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c];
  return out;
}

test("single file: every diffusers key of the four components resolves to the synth values", { skip: NO_FIXTURES }, () => {
  const sf = openSingleFile(SGM_FILE(), { configDir: TINY() });
  assert.equal(sf.architecture, undefined, "tiny-ssd is none of the built-in architectures");
  assert.match(sf.configSources.unet, /tiny-ssd.unet.config\.json$/);
  assert.deepEqual(sf.unmapped, []);
  assert.ok(sf.tokenizerDirs);
  for (const [kind, component, folder] of COMPONENTS) {
    const config = JSON.parse(readFileSync(join(TINY(), folder, "config.json"), "utf8"));
    const source = sf[component]!;
    let checked = 0;
    for (const [key, shape] of expectedParameters(kind, config)) {
      const entry = source.lookup(key, shape);
      assert.ok(entry, `${component}: ${key} does not resolve`);
      const expected = synthTensor(key, shape);
      let got = readFloat32(entry);
      if (sf.transposedKeys.has(key) && component === "textEncoder2") {
        assert.deepEqual(entry.shape, [shape[1], shape[0]]);
        got = transpose(got, shape[1], shape[0]);
      } else {
        assert.deepEqual(entry.shape, shape, `${component}: ${key} shape`);
      }
      assert.deepEqual(got, expected, `${component}: ${key} values`);
      checked++;
    }
    assert.ok(checked > 10);
    // Nothing in the file is left over for this component (its keys() maps back to the same names).
    checkCheckpoint(kind, config, source!, `single file ${component}`);
  }
});

test("single file: a tiny UNet matches no built-in architecture without --config", { skip: NO_FIXTURES }, () => {
  assert.throws(() => openSingleFile(SGM_FILE()), (e: Error) => e instanceof SingleFileError && /matches none of sdxl, ssd-1b, vega/.test(e.message) && /--config/.test(e.message));
});

test("single file: truncated or foreign files give clear errors", { skip: NO_FIXTURES }, () => {
  const dir = mkdtempSync(join(tmpdir(), "single-file-"));
  try {
    const bytes = readFileSync(SGM_FILE());
    const cut = join(dir, "cut.safetensors");
    writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    assert.throws(() => openSingleFile(cut), (e: Error) => e instanceof SingleFileError && /truncated/.test(e.message) && e.message.includes(cut));
    assert.throws(() => openSingleFile(join(dir, "model.ckpt")), /pickle checkpoints/);
    assert.throws(() => openSingleFile(fixture("lora", "peft", "lora.safetensors")), /not an SGM single-file checkpoint/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Writes only the header of a safetensors file and extends it sparsely to full length: real shapes, no data. */
function writeSparse(file: string, tensors: [string, number[]][]): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: "F16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(file, "w");
  try {
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json));
    ftruncateSync(fd, 8 + json.length + offset);
  } finally {
    closeSync(fd);
  }
}

function unetKeys(arch: Architecture): [string, number[]][] {
  if (arch === "vega") return [...expectedParameters("unet", builtinConfigs("vega").unet)];
  const name = arch === "sdxl" ? "sdxl-synth" : "ssd-1b-synth";
  return Object.entries(JSON.parse(readFileSync(fixture("unet", name, "manifest.json"), "utf8")) as Record<string, number[]>);
}

test("single file: SDXL, SSD-1B and Vega are told apart by their UNet keys", { skip: NO_FIXTURES }, () => {
  const dir = mkdtempSync(join(tmpdir(), "single-file-arch-"));
  try {
    for (const arch of ["sdxl", "ssd-1b", "vega"] as Architecture[]) {
      const table = unetPrefixTable(parseUNetConfig(builtinConfigs(arch).unet));
      const keys = unetKeys(arch).map(([k, s]): [string, number[]] => {
        const ref = table.toSgm(k);
        assert.ok(ref, `${arch}: no SGM name for ${k}`);
        return [`model.diffusion_model.${ref.key}`, s];
      });
      const file = join(dir, `${arch}.safetensors`);
      writeSparse(file, keys);
      const sf = openSingleFile(file);
      assert.equal(sf.architecture, arch);
      assert.equal(sf.configSources.unet, `built-in ${arch}`);
      assert.deepEqual(sf.configs.unet, builtinConfigs(arch).unet);
      // The built-in config's UNet finds every tensor, with its shape, and none is left over.
      checkCheckpoint("unet", sf.configs.unet, sf.unet, `${arch} single file`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("built-in configs parse with the model parsers", () => {
  for (const arch of ["sdxl", "ssd-1b", "vega"] as Architecture[]) {
    const c = builtinConfigs(arch);
    assert.deepEqual(parseUNetConfig(c.unet).blockOutChannels, [320, 640, 1280]);
    assert.equal(parseVaeConfig(c.vae).scalingFactor, 0.13025);
    const l = parseClipTextConfig(c.textEncoder!), g = parseClipTextConfig(c.textEncoder2);
    assert.deepEqual([l.hiddenSize, l.numHiddenLayers, l.hiddenAct, clipHasProjection(l, [])], [768, 12, "quick_gelu", false]);
    assert.deepEqual([g.hiddenSize, g.numHiddenLayers, g.hiddenAct, clipHasProjection(g, []), g.projectionDim], [1280, 32, "gelu", true, 1280]);
    assert.equal(c.scheduler._class_name, "EulerDiscreteScheduler");
  }
  const c = builtinConfigs("sdxl");
  c.unet.sample_size = 1;
  assert.equal(builtinConfigs("sdxl").unet.sample_size, 128, "copies, not the shared objects");
});
