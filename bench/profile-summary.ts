/**
 * Summarizes an onnxruntime profile (SSD1B_PROFILE=<prefix>, one JSON per session) of a UNet run: kernels and
 * their summed time per op type and provider, against the run's wall time. On the WebGPU provider a kernel's
 * time is the host's: building and encoding its dispatch (the GPU runs it later), plus whatever the driver takes
 * in the submit onnxruntime makes every 16 dispatches (on lavapipe the computation itself shows up there, on
 * whichever kernel triggered it). Far below 100 % of the run: GPU-bound; near it: host- or submit-bound, and the
 * op types with many cheap kernels (Add, Mul, Reshape) say which (docs/webgpu-kernels.md).
 * Usage: node profile-summary.js <profile.json> [title]   (prints markdown; the last model_run is the one summed)
 */
import { readFileSync } from "node:fs";

interface ProfileEvent { cat: string; name: string; dur: number; ts: number; args?: { op_name?: string; provider?: string } }

const [file, title = "UNet run"] = process.argv.slice(2);
const events = JSON.parse(readFileSync(file, "utf8")) as ProfileEvent[];
const runs = events.filter((e) => e.cat === "Session" && e.name === "model_run");
if (runs.length === 0) throw new Error(`${file}: no model_run event (was the session run with profiling on?)`);
const run = runs[runs.length - 1];
const kernels = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time") && e.ts >= run.ts && e.ts <= run.ts + run.dur);
const byOp = new Map<string, { count: number; us: number }>();
for (const k of kernels) {
  const key = `${k.args?.op_name ?? "?"} (${(k.args?.provider ?? "?").replace("ExecutionProvider", "")})`;
  const row = byOp.get(key) ?? { count: 0, us: 0 };
  row.count++;
  row.us += k.dur;
  byOp.set(key, row);
}
const total = kernels.reduce((s, k) => s + k.dur, 0);
const ms = (us: number) => (us / 1000).toFixed(1);
console.log([
  `# ${title}: onnxruntime profile`,
  "",
  `Run ${ms(run.dur)} ms; ${kernels.length} kernels, their summed time ${ms(total)} ms (${(100 * total / run.dur).toFixed(0)} % of the run).`,
  "",
  "| op (provider) | kernels | summed ms | share of the kernels' time |",
  "|---|---|---|---|",
  ...[...byOp.entries()].sort((a, b) => b[1].us - a[1].us)
    .map(([op, r]) => `| ${op} | ${r.count} | ${ms(r.us)} | ${(100 * r.us / total).toFixed(1)} % |`),
  "",
].join("\n"));
