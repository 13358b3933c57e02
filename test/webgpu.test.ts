/**
 * The WebGPU execution provider on a software Vulkan driver (lavapipe), in three adapter configurations
 * that between them take every attention kernel path real GPUs take (see helpers/webgpu-env.ts). Each
 * configuration runs in its own child process (the Vulkan loader reads its environment once).
 * Default: a selection that fits CI's time budget; SSD1B_WEBGPU_ALL=1 runs every case everywhere.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT } from "./helpers/fixtures.js";
import { adapterConfigs, buildTestLayer, lavapipeIcd, MESA_SHADER_CACHE, type AdapterConfig } from "./helpers/webgpu-env.js";
import { CASE_NAMES, type CaseResult } from "./helpers/webgpu-case-names.js";

const ALL = process.env.SSD1B_WEBGPU_ALL === "1";
/**
 * The default selection: every component kind and both attention paths once, sized for a cold shader
 * cache (lavapipe compiles each distinct shader with LLVM: minutes on two cores; a warm cache runs all of
 * this in ~15 s). Each configuration compiles its own shaders (Dawn's WGSL depends on the features).
 */
const DEFAULT: Record<string, string[]> = {
  "bare": ["groupnorm-epsilons", "unet-tiny-ssd", "vae-tiny", "pipeline-tiny-ssd-basic", "pipeline-tiny-ssd-basic-fp16"], // unfused attention after the self-check
  "nvidia-like": ["unet-tiny-sdxl", "pipeline-tiny-sdxl-basic", "unet-tiny-ssd-fp16", "unet-tiny-ssd-q8"], // flash attention, shared-memory kernel
  "no-subgroups": ["clip-l"], // the same kernel without subgroups (77 tokens: past the 32 where it broke)
};
/** The CPU tests' tolerances: module outputs (fixtures README) and pipeline latents/images (max |d|). */
const PIPELINE_MAX_ABS = 2e-3;
/**
 * float16 UNet cases (unetPrecision "float16") against the float32 references. Measured on lavapipe
 * (docs/webgpu-fp16.md): UNet out relL2 8.1e-3, pipeline latents 8.1e-3, image 2.9e-3 with max|d|
 * 7.9e-3 (2 levels of 255); onnxruntime's fp16 Conv accumulates in fp16. Bounds ~2x that; the lower
 * bound proves the UNet really ran in half precision.
 */
const FP16_REL_L2 = 1.5e-2, FP16_IMAGE_MAX_ABS = 2e-2, FP16_MIN_REL_L2 = 1e-4;
/**
 * The float16 UNet with q8 Linear and conv weights (MatMulNBits; test/q8-weights.test.ts): 8.8e-3 measured on
 * lavapipe, 8.3e-3 without q8 (fp16 accumulation dominates at these widths). The float16 bounds.
 */
const Q8_SUFFIX = "-q8";

const icd = lavapipeIcd();
const NO_DRIVER = icd ? false : "no lavapipe ICD (/usr/share/vulkan/icd.d/lvp_icd.json; install mesa-vulkan-drivers >= 25 from bookworm-backports, as .ci/run does, or set SSD1B_LAVAPIPE_ICD)";
const { configs, skipped } = icd ? adapterConfigs(icd, buildTestLayer()) : { configs: [], skipped: [] };

/** Runs cases in a child process with the configuration's environment; one result per case. */
function runCases(config: AdapterConfig, cases: string[], signal: AbortSignal): Promise<{ results: CaseResult[]; stderr: string; exit: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, "dist", "test", "helpers", "webgpu-cases.js"), ...cases], { env: config.env, stdio: ["ignore", "pipe", "pipe"], signal });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    child.on("error", (e) => { if (e.name !== "AbortError") reject(e); }); // aborted: the test timed out, the child is killed
    child.on("exit", (code, signal) => {
      const results = out.split("\n").filter((l) => l.startsWith("@@case ")).map((l) => JSON.parse(l.slice(7)) as CaseResult);
      resolve({ results, stderr: err, exit: `${code ?? signal}` });
    });
  });
}

function checkDiffs(r: CaseResult) {
  const pipeline = r.case.startsWith("pipeline-");
  for (const [key, d] of Object.entries(r.diffs ?? {})) {
    const what = `${r.case} ${key}: relL2 ${d.relL2.toExponential(2)}, max|d| ${d.maxAbs.toExponential(2)} (max|ref| ${d.maxRef.toPrecision(3)})`;
    if (r.case.endsWith("-fp16") || r.case.endsWith(Q8_SUFFIX)) {
      assert.ok(d.relL2 <= FP16_REL_L2 && d.relL2 >= FP16_MIN_REL_L2, `${what}: outside relL2 [${FP16_MIN_REL_L2}, ${FP16_REL_L2}]`);
      if (key === "images") assert.ok(d.maxAbs <= FP16_IMAGE_MAX_ABS, `${what} > ${FP16_IMAGE_MAX_ABS}`);
    } else if (pipeline) assert.ok(d.maxAbs <= PIPELINE_MAX_ABS, `${what} > ${PIPELINE_MAX_ABS}`);
    else assert.ok(d.relL2 <= 1e-4 && d.maxAbs <= 1e-3 * d.maxRef, `${what}: over relL2 1e-4 / max|d| 1e-3·max|ref|`);
  }
}

/**
 * Kernels of one float16 tiny-ssd UNet run (batch 2, 8x8 latents) on the fused-attention path: 1150
 * measured with onnxruntime-node 1.30; 2467 before GroupNorm was lowered as InstanceNormalization without a
 * float32 island, residual Add + LayerNorm as SkipLayerNormalization and GEGLU's halves as one Split
 * (docs/webgpu-kernels.md). With q8 Linear and conv weights: 1022 (1113 while conv patches were kh·kw
 * Slices and a Concat). Every kernel on the WebGPU provider: a CPU node between two GPU nodes costs a round
 * trip through host memory. Bounds: the most kernels a run, by case.
 */
const KERNEL_BOUNDS: Record<string, number> = { "unet-tiny-ssd-fp16": 1200, "unet-tiny-ssd-q8": 1060 };

function checkKernels(r: CaseResult) {
  if (!r.kernels) return;
  const { WebGpuExecutionProvider: gpu = 0, ...others } = r.kernels;
  assert.deepEqual(others, {}, `${r.case}: kernels off the WebGPU provider: ${JSON.stringify(r.kernels)}`);
  const bound = KERNEL_BOUNDS[r.case];
  if (bound !== undefined) assert.ok(gpu > 0 && gpu <= bound, `${r.case}: ${gpu} kernels a run, more than ${bound}`);
}

/** Worst relative L2 and worst max|d| (relative to max|ref|) over a case's tensors, for the test's title. */
function worst(r: CaseResult): string {
  const ds = Object.values(r.diffs ?? {});
  if (r.error || ds.length === 0) return "-";
  const kernels = r.kernels ? `, ${Object.values(r.kernels).reduce((a, b) => a + b, 0)} kernels` : "";
  return `worst relL2 ${Math.max(...ds.map((d) => d.relL2)).toExponential(2)}, max|d| ${Math.max(...ds.map((d) => d.maxAbs)).toExponential(2)}${kernels}`;
}

test("webgpu: the Vulkan test layer builds (else two of three adapter configurations are skipped)", { skip: NO_FIXTURES || NO_DRIVER }, (t) => {
  if (skipped.length) t.skip(skipped.join("; "));
});

for (const name of ["bare", "nvidia-like", "no-subgroups"]) {
  const config = configs.find((c) => c.name === name);
  const cases: string[] = ALL ? CASE_NAMES.filter((c) => c !== "attention-check") : DEFAULT[name];
  const skip = NO_FIXTURES || NO_DRIVER || (config ? false : `no ${name} configuration (${skipped.join("; ")})`);
  test(`webgpu on lavapipe (${name}): attention self-check, then ${cases.join(", ")} match the references`, { skip, timeout: (ALL ? 60 : 10) * 60_000 }, async (t) => {
    const { results, stderr, exit } = await runCases(config!, ["attention-check", ...cases], t.signal);
    const [check, ...rest] = results;
    if (!check || check.error) {
      // No adapter (an older Mesa, a sandbox without Vulkan, a driver that crashes on start): a skip with
      // the reason, never a failure.
      t.skip(`no WebGPU adapter on lavapipe: ${check?.error?.replace(/^.*was false\.\s*/, "").slice(0, 300) ?? `the child exited ${exit}: ${stderr.slice(-300)}`}`);
      return;
    }
    assert.equal(results.length, cases.length + 1, `webgpu child (${name}) exited ${exit} after ${results.length - 1}/${cases.length} cases:\n${stderr.slice(-3000)}`);
    t.diagnostic(`shader cache ${MESA_SHADER_CACHE}; self-check relL2 ${check.verdict!.relL2.toExponential(2)} in ${check.ms} ms`);
    assert.equal(check.verdict!.unfused, config!.expectUnfused,
      `${name}: the MultiHeadAttention self-check (relL2 ${check.verdict!.relL2.toExponential(2)}) should ${config!.expectUnfused ? "" : "not "}switch attention to MatMul + Softmax + MatMul`);
    const notes = rest.flatMap((r) => r.warnings).filter((w) => w.includes("MultiHeadAttention"));
    assert.equal(notes.length, config!.expectUnfused ? 1 : 0, `one note per process when attention is switched, none otherwise: ${JSON.stringify(notes)}`);
    for (const r of rest) {
      await t.test(`${r.case} (${(r.ms / 1000).toFixed(1)} s, ${worst(r)})`, () => {
        assert.equal(r.error, undefined, `${r.case}: ${r.error}\n${stderr.slice(-2000)}`);
        checkDiffs(r);
        checkKernels(r);
      });
    }
  });
}

// onnxruntime's provider options for speed (src/runtime/webgpu-options.ts): NHWC layout, no validation and
// exact-size buffer reuse change how the provider runs the graph (Transposes around the NHWC kernels),
// never what it computes.
test("webgpu on lavapipe (bare, NHWC layout, validation off, simple buffer cache): unet-tiny-ssd and vae-tiny match the references", { skip: NO_FIXTURES || NO_DRIVER || (configs.some((c) => c.name === "bare") ? false : "no bare configuration"), timeout: 10 * 60_000 }, async (t) => {
  const bare = configs.find((c) => c.name === "bare")!;
  const config = { ...bare, env: { ...bare.env, SSD1B_WEBGPU_LAYOUT: "NHWC", SSD1B_WEBGPU_VALIDATION: "disabled", SSD1B_WEBGPU_BUFFER_CACHE: "simple" } };
  const { results, stderr, exit } = await runCases(config, ["attention-check", "unet-tiny-ssd", "vae-tiny"], t.signal);
  if (!results[0] || results[0].error) { t.skip(`no WebGPU adapter on lavapipe (child exited ${exit})`); return; }
  assert.equal(results.length, 3, `child exited ${exit}:\n${stderr.slice(-3000)}`);
  for (const r of results.slice(1)) {
    assert.equal(r.error, undefined, `${r.case}: ${r.error}`);
    checkDiffs(r);
    t.diagnostic(`${r.case}: ${worst(r)}`);
  }
});
