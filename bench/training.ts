/**
 * Training benchmark: seconds per training step and peak memory of SSD-1B (and SDXL) LoRA (rank 4, to_q/to_k/
 * to_v/to_out.0, batch 1) on the CPU, on a synth fp16 UNet (the real config, full size), each
 * resolution in a fresh process so its peak RSS is its own. The step is what `ssd1b train lora` runs
 * per update: one run of the compiled forward+backward graph and the AdamW update on the host
 * (text embeddings and latents cached, so no encoder runs).
 *
 *   node dist/bench/training.js [--models ssd-1b,sdxl] [--sizes 512,1024] [--steps 3] [--threads N]
 *   [--checkpointing off,on] [--arena off|on] [--weights-left on|off]
 * Writes bench/results/training-cpu.md. The UNet is written once to $SSD1B_BENCH_DIR/ssd-1b/unet.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, freemem, totalmem, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { synthComponent } from "../src/cli/commands/synth.js";
import { folderComponent } from "../src/loaders/component.js";
import { buildTrainGraph } from "../src/training/graph/train-graph.js";
import { UNET_LORA_TARGETS } from "../src/training/graph/lora-modules.js";
import { TrainingRng } from "../src/training/rng.js";
import { AdamW } from "../src/training/optim/adamw.js";
import { compileTrainingGraph } from "../src/training/graph/train-session.js";
import { GRAD_PREFIX, parameterFeeds } from "../src/ir/passes/trainable.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "512,1024" }, steps: { type: "string", default: "3" },
    threads: { type: "string" }, worker: { type: "string" }, checkpointing: { type: "string", default: "off,on" }, arena: { type: "string", default: "off" }, "weights-left": { type: "string", default: "on" }, models: { type: "string", default: "ssd-1b" },
  },
});
const benchDir = process.env.SSD1B_BENCH_DIR ?? join(tmpdir(), "ssd1b-bench");
const gib = (b: number) => b / 2 ** 30;

const LABEL: Record<string, string> = { "ssd-1b": "SSD-1B", sdxl: "SDXL" };

interface Result { model: string; size: number; checkpointing: boolean; compileS: number; rssAfterCompileGiB: number; stepS: number[]; optimizerS: number; peakRssGiB: number; trained: number; tflop: number }

async function worker(model: string, size: number, checkpointing: boolean): Promise<Result> {
  const unet = folderComponent(join(benchDir, model, "unet"), "fp16");
  const rng = new TrainingRng(0);
  const latent = size / 8;
  const t0 = performance.now();
  const tg = buildTrainGraph({ unet, batch: 1, latentSize: latent, mode: { kind: "lora", rank: 4, alpha: 4, targets: UNET_LORA_TARGETS }, rng, checkpointing });
  const tflop = tg.graph.flops() / 1e12;
  const compiled = await compileTrainingGraph(tg.graph, `${LABEL[model]} LoRA training ${size}`, {
    threads: values.threads ? Number(values.threads) : undefined, memoryArena: values.arena !== "off", weightsOnTheLeft: values["weights-left"] !== "off",
  });
  const compileS = (performance.now() - t0) / 1000;
  const rssAfterCompileGiB = gib(process.memoryUsage.rss());
  const opt = new AdamW(tg.params, { lr: 1e-4 });
  const feeds = {
    noisy: rng.randn(4 * latent * latent), target: rng.randn(4 * latent * latent), timestep: Float32Array.of(500),
    encoder_hidden_states: rng.randn(77 * 2048), text_embeds: rng.randn(1280), time_ids: Float32Array.of(size, size, 0, 0, size, size),
    loss_weights: Float32Array.of(1),
  };
  const stepS: number[] = [];
  let optimizerS = 0;
  for (let i = 0; i < Number(values.steps); i++) {
    const s = performance.now();
    const out = await compiled.run({ ...feeds, ...parameterFeeds(tg.params) });
    const o = performance.now();
    opt.step(Object.fromEntries(tg.params.map((p) => [p.key, out[GRAD_PREFIX + p.key]])));
    optimizerS = (performance.now() - o) / 1000;
    stepS.push((performance.now() - s) / 1000);
    process.stderr.write(`  ${size}: step ${i + 1} ${stepS.at(-1)!.toFixed(2)} s, loss ${out.loss[0].toFixed(4)}\n`);
  }
  await compiled.release();
  return { model, size, checkpointing, compileS, rssAfterCompileGiB, stepS, optimizerS, peakRssGiB: process.resourceUsage().maxRSS * 1024 / 2 ** 30, trained: tg.params.reduce((n, p) => n + p.value.length, 0), tflop };
}

function ensureUNet(model: string): void {
  if (!LABEL[model]) throw new Error(`--models: unknown model "${model}" (ssd-1b, sdxl)`);
  const dir = join(benchDir, model, "unet");
  if (existsSync(join(dir, "diffusion_pytorch_model.fp16.safetensors"))) return;
  mkdirSync(dir, { recursive: true });
  copyFileSync(resolve(root, `../shared/fixtures/configs/${model}/unet_config.json`), join(dir, "config.json"));
  process.stderr.write(`writing synth fp16 ${LABEL[model]} UNet to ${dir} ...\n`);
  synthComponent(dir, "fp16");
}

async function main(): Promise<void> {
  if (values.worker) {
    const [model, size, ck] = values.worker.split(":");
    process.stdout.write(JSON.stringify(await worker(model, Number(size), ck === "on")) + "\n");
    return;
  }
  const models = values.models!.split(",");
  models.forEach(ensureUNet);
  const rows: string[] = [];
  const notes: string[] = [];
  const last = new Map<string, Result>();
  for (const model of models) for (const size of values.sizes!.split(",").map(Number)) for (const ck of values.checkpointing!.split(",")) {
    // activations grow ~4x per doubling: skip a size that cannot fit beside what is free now
    const prev = last.get(`${model}:${ck}`);
    const expect = prev ? prev.rssAfterCompileGiB + (prev.peakRssGiB - prev.rssAfterCompileGiB) * (size / prev.size) ** 2 : 0;
    if (prev && expect > gib(freemem())) {
      notes.push(`${LABEL[model]} ${size}x${size}, checkpointing ${ck}: not run, about ${expect.toFixed(0)} GiB expected from the ${prev.size} peak, ${gib(freemem()).toFixed(1)} GiB free.`);
      continue;
    }
    process.stderr.write(`${LABEL[model]} LoRA training step at ${size}x${size}, checkpointing ${ck} ...\n`);
    const args = [join(here, "training.js"), "--worker", `${model}:${size}:${ck}`, "--steps", values.steps!, "--arena", values.arena!, "--weights-left", values["weights-left"]!, ...(values.threads ? ["--threads", values.threads] : [])];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 });
    if (r.status !== 0) {
      notes.push(`${LABEL[model]} ${size}x${size} failed (exit ${r.status ?? r.signal}; out of memory?).`);
      continue;
    }
    const res = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Result;
    last.set(`${model}:${ck}`, res);
    const steady = res.stepS.length > 1 ? res.stepS.slice(1) : res.stepS;
    const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
    rows.push(`| ${LABEL[model]} | ${size}x${size} | ${ck} | ${res.compileS.toFixed(1)} | ${res.rssAfterCompileGiB.toFixed(2)} | ${res.stepS[0].toFixed(2)} | ${mean.toFixed(2)} | ${res.optimizerS.toFixed(3)} | ${res.tflop.toFixed(2)} | ${(res.tflop * 1000 / mean).toFixed(0)} | ${res.peakRssGiB.toFixed(2)} |`);
  }
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const md = `# Training benchmark (cpu)

Machine: ${cpu}, ${cpus().length} cores, ${gib(totalmem()).toFixed(0)} GiB RAM; Node ${process.version}, onnxruntime-node; ${new Date().toISOString().slice(0, 10)}.
UNets with their real configs (synth fp16 weights computed in float32), LoRA rank 4 on to_q/to_k/to_v/to_out.0 (${UNET_LORA_TARGETS.length} targets),
batch 1, one compiled forward+backward graph per step + AdamW on the host; each size in a fresh process;
onnxruntime's memory arena ${values.arena}, frozen weights on the left of products ${values["weights-left"]} (off / on is what \`ssd1b train\` uses).
Steps after the first are averaged (the first includes onnxruntime's first-run allocations).

| model | size | gradient checkpointing | build + compile (s) | RSS after compile (GiB) | first step (s) | step (s) | AdamW (s) | TFLOP/step (IR) | GFLOP/s | peak RSS (GiB) |
|---|---|---|---|---|---|---|---|---|---|---|
${rows.join("\n")}
${notes.length ? "\n" + notes.map((n) => `- ${n}`).join("\n") + "\n" : ""}
Gradient checkpointing recomputes activations in the backward pass in segments ending at each UNet block's and transformer block's output (src/ir/passes/recompute.ts); the IR FLOP count is of the graph as built (recomputation included).

Run: \`node dist/bench/training.js --models ${values.models} --sizes ${values.sizes} --steps ${values.steps} --checkpointing ${values.checkpointing}\`
`;
  const out = resolve(root, "bench/results/training-cpu.md");
  writeFileSync(out, md);
  process.stderr.write(md + `\nwrote ${out}\n`);
}

await main();
