/**
 * `npm run bench`: UNet benchmarks for SSD-1B and SDXL on synth fp16 checkpoints (written once to
 * $SSD1B_BENCH_DIR, default <tmp>/ssd1b-bench), each size in a fresh process; writes a markdown table
 * to bench/results/unet-<device>.md. Options: --device cpu|webgpu, --sizes 512,1024, --runs N, --models ssd-1b,sdxl.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { cpus, totalmem, tmpdir } from "node:os";
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthComponent } from "../src/cli/commands/synth.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const configs = resolve(root, "../shared/fixtures/configs");
const { values } = parseArgs({
  options: {
    device: { type: "string", default: "cpu" }, sizes: { type: "string", default: "512,1024" },
    runs: { type: "string", default: "2" }, models: { type: "string", default: "ssd-1b,sdxl" },
  },
});
const benchDir = process.env.SSD1B_BENCH_DIR ?? join(tmpdir(), "ssd1b-bench");

function modelDir(name: string): string {
  const dir = join(benchDir, name, "unet");
  if (!existsSync(join(dir, "diffusion_pytorch_model.fp16.safetensors"))) {
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(configs, name, "unet_config.json"), join(dir, "config.json"));
    process.stderr.write(`writing synth fp16 ${name} UNet to ${dir} ...\n`);
    synthComponent(dir, "fp16");
  }
  return dir;
}

interface Row { model: string; size: number; sessionSeconds: number; seconds: number; flops: number; peakRss: number }
const rows: Row[] = [];
const batch = 2;
for (const model of values.models!.split(",")) {
  const dir = modelDir(model);
  for (const size of values.sizes!.split(",").map(Number)) {
    process.stderr.write(`${model} ${size}x${size} batch ${batch} on ${values.device} ...\n`);
    const r = spawnSync(process.execPath, [join(here, "unet-worker.js"), dir, String(size), String(batch), values.runs!, values.device!], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status !== 0) { process.stderr.write(r.stderr); throw new Error(`${model} ${size}: worker failed`); }
    const res = JSON.parse(r.stdout.trim().split("\n").pop()!);
    const seconds = Math.min(...res.times);
    rows.push({ model, size, sessionSeconds: res.sessionSeconds, seconds, flops: res.flops, peakRss: res.peakRss });
    process.stderr.write(`  ${seconds.toFixed(2)} s/forward (runs: ${res.times.map((x: number) => x.toFixed(2)).join(", ")}), session ${res.sessionSeconds.toFixed(1)} s, peak ${(res.peakRss / 2 ** 30).toFixed(2)} GiB\n`);
  }
}

const cpu = cpus()[0]?.model ?? "unknown CPU";
let ort = "";
try { ort = JSON.parse(readFileSync(join(root, "node_modules/onnxruntime-node/package.json"), "utf8")).version; } catch { /* absent */ }
const lines = [
  `# UNet benchmark (${values.device})`,
  "",
  `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Node ${process.version}, onnxruntime-node ${ort}; ${new Date().toISOString().slice(0, 10)}.`,
  `Synth fp16 checkpoints (diffusers layout, loaded as a user would), batch ${batch} (classifier-free guidance), best of ${values.runs} forward passes, each size in a fresh process.`,
  "",
  "| model | size | session creation (s) | forward (s) | TFLOP (IR) | GFLOP/s | peak RSS (GiB) |",
  "|---|---|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.model} | ${r.size}x${r.size} | ${r.sessionSeconds.toFixed(1)} | ${r.seconds.toFixed(2)} | ${(r.flops / 1e12).toFixed(2)} | ${(r.flops / r.seconds / 1e9).toFixed(0)} | ${(r.peakRss / 2 ** 30).toFixed(2)} |`),
  "",
];
for (const size of new Set(rows.map((r) => r.size))) {
  const a = rows.find((r) => r.model === "ssd-1b" && r.size === size);
  const b = rows.find((r) => r.model === "sdxl" && r.size === size);
  if (a && b) lines.push(`SDXL / SSD-1B at ${size}x${size}: time ${(b.seconds / a.seconds).toFixed(2)}x, FLOPs ${(b.flops / a.flops).toFixed(2)}x.`, "");
}
const out = join(root, "bench/results", `unet-${values.device}.md`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, lines.join("\n"));
process.stdout.write(lines.join("\n") + "\n");
void execFileSync;
