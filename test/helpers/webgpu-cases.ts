/**
 * Child process of test/webgpu.test.ts: runs fixture cases on `device: "webgpu"` in the adapter
 * configuration its environment selects (VK_DRIVER_FILES, Vulkan test layer), one JSON line per case on
 * stdout. Usage: node webgpu-cases.js CASE... (see CASES).
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, openFixture, diff, type Diff } from "./fixtures.js";
import { openComponent } from "../../src/loaders/component.js";
import { compileComponent } from "../../src/loaders/compile.js";
import { writeSynthFile } from "../../src/synth/write-synth.js";
import { parseUNetConfig, buildUNetGraph } from "../../src/models/unet/index.js";
import { openVae } from "../../src/loaders/vae.js";
import { createClipTextEncoder } from "../../src/loaders/clip-text.js";
import { readInt64 } from "../../src/safetensors/index.js";
import { webgpuAttentionVerdict } from "../../src/runtime/webgpu-check.js";
import { CompiledGraph, type SessionOptions } from "../../src/runtime/session.js";
import { groupNormGraph, groupNormReference } from "./group-norm-reference.js";
import { StableDiffusionXLPipeline } from "../../src/pipelines/sdxl/index.js";
import { tinyModelIn } from "./tiny-model.js";
import type { Float32IslandOp } from "../../src/ir/onnx/half-precision.js";
import { UNET_FLOAT32_OPS_WEBGPU } from "../../src/pipelines/sessions.js";

import type { CaseResult } from "./webgpu-case-names.js";

const warnings: string[] = [];
const session: SessionOptions = { device: "webgpu", onWarning: (m) => warnings.push(m) };

/** A component folder with the fixture's config and synth fp32 weights, as `ssd1b synth` writes it. */
function synthFolder(kind: string, name: string, weights: string): string {
  const dir = mkdtempSync(join(tmpdir(), `webgpu-${kind}-${name}-`));
  copyFileSync(fixture(kind, name, "config.json"), join(dir, "config.json"));
  const manifest: Record<string, number[]> = JSON.parse(readFileSync(fixture(kind, name, "manifest.json"), "utf8"));
  writeSynthFile(join(dir, weights), Object.entries(manifest), "fp32");
  return dir;
}

/** UNet arithmetic of a case: float32, or float16 with the op types kept in float32. */
type UNetArithmetic = ({ precision: "float32" } | { precision: "float16"; keepFloat32: readonly Float32IslandOp[] }) & { linearWeights?: "q8"; convWeights?: "q8" };

/**
 * Kernels one run dispatched, per execution provider, from onnxruntime's profile (SSD1B_PROFILE, read by
 * runtime/session.ts when the session is created; the file is written when it is released).
 */
async function profiled<T>(work: () => Promise<T>): Promise<{ result: T; kernels: Record<string, number> }> {
  const dir = mkdtempSync(join(tmpdir(), "webgpu-profile-"));
  process.env.SSD1B_PROFILE = join(dir, "run");
  try {
    const result = await work();
    const [file] = readdirSync(dir).filter((f) => f.endsWith(".json"));
    const events: { cat?: string; name: string; ts: number; dur: number; args?: { provider?: string } }[] = JSON.parse(readFileSync(join(dir, file), "utf8"));
    const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run");
    const last = runs[runs.length - 1];
    const kernels: Record<string, number> = {};
    for (const e of events) {
      if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < last.ts || e.ts > last.ts + last.dur) continue;
      const p = e.args?.provider ?? "?";
      kernels[p] = (kernels[p] ?? 0) + 1;
    }
    return { result, kernels };
  } finally {
    delete process.env.SSD1B_PROFILE;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function unet(name: string, arithmetic: UNetArithmetic = { precision: "float32" }): Promise<Record<string, Diff>> {
  const dir = synthFolder("unet", name, "diffusion_pytorch_model.safetensors");
  try {
    const io = openFixture("unet", name, "io.safetensors");
    const files = openComponent(dir);
    const config = parseUNetConfig(files.config);
    const [b, , h, w] = io.get("in.sample").shape;
    // float16: no block outputs (each would be one more Cast and graph output); only out.sample is compared.
    const half = arithmetic.precision === "float16";
    const model = await compileComponent(files, "unet", `unet ${name}`, (g, vb) => buildUNetGraph(g, vb, config, { batch: b, height: h, width: w }, !half), { ...session, ...arithmetic });
    const out = await model.run({
      sample: io.float32("in.sample"), timestep: io.float32("in.timestep"), encoder_hidden_states: io.float32("in.encoder_hidden_states"),
      text_embeds: io.float32("in.text_embeds"), time_ids: io.float32("in.time_ids"),
    });
    await model.release();
    const diffs: Record<string, Diff> = {};
    for (const key of [...io.tensors.keys()].filter((k) => !half && k.startsWith("act."))) diffs[key] = diff(out[key.slice(4)], io.float32(key));
    diffs["out.sample"] = diff(out.sample_out, io.float32("out.sample"));
    return diffs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function vae(name: string): Promise<Record<string, Diff>> {
  const dir = synthFolder("vae", name, "diffusion_pytorch_model.safetensors");
  try {
    const io = openFixture("vae", name, "io.safetensors");
    const v = openVae(dir);
    const enc = await v.encoder(io.get("in.image").shape, session);
    const e = await enc.run({ image: io.float32("in.image") });
    await enc.release();
    const dec = await v.decoder(io.get("in.latent").shape, session);
    const d = await dec.run({ latent: io.float32("in.latent") });
    await dec.release();
    return { mean: diff(e.mean, io.float32("out.mean")), logvar: diff(e.logvar, io.float32("out.logvar")), decoded: diff(d.decoded, io.float32("out.decoded")) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function clip(name: string): Promise<Record<string, Diff>> {
  const dir = synthFolder("text_encoder", name, "model.safetensors");
  try {
    const io = openFixture("text_encoder", name, "io.safetensors");
    const enc = await createClipTextEncoder(dir, { session });
    const out = await enc.run(readInt64(io.get("in.input_ids")));
    await enc.release();
    const keys = ["last_hidden_state", "penultimate_hidden_state", io.has("out.text_embeds") ? "text_embeds" : "pooled"] as const;
    return Object.fromEntries(keys.map((k) => [k, diff(out[k]!, io.float32(`out.${k}`))]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One fixture case of the tiny pipeline (test/pipeline.test.ts) end to end: latents after each step, images. */
async function pipeline(model: "tiny-ssd" | "tiny-sdxl", name: string, unetPrecision: "float32" | "float16" = "float32"): Promise<Record<string, Diff>> {
  const tmp = mkdtempSync(join(tmpdir(), `webgpu-pipeline-`));
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, model), { session, vaePrecision: "float32", unetPrecision, onWarning: session.onWarning });
  try {
    const c = JSON.parse(readFileSync(fixture("pipeline", model, "cases.json"), "utf8"))[name];
    const ref = openFixture("pipeline", model, "cases.safetensors");
    const steps: Float32Array[] = [];
    const opts = {
      prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale,
      seed: c.seed, scheduler: c.scheduler, width: c.width, height: c.height, numImagesPerPrompt: c.num_images_per_prompt,
      onStep: ({ latents }: { latents: Float32Array }) => { steps.push(latents); },
    };
    const out = c.init_image
      ? await pipe.img2img({ ...opts, image: { data: ref.float32(`${name}.init_image`), shape: ref.get(`${name}.init_image`).shape }, strength: c.strength })
      : await pipe.generate(opts);
    const diffs: Record<string, Diff> = {};
    steps.forEach((lat, i) => { diffs[`latents_after_step${i}`] = diff(lat, ref.float32(`${name}.latents_after_step${i}`)); });
    diffs.images = diff(out.images.data, ref.float32(`${name}.images`));
    return diffs;
  } finally {
    await pipe.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * GroupNorms of one shape class with different epsilons in one process, as a UNet has them (1e-5 in the
 * resnets, 1e-6 in the transformers): onnxruntime's cached InstanceNormalization shader keeps the first
 * epsilon, which the lowering works around (ops/normalization.ts). The input's variance (~1e-3) makes
 * each epsilon visible.
 */
async function groupNormEpsilons(): Promise<Record<string, Diff>> {
  const shape = [1, 32, 4, 4];
  const x = Float32Array.from({ length: 512 }, (_, i) => 0.05 * Math.sin(i * 0.731));
  const diffs: Record<string, Diff> = {};
  // All alive at once: releasing the last session of a process drops onnxruntime's shader cache.
  const epsilons = [1e-1, 1e-4, 1e-5];
  const models = await Promise.all(epsilons.map((eps) => CompiledGraph.create(groupNormGraph(shape, 8, eps), `groupnorm eps ${eps}`, session)));
  try {
    for (const [i, eps] of epsilons.entries()) diffs[`eps ${eps}`] = diff((await models[i].run({ x })).y, Float32Array.from(groupNormReference(x, shape, 8, eps)));
  } finally {
    for (const m of models) await m.release();
  }
  return diffs;
}

export const CASES: Record<string, () => Promise<Omit<CaseResult, "case" | "ms" | "warnings">>> = {
  "attention-check": async () => ({ verdict: await webgpuAttentionVerdict() }),
  "groupnorm-epsilons": async () => ({ diffs: await groupNormEpsilons() }),
  "unet-tiny-ssd": async () => ({ diffs: await unet("tiny-ssd") }),
  "unet-tiny-sdxl": async () => ({ diffs: await unet("tiny-sdxl") }),
  "vae-tiny": async () => ({ diffs: await vae("tiny") }),
  "clip-l": async () => ({ diffs: await clip("clip-l-synth") }),
  "clip-g": async () => ({ diffs: await clip("clip-g-synth") }),
  "pipeline-tiny-ssd-basic": async () => ({ diffs: await pipeline("tiny-ssd", "basic") }),
  "pipeline-tiny-ssd-img2img": async () => ({ diffs: await pipeline("tiny-ssd", "img2img") }),
  "pipeline-tiny-sdxl-basic": async () => ({ diffs: await pipeline("tiny-sdxl", "basic") }),
  // unetPrecision float16 (WebGPU's default islands, UNET_FLOAT32_OPS_WEBGPU) against the fp32 references.
  // Profiled too: the kernels one UNet step dispatches (what a GPU pays host time for, per kernel).
  "unet-tiny-ssd-fp16": async () => {
    const { result, kernels } = await profiled(() => unet("tiny-ssd", { precision: "float16", keepFloat32: UNET_FLOAT32_OPS_WEBGPU }));
    return { diffs: result, kernels };
  },
  "pipeline-tiny-ssd-basic-fp16": async () => ({ diffs: await pipeline("tiny-ssd", "basic", "float16") }),
  // The float16 UNet with 8-bit Linear and conv weights (com.microsoft.MatMulNBits; SessionOptions.linearWeights, convWeights).
  // Profiled: every kernel must be on the WebGPU provider (no CPU fallback for MatMulNBits or the patches).
  "unet-tiny-ssd-q8": async () => {
    const { result, kernels } = await profiled(() => unet("tiny-ssd", { precision: "float16", keepFloat32: UNET_FLOAT32_OPS_WEBGPU, linearWeights: "q8", convWeights: "q8" }));
    return { diffs: result, kernels };
  },
};

/**
 * Measurement cases (not in CASE_NAMES): `unet-tiny-ssd-fp16-keep=GroupNormalization+Softmax` keeps the
 * listed op types in float32, `...-keep=` none; the relative L2 of each is what chose the default islands.
 */
function islandCase(name: string): (() => Promise<{ diffs: Record<string, Diff> }>) | undefined {
  const m = /^unet-(tiny-ssd|tiny-sdxl)-fp16-keep=(.*)$/.exec(name);
  if (!m) return undefined;
  const keepFloat32 = m[2] ? m[2].split("+") as Float32IslandOp[] : [];
  return async () => ({ diffs: await unet(m[1], { precision: "float16", keepFloat32 }) });
}

async function main(names: string[]) {
  for (const name of names) {
    const run = CASES[name] ?? islandCase(name);
    const t0 = performance.now();
    let result: CaseResult;
    try {
      if (!run) throw new Error(`unknown case "${name}"; known: ${Object.keys(CASES).join(", ")}`);
      result = { case: name, ...(await run()), ms: 0, warnings: [] };
    } catch (e) {
      result = { case: name, ms: 0, warnings: [], error: (e as Error).message };
    }
    result.ms = Math.round(performance.now() - t0);
    result.warnings = warnings.splice(0);
    process.stdout.write(`@@case ${JSON.stringify(result)}\n`);
  }
}

await main(process.argv.slice(2));
