/**
 * `npm run bench`: benchmarks on synth fp16 checkpoints (written once to $SSD1B_BENCH_DIR, default
 * <tmp>/ssd1b-bench), each measurement in a fresh process so peak memory is its own.
 *  - unet: SSD-1B and SDXL UNets, batch 2 → bench/results/unet-<device>.md
 *  - pipeline: SSD-1B text-to-image by stage → bench/results/pipeline-cpu.md
 *  - decode: SDXL VAE decoder vs TAESDXL decoder (fast decode / previews) → bench/results/decode-cpu.md
 *  - vae-tiling: the SDXL VAE decode whole vs in tiles of --vae-tile pixels (default 512) → bench/results/vae-tiling-cpu.md
 *  - fast: the --fast preset (LCM, 4 steps, guidance 1, TAESD) against the default 25-step image, same run → bench/results/fast-preset-cpu.md
 *  - controlnet: FLOPs of the SDXL ControlNet (controlnet-canny-sdxl-1.0's shape) against one SSD-1B / SDXL UNet step, and
 *    seconds for both at the smallest --sizes → bench/results/controlnet-cpu.md (--controlnet-runs N, default 1)
 *  - ops: each product kind of the UNet alone (MatMul, Linear + bias, Conv 3x3, attention) at its shapes: ms, TFLOP/s and
 *    the WebGPU kernels chosen → bench/results/ops-<device>.md (bench/ops-worker.ts)
 *  - server: requests/minute and latency under 4 clients, tiny model → bench/results/server.md (bench/server.ts)
 *  - synth-unet / synth-pipeline: only write the synth checkpoints (the device script runs them in parallel)
 *  - unet-guidance: a step with FreeU and with PAG (batch 3) against CFG alone → bench/results/unet-guidance-<device>.md
 * Options: --suites unet,pipeline,fast,decode  --device cpu|webgpu  --sizes 512,1024  --runs N  --models ssd-1b,sdxl  --steps 25
 *   --unet-precision auto|float16|float32 (auto: float16 on webgpu, as the pipeline), --peak-tflops T (the device's dense fp16
 *   peak, e.g. 989 for an H200: the tables give the share of it). --models tiny-ssd / tiny-sdxl: the fixtures' tiny UNets (and
 *   the tiny pipeline), a smoke test of the suites on any device in seconds (lavapipe included).
 */
import { spawnSync } from "node:child_process";
import { cpus, totalmem, tmpdir } from "node:os";
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthComponent, synthModel } from "../src/cli/commands/synth.js";
import { fullSizeModelFolder } from "../test/helpers/full-size-model.js";
import { TAESDXL_CONFIG } from "../src/models/taesd/autoencoder-tiny.js";
import { Graph } from "../src/ir/graph.js";
import { WeightBuilder, shapeOnlySource } from "../src/nn/weights.js";
import { buildUNetGraph, parseUNetConfig } from "../src/models/unet/index.js";
import { buildControlNetGraph, parseControlNetConfig } from "../src/models/controlnet/index.js";
import { checkControlNetFits } from "../src/pipelines/controlnet-runner.js";
import { FIXTURES, diff, fixture } from "../test/helpers/fixtures.js";
import { tinyModelIn } from "../test/helpers/tiny-model.js";
import { unetFloat32Ops, unetQ8Weights } from "../src/pipelines/sessions.js";
import { webgpuOverrides } from "../src/runtime/webgpu-options.js";
import { OP_CASES } from "./op-cases.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const configs = join(FIXTURES, "configs");
const { values } = parseArgs({
  options: {
    device: { type: "string", default: "cpu" }, sizes: { type: "string", default: "512,1024" },
    runs: { type: "string", default: "2" }, models: { type: "string", default: "ssd-1b,sdxl" },
    suites: { type: "string", default: "unet,pipeline,fast,decode,server" }, steps: { type: "string", default: "25" },
    "controlnet-runs": { type: "string", default: "1" }, "vae-tile": { type: "string", default: "512" },
    "unet-precision": { type: "string", default: "auto" }, "peak-tflops": { type: "string" },
  },
});
const precisionArg = values["unet-precision"]!;
if (!["auto", "float16", "float32"].includes(precisionArg)) throw new Error(`--unet-precision must be auto, float16 or float32, got "${precisionArg}"`);
/** The UNet's arithmetic: "auto" resolves as the pipeline's unetPrecision does. */
const unetPrecision = precisionArg === "auto" ? (values.device === "webgpu" ? "float16" : "float32") : precisionArg;
const peakTflops = values["peak-tflops"] === undefined ? undefined : Number(values["peak-tflops"]);
const isTiny = (model: string) => model.startsWith("tiny-");
/** The fp16 UNet's float32 op types on this device (unetSession's, SSD1B_UNET_FLOAT32_OPS included). */
const islands = unetFloat32Ops(values.device === "webgpu" ? "webgpu" : "cpu").join("+") || "none";
/** ", q8 Linear weights" etc. under SSD1B_UNET_LINEAR_WEIGHTS / SSD1B_UNET_CONV_WEIGHTS=q8 (the UNet and pipeline suites' titles). */
const q8 = unetQ8Weights();
const q8Title = q8.linearWeights === "q8" || q8.convWeights === "q8"
  ? `, q8 ${[q8.linearWeights === "q8" ? "Linear" : "", q8.convWeights === "q8" ? "Conv" : ""].filter(Boolean).join(" and ")} weights` : "";
/** The pipeline worker's SSD1B_BENCH_WEIGHTS=q8: the UNet's and both text encoders' Linear layers in 8 bits (the user options). */
const pipelineQ8Title = process.env.SSD1B_BENCH_WEIGHTS === "q8" ? ", q8 Linear weights in the UNet and text encoders" : q8Title;
/** SSD1B_BENCH_KEEP_LOADED=1: the pipeline worker keeps every session once made, as the server does. */
const keptLoaded = !!process.env.SSD1B_BENCH_KEEP_LOADED;
const benchDir = process.env.SSD1B_BENCH_DIR ?? join(tmpdir(), "ssd1b-bench");

function modelDir(name: string): string {
  const dir = join(benchDir, name, "unet");
  if (!existsSync(join(dir, "diffusion_pytorch_model.fp16.safetensors"))) {
    mkdirSync(dir, { recursive: true });
    copyFileSync(isTiny(name) ? fixture("unet", name, "config.json") : join(configs, name, "unet_config.json"), join(dir, "config.json"));
    process.stderr.write(`writing synth fp16 ${name} UNet to ${dir} ...\n`);
    synthComponent(dir, "fp16");
  }
  return dir;
}

const cpu = cpus()[0]?.model ?? "unknown CPU";
let ort = "";
try { ort = JSON.parse(readFileSync(join(root, "node_modules/onnxruntime-node/package.json"), "utf8")).version; } catch { /* absent */ }
const machine = `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Node ${process.version}, onnxruntime-node ${ort}; ${new Date().toISOString().slice(0, 10)}.`;
const gib = (b: number) => (b / 2 ** 30).toFixed(2);

function runWorker(script: string, args: string[]): any {
  const r = spawnSync(process.execPath, [join(here, script), ...args], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) { process.stderr.write(r.stderr); throw new Error(`${script} ${args.join(" ")}: worker failed`); }
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** Where the tables go: bench/results, or SSD1B_BENCH_RESULTS (smoke runs that must not touch the committed ones). */
const resultsDir = process.env.SSD1B_BENCH_RESULTS ?? join(root, "bench/results");

function writeResult(name: string, lines: string[]): void {
  const out = join(resultsDir, name);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, lines.join("\n"));
  process.stdout.write(lines.join("\n") + "\n");
}

/** TFLOP/s and, with --peak-tflops, the share of the device's peak. */
function rate(flops: number, seconds: number): string {
  const t = flops / seconds / 1e12;
  return `${t.toFixed(t < 1 ? 3 : 1)}${peakTflops ? ` | ${(100 * t / peakTflops).toFixed(1)} %` : ""}`;
}

function unetSuite(): void {
  interface Row { model: string; size: number; sessionSeconds: number; seconds: number; flops: number; peakRss: number }
  const rows: Row[] = [];
  const batch = 2;
  for (const model of values.models!.split(",")) {
    const dir = modelDir(model);
    for (const size of values.sizes!.split(",").map(Number)) {
      process.stderr.write(`${model} ${size}x${size} batch ${batch} on ${values.device} (${unetPrecision}) ...\n`);
      const res = runWorker("unet-worker.js", [dir, String(size), String(batch), values.runs!, values.device!, unetPrecision]);
      const seconds = Math.min(...res.times);
      rows.push({ model, size, sessionSeconds: res.sessionSeconds, seconds, flops: res.flops, peakRss: res.peakRss });
      process.stderr.write(`  ${(seconds * 1000).toFixed(1)} ms/step (runs: ${res.times.map((x: number) => x.toFixed(3)).join(", ")}), ${rate(res.flops, seconds).replace(" | ", " TFLOP/s, share of peak ")}, session ${res.sessionSeconds.toFixed(1)} s, peak ${gib(res.peakRss)} GiB\n`);
    }
  }
  const lines = [
    `# UNet benchmark (${values.device}, ${unetPrecision}${unetPrecision === "float16" && process.env.SSD1B_UNET_FLOAT32_OPS !== undefined ? `, float32 ${islands}` : ""}${q8Title}${values.device === "webgpu" && webgpuOverrides() ? `, ${webgpuOverrides()}` : ""})`,
    "",
    machine,
    `Synth fp16 checkpoints (diffusers layout, loaded as a user would), UNet in ${unetPrecision}${unetPrecision === "float16" ? ` (float32 islands: ${islands})` : ""},`,
    `batch ${batch} (classifier-free guidance: one UNet evaluation is one denoising step), best of ${values.runs} forward passes, each size in a fresh process.`,
    peakTflops ? `Share of peak: against ${peakTflops} TFLOP/s (--peak-tflops, the device's dense fp16 peak).` : "",
    "",
    `| model | size | session creation (s) | ms/step | TFLOP (IR) | TFLOP/s |${peakTflops ? " share of peak |" : ""} peak RSS (GiB) |`,
    `|---|---|---|---|---|---|${peakTflops ? "---|" : ""}---|`,
    ...rows.map((r) => `| ${r.model} | ${r.size}x${r.size} | ${r.sessionSeconds.toFixed(1)} | ${(r.seconds * 1000).toFixed(1)} | ${(r.flops / 1e12).toFixed(3)} | ${rate(r.flops, r.seconds)} | ${gib(r.peakRss)} |`),
    "",
  ];
  for (const size of new Set(rows.map((r) => r.size))) {
    const a = rows.find((r) => r.model === "ssd-1b" && r.size === size);
    const b = rows.find((r) => r.model === "sdxl" && r.size === size);
    if (a && b) lines.push(`SDXL / SSD-1B at ${size}x${size}: time ${(b.seconds / a.seconds).toFixed(2)}x, FLOPs ${(b.flops / a.flops).toFixed(2)}x.`, "");
  }
  writeResult(`unet-${values.device}.md`, lines);
}

/**
 * What FreeU and perturbed-attention guidance cost per denoising step: the UNet with classifier-free
 * guidance (batch 2), the FreeU graph (batch 2), and PAG under CFG (batch 3, the third perturbed), each
 * in a fresh process, as ratios against the first.
 */
function unetGuidanceSuite(): void {
  const rows: string[] = [];
  for (const model of values.models!.split(",")) {
    const dir = modelDir(model);
    // SDXL's mid block has self-attention, SSD-1B's and Vega's not: PAG on up_blocks.0 there
    const layers = model === "sdxl" ? "mid" : "up_blocks.0";
    for (const size of values.sizes!.split(",").map(Number)) {
      const variants = [["CFG (plain)", "2", "plain"], ["CFG + FreeU", "2", "freeu"], [`CFG + PAG (${layers})`, "3", `pag:${layers}`]] as const;
      let base = 0;
      for (const [label, batch, variant] of variants) {
        process.stderr.write(`${model} ${size}x${size} ${label} ...\n`);
        const res = runWorker("unet-worker.js", [dir, String(size), batch, values.runs!, values.device!, unetPrecision, variant]);
        const seconds = Math.min(...res.times);
        if (variant === "plain") base = seconds;
        rows.push(`| ${model} | ${size}x${size} | ${label} | ${batch} | ${(seconds * 1000).toFixed(0)} | ${(seconds / base).toFixed(3)}x | ${(res.flops / 1e12).toFixed(3)} | ${gib(res.peakRss)} |`);
        process.stderr.write(`  ${(seconds * 1000).toFixed(0)} ms/step (${(seconds / base).toFixed(3)}x)\n`);
      }
    }
  }
  writeResult(`unet-guidance-${values.device}.md`, [
    `# FreeU and PAG per denoising step (${values.device}, ${unetPrecision})`,
    "",
    machine,
    `Synth fp16 checkpoints, UNet in ${unetPrecision}, best of ${values.runs} forward passes, each variant in a fresh process; the ratio is against CFG alone at the same size.`,
    "",
    "| model | size | UNet call | batch | ms/step | vs CFG | TFLOP (IR) | peak RSS (GiB) |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
  ]);
}

function fullSsd1b(): string {
  const dir = join(benchDir, "ssd-1b-full");
  if (!existsSync(join(dir, "unet", "diffusion_pytorch_model.fp16.safetensors"))) {
    fullSizeModelFolder(dir, "ssd-1b");
    synthModel(dir, "fp16", (l) => process.stderr.write(l + "\n"));
  }
  return dir;
}

/** The default 25-step image (estimated from a few measured steps) against the fast preset's 4 steps, at each size, in one run. */
function fastSuite(): void {
  const dir = fullSsd1b();
  const taesd = componentDir("taesdxl", () => JSON.stringify(TAESDXL_CONFIG));
  const rows: string[] = [];
  for (const size of values.sizes!.split(",").map(Number)) {
    process.stderr.write(`default vs fast at ${size}x${size} ...\n`);
    const d = runWorker("pipeline-worker.js", [dir, String(size), "2"]);
    const q = runWorker("pipeline-worker.js", [dir, String(size), "4", taesd]);
    const full = d.firstStepSeconds + 24 * d.perStepSeconds + d.decodeSeconds;
    rows.push(`| ${size}x${size} | ${d.perStepSeconds.toFixed(2)} | ${d.decodeSeconds.toFixed(1)} | ${full.toFixed(0)} | ${q.perStepSeconds.toFixed(2)} | ${q.decodeSeconds.toFixed(1)} | ${q.totalSeconds.toFixed(1)} | ${(full / q.totalSeconds).toFixed(1)}x |`);
  }
  writeResult("fast-preset-cpu.md", [
    "# Fast preset vs default (cpu)",
    "",
    machine,
    "Full-size synth SSD-1B, fp16 variant, one image, low-memory mode as the CLI runs it, each run in a fresh process.",
    "Default: Euler, 25 steps, guidance 5 (batch 2 through the UNet), SDXL VAE decode; estimated as first step + 24 x s/step + decode from 2 measured steps.",
    "Fast (`--fast`): LCM, 4 steps, guidance 1 (batch 1), TAESDXL decode; measured whole. Its LCM-LoRA is folded into the UNet weights at session",
    "creation and does not change the time of a step, so it is left out here (synth weights have no real LoRA).",
    "",
    "| size | default s/step | default VAE decode (s) | default 25-step image (s) | fast s/step | fast TAESD decode (s) | fast 4-step image (s) | speed-up |",
    "|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
  ]);
}

/** The pipeline suites' model: full-size synth SSD-1B, or the tiny fixture pipeline with --models tiny-ssd / tiny-sdxl. */
function pipelineModel(): string {
  const tiny = values.models!.split(",").find(isTiny);
  return tiny ? tinyModelIn(join(benchDir, "pipelines"), tiny as "tiny-ssd" | "tiny-sdxl") : fullSsd1b();
}

/**
 * On the CPU: the CLI's one-shot run (low memory, sessions created on the way). On WebGPU: a warm
 * pipeline (a 1-step image first creates every session), then the timed image, as a server runs it.
 */
function pipelineSuite(): void {
  const dir = pipelineModel();
  const steps = Number(values.steps);
  const rows: any[] = [];
  const warm = values.device === "webgpu";
  for (const size of values.sizes!.split(",").map(Number)) {
    process.stderr.write(`pipeline ${size}x${size}, ${steps} steps on ${values.device}${warm ? " (warm)" : ""} ...\n`);
    const r = runWorker("pipeline-worker.js", [dir, String(size), String(steps), "", values.device!, unetPrecision, warm ? "warm" : ""]);
    rows.push(r);
    process.stderr.write(`  ${JSON.stringify(r)}\n`);
  }
  writeResult(`pipeline-${values.device}.md`, pipelineTable(rows, warm));
}

/** Rows of earlier runs are kept (keyed by size), so sizes can be measured in separate invocations. */
function pipelineTable(rows: any[], warm: boolean): string[] {
  const f = (x: number) => x.toFixed(warm ? 3 : 1);
  const file = join(resultsDir, `pipeline-${values.device}.md`);
  const kept = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => /^\| \d+x\d+ \|/.test(l)) : [];
  const fresh = rows.map((r) => `| ${r.size}x${r.size} | ${r.steps} | ${f(r.loadSeconds)} | ${r.textEncodeSeconds.toFixed(3)} | ${r.perStepSeconds.toFixed(3)} | ${f(r.decodeSeconds)} | ${f(r.totalSeconds)} | ${f(r.steps === 25 ? r.totalSeconds : r.firstStepSeconds + 24 * r.perStepSeconds + r.decodeSeconds)} | ${gib(r.peakRss)} |`);
  const sizes = new Set(rows.map((r) => `${r.size}x${r.size}`));
  const all = [...kept.filter((l) => !sizes.has(l.split("|")[1].trim())), ...fresh].sort((a, b) => parseInt(a.slice(2)) - parseInt(b.slice(2)));
  const model = values.models!.split(",").find(isTiny) ?? "Full-size synth SSD-1B, fp16 variant";
  return [
    `# SSD-1B pipeline benchmark (${values.device}${pipelineQ8Title}${values.device === "webgpu" && webgpuOverrides() ? `, ${webgpuOverrides()}` : ""})`,
    "",
    machine,
    `${model}, text-to-image, guidance 5 (batch 2 through the UNet), Euler, one image, UNet in ${unetPrecision}, each size in a fresh process,`,
    warm
      ? "warm: a 1-step image at the same size first creates every session (text encoders, UNet, VAE), then the timed image runs; `load` is the folder's opening only."
      : keptLoaded
        ? "every session kept once created, as the server holds them (SSD1B_BENCH_KEEP_LOADED), each created when first needed."
        : "in low-memory mode as the CLI runs it (one component's session at a time, each created when needed).",
    warm ? "`first step` includes prompt encoding; `VAE decode` is the decode alone." : "`first step` includes prompt encoding and the UNet's session creation; `VAE decode` includes the VAE session's creation.",
    "The 25-step time is measured where `steps run` is 25, else estimated as first step + 24 × s/step + VAE decode.",
    "",
    "| size | steps run | load (s) | text encoders (s) | s/step | VAE decode (s) | whole run (s) | 25-step image (s) | peak RSS (GiB) |",
    "|---|---|---|---|---|---|---|---|---|",
    ...all,
    "",
  ];
}

/** A full-size synth fp16 component folder from a config, written once. */
function componentDir(name: string, config: () => string): string {
  const dir = join(benchDir, name);
  if (!existsSync(join(dir, "diffusion_pytorch_model.fp16.safetensors"))) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), config());
    synthComponent(dir, "fp16");
  }
  return dir;
}

/** The SDXL VAE decoder against TAESDXL's on the same latents: what --fast-decode and TAESD previews save. */
function decodeSuite(): void {
  const dirs = {
    vae: componentDir("sdxl-vae", () => readFileSync(join(configs, "sdxl-vae.json"), "utf8")),
    taesd: componentDir("taesdxl", () => JSON.stringify(TAESDXL_CONFIG)),
  };
  const rows: any[] = [];
  for (const size of values.sizes!.split(",").map(Number)) {
    for (const kind of ["vae", "taesd"] as const) {
      process.stderr.write(`decode ${kind} ${size}x${size} ...\n`);
      const r = runWorker("decode-worker.js", [kind, dirs[kind], String(size), values.runs!, values.device!]);
      rows.push(r);
      process.stderr.write(`  ${JSON.stringify(r)}\n`);
    }
  }
  const best = (r: any) => Math.min(...r.times);
  const lines = [
    `# Decoder benchmark: SDXL VAE vs TAESDXL (${values.device})`,
    "",
    machine,
    `Full-size synth fp16 checkpoints, one latent [1, 4, size/8, size/8], best of ${values.runs} runs, each decoder and size in a fresh process.`,
    "TAESDXL is what `--fast-decode` and the TAESD previews run instead of the VAE.",
    "",
    "| size | decoder | session creation (s) | decode (s) | TFLOP (IR) | peak RSS (GiB) |",
    "|---|---|---|---|---|---|",
    ...rows.map((r) => `| ${r.size}x${r.size} | ${r.kind === "vae" ? "SDXL VAE" : "TAESDXL"} | ${r.sessionSeconds.toFixed(1)} | ${best(r).toFixed(2)} | ${(r.flops / 1e12).toFixed(3)} | ${gib(r.peakRss)} |`),
    "",
  ];
  for (const size of new Set(rows.map((r) => r.size))) {
    const v = rows.find((r) => r.kind === "vae" && r.size === size), t = rows.find((r) => r.kind === "taesd" && r.size === size);
    if (v && t) lines.push(`TAESDXL at ${size}x${size}: ${(best(v) / best(t)).toFixed(1)}x faster than the VAE, ${(v.flops / t.flops).toFixed(1)}x fewer FLOPs.`, "");
  }
  writeResult(`decode-${values.device}.md`, lines);
}

/**
 * The SDXL VAE decode whole against tiled (--vae-tile-size, default 512 here) on the same latent: peak memory,
 * time, and how far the tiled image is from the whole one (relative L2 of the decoded [3, H, W]).
 */
function vaeTilingSuite(): void {
  const dir = componentDir("sdxl-vae", () => readFileSync(join(configs, "sdxl-vae.json"), "utf8"));
  const tile = Number(values["vae-tile"]);
  const rows: string[] = [];
  for (const size of values.sizes!.split(",").map(Number)) {
    const out = (k: string) => join(benchDir, `decoded-${k}-${size}.f32`);
    const runs = ["vae", `vae-tiled:${tile}`].map((kind) => {
      process.stderr.write(`decode ${kind} ${size}x${size} ...\n`);
      const r = runWorker("decode-worker.js", [kind, dir, String(size), values.runs!, values.device!, out(kind === "vae" ? "whole" : "tiled")]);
      process.stderr.write(`  ${JSON.stringify(r)}\n`);
      return r;
    });
    const read = (k: string) => { const b = readFileSync(out(k)); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4); };
    const vsWhole = diff(read("tiled"), read("whole")).relL2;
    const [w, t] = runs, best = (r: any) => Math.min(...r.times);
    rows.push(`| ${size}x${size} | whole | ${best(w).toFixed(1)} | ${gib(w.peakRss)} | |`);
    rows.push(`| ${size}x${size} | tiles of ${tile} | ${best(t).toFixed(1)} | ${gib(t.peakRss)} | ${vsWhole.toExponential(2)} |`);
  }
  writeResult(`vae-tiling-${values.device}.md`, [
    `# VAE decode whole against tiled (${values.device})`,
    "",
    machine,
    `Full-size synth fp16 SDXL VAE, one latent [1, 4, size/8, size/8], best of ${values.runs} runs, each in a fresh process. Tiled: the pipeline's`,
    "VaeRunner with tiling (`--vae-tile-size`, diffusers' enable_vae_tiling geometry and blending); its time includes the tile sessions' creation",
    "(one tile shape's session at a time). `vs whole`: relative L2 of the tiled decode against the whole one (GroupNorm statistics per tile).",
    "",
    "| size | decode | decode (s) | peak RSS (GiB) | vs whole |",
    "|---|---|---|---|---|",
    ...rows,
    "",
  ]);
}

/**
 * diffusers/controlnet-canny-sdxl-1.0's architecture: ControlNetModel.from_unet(SDXL UNet) with
 * conditioning_embedding_out_channels [16, 32, 96, 256]: the SDXL encoder (down blocks with
 * transformer depths 1, 2, 10, the cross-attention mid block), 9 + 1 zero convs.
 */
function sdxlControlNetConfig(): Record<string, unknown> {
  const u = JSON.parse(readFileSync(join(configs, "sdxl", "unet_config.json"), "utf8"));
  delete u.up_block_types; delete u.out_channels; delete u.center_input_sample; delete u.sample_size;
  return { ...u, _class_name: "ControlNetModel", conditioning_channels: 3, conditioning_embedding_out_channels: [16, 32, 96, 256], controlnet_conditioning_channel_order: "rgb", global_pool_conditions: false };
}

function controlnetSuite(): void {
  const cnRaw = sdxlControlNetConfig();
  const cn = parseControlNetConfig(cnRaw);
  const unets = Object.fromEntries(["ssd-1b", "sdxl"].map((m) => [m, parseUNetConfig(JSON.parse(readFileSync(join(configs, m, "unet_config.json"), "utf8")))]));
  for (const u of Object.values(unets)) checkControlNetFits(cn, u);
  const flops = (build: (g: Graph, vb: WeightBuilder) => void) => { const g = new Graph(); build(g, WeightBuilder.root(g, shapeOnlySource())); return g.flops(); };
  const batch = 2;
  const sizes = [...new Set([...values.sizes!.split(",").map(Number), 1024])].sort((a, b) => a - b);
  const flopRows: string[] = [];
  for (const size of sizes) {
    const lat = size / 8;
    const shape = { batch, height: lat, width: lat };
    const net = flops((g, vb) => buildControlNetGraph(g, vb, cn, shape));
    for (const [name, u] of Object.entries(unets)) {
      const plain = flops((g, vb) => buildUNetGraph(g, vb, u, shape));
      const fed = flops((g, vb) => buildUNetGraph(g, vb, u, shape, { controlnetResiduals: true }));
      flopRows.push(`| ${size}x${size} | ${name} | ${(plain / 1e12).toFixed(2)} | ${(fed / 1e12).toFixed(2)} | ${(net / 1e12).toFixed(2)} | ${(net / plain).toFixed(2)}x | ${((net + fed) / plain).toFixed(2)}x |`);
    }
  }
  const timeSize = sizes[0];
  const dirs = {
    controlnet: componentDir("sdxl-controlnet", () => JSON.stringify(cnRaw, null, 2)),
    unet: modelDir("ssd-1b"),
    "unet-residuals": modelDir("ssd-1b"),
  };
  const kinds = ["unet", "controlnet", "unet-residuals"] as const;
  const timed: any = {};
  for (const kind of kinds) {
    process.stderr.write(`controlnet suite: ${kind} ${timeSize}x${timeSize} ...\n`);
    timed[kind] = runWorker("controlnet-worker.js", [kind, dirs[kind], String(timeSize), values["controlnet-runs"]!]);
    process.stderr.write(`  ${JSON.stringify(timed[kind])}\n`);
  }
  const best = (r: any) => Math.min(...r.times);
  writeResult("controlnet-cpu.md", [
    "# ControlNet benchmark (cpu)",
    "",
    machine,
    "ControlNet: diffusers/controlnet-canny-sdxl-1.0's architecture (the SDXL UNet's encoder, conditioning_embedding_out_channels",
    "[16, 32, 96, 256]); it fits SSD-1B too (same widths, cross-attention and micro-conditioning dims; checkControlNetFits passes).",
    `Batch ${batch} (classifier-free guidance) for every graph. FLOPs from the IR (shape-only graphs). A ControlNet step is`,
    "one ControlNet pass plus one UNet pass with residual inputs; the residual adds cost next to nothing.",
    "",
    "| size | UNet | UNet step (TFLOP) | UNet with residuals (TFLOP) | ControlNet (TFLOP) | ControlNet / UNet | ControlNet step / plain step |",
    "|---|---|---|---|---|---|---|",
    ...flopRows,
    "",
    `Seconds at ${timeSize}x${timeSize} (the smallest size asked for; 1024x1024 would take minutes per pass on 2 cores), synth fp16`,
    `checkpoints loaded as a user would, best of ${values["controlnet-runs"]} pass(es), each in a fresh process, one after another`,
    "(the 1-minute load average at the end of each is given: other work on the machine slows a pass down):",
    "",
    "| graph | session creation (s) | forward (s) | TFLOP (IR) | GFLOP/s | peak RSS (GiB) | load average |",
    "|---|---|---|---|---|---|---|",
    ...kinds.map((k) => {
      const r = timed[k];
      const name = { controlnet: "SDXL ControlNet", unet: "SSD-1B UNet (plain)", "unet-residuals": "SSD-1B UNet with residuals" }[k];
      return `| ${name} | ${r.sessionSeconds.toFixed(1)} | ${best(r).toFixed(2)} | ${(r.flops / 1e12).toFixed(2)} | ${(r.flops / best(r) / 1e9).toFixed(0)} | ${gib(r.peakRss)} | ${r.loadAverage.toFixed(1)} |`;
    }),
    "",
    `A ControlNet-guided SSD-1B step at ${timeSize}x${timeSize}: ${(best(timed.controlnet) + best(timed["unet-residuals"])).toFixed(1)} s, ${((best(timed.controlnet) + best(timed["unet-residuals"])) / best(timed.unet)).toFixed(2)}x the plain UNet pass.`,
    "",
  ]);
}

/**
 * Each product kind of the UNet alone (bench/op-cases.ts) at the first --sizes entry: ms and TFLOP/s per op,
 * and on WebGPU the kernels onnxruntime dispatched for it (name[variant]:workgroup size, from its "info" log),
 * which say which MatMul/Conv algorithm and tiling this adapter gets (docs/webgpu-matmul.md).
 */
function opsSuite(): void {
  const size = Number(values.sizes!.split(",")[0]), lat = size / 8;
  const rows: string[] = [];
  for (const name of Object.keys(OP_CASES)) {
    process.stderr.write(`ops: ${name} at ${size}x${size} on ${values.device} (${unetPrecision}) ...\n`);
    const r = spawnSync(process.execPath, [join(here, "ops-worker.js"), name, String(lat), values.runs!, values.device!, unetPrecision], { encoding: "utf8", maxBuffer: 1 << 28 });
    if (r.status !== 0) { process.stderr.write(r.stderr.slice(-4000)); rows.push(`| ${name} | failed (exit ${r.status}) | | | | |`); continue; }
    const res = JSON.parse(r.stdout.trim().split("\n").pop()!);
    const kernels = new Set<string>();
    let timed = false;
    for (const line of r.stderr.split("\n")) {
      if (line.startsWith("@@timed")) timed = true;
      else if (line.startsWith("@@untimed")) timed = false;
      const m = timed && /Starting program "([^"]*)"/.exec(line);
      // name[variant]:workgroup; Casts and Transposes at the graph's ends are not the op's
      const key = m && /^([^[]*\[[^\]]*\]):([^:]*)/.exec(m[1]);
      if (key && !/^(Cast|Transpose)$/.test(key[1].split("[")[0])) kernels.add(`${key[1]}:${key[2]}`);
    }
    const ms = res.seconds * 1000;
    process.stderr.write(`  ${ms.toFixed(2)} ms/op, ${rate(res.flops, res.seconds).replace(" | ", " TFLOP/s, share of peak ")}\n`);
    const timing = res.seconds > 0 ? `${ms.toFixed(2)} | ${(res.flops / 1e9).toFixed(1)} | ${rate(res.flops, res.seconds)}` : `below noise | ${(res.flops / 1e9).toFixed(1)} | -${peakTflops ? " | -" : ""}`;
    rows.push(`| ${name} | ${res.what} | ${timing} | ${[...kernels].map((k) => `\`${k.replaceAll("|", "\\|")}\``).join(" ") || "-"} |`);
  }
  writeResult(`ops-${values.device}.md`, [
    `# The UNet's products alone (${values.device}, ${unetPrecision}${values.device === "webgpu" && webgpuOverrides() ? `, ${webgpuOverrides()}` : ""})`,
    "",
    machine,
    `Shapes of the SDXL-family UNet at ${size}x${size}, batch 2 (bench/op-cases.ts). Each op is timed as a chain of 4 and of 8`,
    `equal ops in one session, median of ${values.runs} runs each: (t8 - t4) / 4, so uploads, readbacks and per-run costs cancel.`,
    ...(values.device === "webgpu" ? ["Kernels: onnxruntime's WebGPU programs dispatched for the op (name[variant]:workgroup size), from its info log."] : []),
    ...(peakTflops ? [`Share of peak: against ${peakTflops} TFLOP/s (--peak-tflops).`] : []),
    "",
    `| case | op | ms/op | GFLOP/op | TFLOP/s |${peakTflops ? " share of peak |" : ""} kernels |`,
    `|---|---|---|---|---|${peakTflops ? "---|" : ""}---|`,
    ...rows,
    "",
  ]);
}

const suites = values.suites!.split(",");
if (suites.includes("synth-unet")) for (const model of values.models!.split(",")) modelDir(model);
if (suites.includes("synth-pipeline")) pipelineModel();
if (suites.includes("unet")) unetSuite();
if (suites.includes("ops")) opsSuite();
if (suites.includes("pipeline")) pipelineSuite();
if (suites.includes("fast")) fastSuite();
if (suites.includes("decode")) decodeSuite();
if (suites.includes("vae-tiling")) vaeTilingSuite();
if (suites.includes("controlnet")) controlnetSuite();
if (suites.includes("unet-guidance")) unetGuidanceSuite();
if (suites.includes("server")) {
  const r = spawnSync(process.execPath, [join(here, "server.js")], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("server benchmark failed");
}
