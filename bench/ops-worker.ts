/**
 * One product kind of the SDXL-family UNet, alone, in its own process: a chain of R and of 2R equal ops
 * (MatMul, Linear with bias, Conv 3x3, attention) at the UNet's shapes for a latent side `lat` (128 at
 * 1024x1024), batch 2. (t(2R) - t(R)) / R is one op's time with the upload, readback and per-run costs
 * cancelled. onnxruntime logs at "info", so that stderr carries each kernel it dispatches ("Starting
 * program" lines, with the kernel's variant and workgroup grid); the parent (bench/run.ts, suite "ops")
 * reads those after the "@@timed" mark. Prints one JSON line.
 * Usage: node ops-worker.js <case> <lat> <runs> [cpu|webgpu] [float32|float16]
 */
import { performance } from "node:perf_hooks";
import * as ort from "onnxruntime-node";
import { Graph } from "../src/ir/graph.js";
import { CompiledGraph, type ExecutionDevice } from "../src/runtime/session.js";
import { OP_CASES, type OpCase } from "./op-cases.js";

const [name, latArg, runsArg, deviceArg, precisionArg] = process.argv.slice(2);
const lat = Number(latArg), runs = Number(runsArg);
const device = (deviceArg ?? "webgpu") as ExecutionDevice;
const precision = precisionArg === "float32" ? "float32" : "float16";

async function timeChain(op: OpCase, r: number): Promise<{ seconds: number; flops: number }> {
  const g = new Graph();
  const x = g.input("x", op.input);
  g.output("y", op.chain(g, x, r));
  const model = await CompiledGraph.create(g, `ops ${name} x${r}`, { device, precision, ...op.session });
  const feeds = { x: Float32Array.from({ length: op.input.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.1)) };
  await model.run(feeds); // warm-up: shaders, weight upload
  process.stderr.write("@@timed\n");
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const out = await model.run(feeds);
    times.push((performance.now() - t) / 1000);
    if (!Number.isFinite(out.y[0])) throw new Error(`${name}: non-finite output`);
  }
  process.stderr.write("@@untimed\n");
  const flops = g.flops();
  await model.release();
  return { seconds: times.sort((a, b) => a - b)[Math.floor(times.length / 2)], flops };
}

if (!OP_CASES[name]) throw new Error(`unknown op case "${name}": one of ${Object.keys(OP_CASES).join(", ")}`);
ort.env.logLevel = "info";
const op = OP_CASES[name](lat);
const R = 4;
const once = await timeChain(op, R), twice = await timeChain(op, 2 * R);
console.log(JSON.stringify({ what: op.what, seconds: (twice.seconds - once.seconds) / R, flops: (twice.flops - once.flops) / R, chainSeconds: [once.seconds, twice.seconds] }));
