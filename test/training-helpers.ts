/** Shared by the training tests: the tiny models with synth weights, and a rendered dataset of coloured circles. */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { PROJECT_ROOT, fixture } from "./helpers/fixtures.js";
import { encodePng } from "../src/image/png.js";
import { TensorStore, readFloat32, saveTensors } from "../src/safetensors/index.js";

export const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

export function ssd1b(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A pipeline fixture folder with synth weights written by the CLI. */
export function tinyModel(dir: string, name: "tiny-ssd" | "tiny-sdxl"): string {
  cpSync(fixture("pipeline", name), dir, { recursive: true });
  const r = ssd1b(["synth", dir]);
  assert.equal(r.code, 0, r.stderr);
  return dir;
}

/**
 * The synth VAE's posterior has a variance near 1 and a mean near 0.03 after scaling: its latents are
 * noise, nothing to learn. Here the log-variance half of quant_conv is set to -30 (a deterministic
 * posterior) and scaling_factor to 4 (latents of unit size), so latents carry the images.
 */
export function makeVaeInformative(model: string): void {
  const file = join(model, "vae", "diffusion_pytorch_model.safetensors");
  const store = TensorStore.open(file);
  const out: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const [k, e] of store.tensors) {
    const data = readFloat32(e);
    if (k === "quant_conv.bias" || k === "quant_conv.weight") data.fill(k.endsWith("bias") ? -30 : 0, data.length / 2);
    out[k] = { dtype: "F32", shape: e.shape, data };
  }
  saveTensors(file, out);
  const cfgFile = join(model, "vae", "config.json");
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, "utf8")), scaling_factor: 4 }));
}

export const COLOURS: [string, [number, number, number]][] = [
  ["red", [255, 0, 0]], ["green", [0, 255, 0]], ["blue", [0, 0, 255]], ["yellow", [255, 255, 0]],
  ["magenta", [255, 0, 255]], ["cyan", [0, 255, 255]], ["orange", [255, 128, 0]], ["purple", [128, 0, 255]],
];

/** 8 PNGs (40x32: a coloured circle on white) with captions, as .txt files or metadata.jsonl. */
export function circleDataset(dir: string, captions: "txt" | "metadata", caption = (name: string) => `a ${name} circle`): string {
  mkdirSync(dir, { recursive: true });
  const meta: string[] = [];
  COLOURS.forEach(([name, c], i) => {
    const w = 40, h = 32, data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set((x - 20) ** 2 + (y - 16) ** 2 < 100 ? c : [255, 255, 255], (y * w + x) * 3);
    writeFileSync(join(dir, `${i}.png`), encodePng({ width: w, height: h, data }));
    if (captions === "txt") writeFileSync(join(dir, `${i}.txt`), caption(name));
    else meta.push(JSON.stringify({ file_name: `${i}.png`, text: caption(name) }));
  });
  if (captions === "metadata") writeFileSync(join(dir, "metadata.jsonl"), meta.join("\n") + "\n");
  return dir;
}

export interface LogLine { step: number; loss?: number; val_loss?: number; [k: string]: number | undefined }

export function readLog(output: string): LogLine[] {
  return readFileSync(join(output, "train_log.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as LogLine);
}

export function valLosses(output: string): LogLine[] {
  return readLog(output).filter((r) => r.val_loss !== undefined);
}
