/**
 * FreeU: the skip filter equals diffusers' fourier_filter (fftn, fftshift, the centre 2x2 of the mask
 * scaled, ifftshift, ifftn's real part: computed here with a plain complex DFT) at even, odd and
 * 1-wide sizes; FreeU_V2's backbone gain equals ComfyUI's formula; each variant scales the resnets
 * diffusers and ComfyUI scale in the SDXL-family configs; in the pipeline, scales of 1 are the plain
 * UNet, diffusers' zeros turn it off, other values change the image, and bad values are refused.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Graph } from "../src/ir/graph.js";
import * as F from "../src/ir/functional.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { fourierFilter, FreeU, freeuStages } from "../src/models/unet/freeu.js";
import { parseUNetConfig } from "../src/models/unet/index.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { FREEU_SDXL } from "../src/pipelines/freeu.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { diff, fixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { Prng } from "./helpers/prng.js";

const tmp = mkdtempSync(join(tmpdir(), "freeu-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** torch.fft.fftshift along one axis of length n: shifted[j] = x[(j + n - n // 2) % n]; ifftshift inverts it. */
const shiftIndex = (j: number, n: number) => (j + n - Math.floor(n / 2)) % n;

/** diffusers' fourier_filter(x, threshold=1, scale) for one [h, w] plane, with a naive complex DFT. */
function referenceFilter(x: Float32Array, h: number, w: number, scale: number): Float64Array {
  const re = new Float64Array(h * w), im = new Float64Array(h * w);
  for (let u = 0; u < h; u++) for (let v = 0; v < w; v++) {
    let r = 0, m = 0;
    for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) {
      const a = -2 * Math.PI * (u * y / h + v * z / w);
      r += x[y * w + z] * Math.cos(a);
      m += x[y * w + z] * Math.sin(a);
    }
    re[u * w + v] = r; im[u * w + v] = m;
  }
  // the mask in the shifted layout: python's slice [crow - 1 : crow + 1] (a negative start counts from the end)
  const window = (n: number) => {
    const c = Math.floor(n / 2);
    const start = c - 1 < 0 ? c - 1 + n : c - 1, end = Math.min(c + 1, n);
    return (j: number) => j >= start && j < end;
  };
  const inH = window(h), inW = window(w);
  for (let j = 0; j < h; j++) for (let k = 0; k < w; k++) {
    if (!inH(j) || !inW(k)) continue;
    const at = shiftIndex(j, h) * w + shiftIndex(k, w);
    re[at] *= scale; im[at] *= scale;
  }
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) {
    let r = 0;
    for (let u = 0; u < h; u++) for (let v = 0; v < w; v++) {
      const a = 2 * Math.PI * (u * y / h + v * z / w);
      r += re[u * w + v] * Math.cos(a) - im[u * w + v] * Math.sin(a);
    }
    out[y * w + z] = r / (h * w);
  }
  return out;
}

async function runGraph(build: (g: Graph) => void, feeds: Record<string, Float32Array>): Promise<Record<string, Float32Array>> {
  const g = new Graph();
  build(g);
  const model = await CompiledGraph.create(g, "freeu test", { intraOpThreads: 1 });
  try { return await model.run(feeds); } finally { await model.release(); }
}

test("the skip filter is diffusers' fourier_filter (threshold 1) at even, odd and 1-wide sizes", async () => {
  const prng = new Prng(3), rand = () => prng.next();
  for (const [h, w] of [[4, 4], [8, 6], [5, 7], [1, 3], [2, 2], [3, 1], [16, 16]]) {
    const c = 3, x = Float32Array.from({ length: 2 * c * h * w }, () => rand() * 2 - 1);
    for (const scale of [0.6, 0, 1.7]) {
      const out = await runGraph((g) => {
        g.output("y", fourierFilter(g.input("x", [2, c, h, w]), g.input("s", [1, 1, 1, 1])));
      }, { x, s: Float32Array.of(scale) });
      const ref = new Float64Array(x.length);
      for (let p = 0; p < 2 * c; p++) ref.set(referenceFilter(x.subarray(p * h * w, (p + 1) * h * w), h, w, scale), p * h * w);
      const d = diff(out.y, ref);
      assert.ok(d.relL2 < 1e-6, `[${h}, ${w}] scale ${scale}: relL2 ${d.relL2}`);
      if (scale === 1) assert.ok(d.maxAbs < 1e-6);
    }
  }
});

test("FreeU_V2's backbone: the first half of the channels times 1 + (b - 1)·the channel mean, min-max normalized per image (ComfyUI's)", async () => {
  const config = parseUNetConfig(JSON.parse(readFileSync(fixture("configs", "sdxl", "unet_config.json"), "utf8")));
  const prng = new Prng(5), rand = () => prng.next();
  const [n, c, h, w] = [2, 1280, 3, 4];
  const x = Float32Array.from({ length: n * c * h * w }, () => rand() * 2 - 1);
  const skip = Float32Array.from({ length: n * c * h * w }, () => rand() * 2 - 1);
  const scales = Float32Array.of(1.3, 1.4, 1, 1);
  const out = await runGraph((g) => {
    const freeu = new FreeU(config, "comfyui-v2", g.input("freeu", [4]));
    const [y, sk] = freeu.apply(0, 0, g.input("x", [n, c, h, w]), g.input("skip", [n, c, h, w]));
    g.output("y", y);
    g.output("skip_out", F.add(sk, 0));
  }, { freeu: scales, x, skip });
  const ref = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    const mean = new Float64Array(h * w);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) mean[p] += x[(b * c + ch) * h * w + p] / c;
    const lo = Math.min(...mean), hi = Math.max(...mean);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) {
      const i = (b * c + ch) * h * w + p;
      ref[i] = ch < c / 2 ? x[i] * ((1.3 - 1) * (mean[p] - lo) / (hi - lo) + 1) : x[i];
    }
  }
  assert.ok(diff(out.y, ref).relL2 < 1e-6);
  assert.ok(diff(out.skip_out, skip).maxAbs < 1e-6, "s = 1 leaves the skip state");
});

test("each variant scales the resnets diffusers and ComfyUI scale (SDXL, SSD-1B, Vega configs)", () => {
  for (const model of ["sdxl", "ssd-1b", "vega"]) {
    const config = parseUNetConfig(JSON.parse(readFileSync(fixture("configs", model, "unet_config.json"), "utf8")));
    // diffusers: by resolution_idx (up blocks 0 and 1, every resnet)
    assert.deepEqual(freeuStages(config, "diffusers"), [[0, 0, 0], [1, 1, 1], [null, null, null]], model);
    // ComfyUI: by the input's channels (1280: b1, 640: b2), so the first resnet of a stage has the stage above's
    assert.deepEqual(freeuStages(config, "comfyui"), [[0, 0, 0], [0, 1, 1], [1, null, null]], model);
    assert.deepEqual(freeuStages(config, "comfyui-v2"), freeuStages(config, "comfyui"), model);
  }
});

test("pipeline: scales of 1 are the plain UNet, diffusers' zeros turn FreeU off, other values change the latents; bad values are refused", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-ssd"));
  try {
    const run = async (freeu?: Parameters<typeof pipe.generate>[0]["freeu"]) =>
      (await pipe.generate({ prompt: "a red cube", negativePrompt: "blur", width: 64, height: 64, numInferenceSteps: 3, seed: 7, outputType: "latent", freeu })).latents.data;
    const plain = await run();
    for (const variant of ["diffusers", "comfyui", "comfyui-v2"] as const) {
      const d = diff(await run({ b1: 1, b2: 1, s1: 1, s2: 1, variant }), plain);
      assert.ok(d.relL2 < 1e-5, `${variant} at 1: relL2 ${d.relL2}`);
    }
    assert.deepEqual(await run({ ...FREEU_SDXL, b1: 0 }), plain, "diffusers' enable_freeu with a 0 runs the plain UNet");
    const scaled = await run(FREEU_SDXL);
    assert.ok(diff(scaled, plain).relL2 > 1e-3, `FreeU changes the latents: ${diff(scaled, plain).relL2}`);
    // the tiny UNet (channels 32, 32, 64): ComfyUI's stage 2 is the 64-channel inputs, diffusers' up block 1
    const comfy = await run({ ...FREEU_SDXL, variant: "comfyui" });
    assert.ok(diff(comfy, scaled).relL2 > 1e-4, "ComfyUI's placement differs from diffusers'");
    assert.ok(diff(await run({ ...FREEU_SDXL, b1: 3, s1: 0.1, variant: "comfyui" }), comfy).maxAbs === 0, "no 128-channel input here: b1, s1 unused");
    assert.ok(diff(await run({ ...FREEU_SDXL, variant: "comfyui-v2" }), comfy).relL2 > 1e-4);
    for (const [freeu, message] of [
      [{ ...FREEU_SDXL, b1: -1 }, /FreeU b1 must be a number in \[0, 10\], got -1/],
      [{ ...FREEU_SDXL, s2: Number.NaN }, /FreeU s2 must be a number/],
      [{ ...FREEU_SDXL, variant: "v3" }, /FreeU variant "v3" is not one of diffusers, comfyui, comfyui-v2/],
    ] as const) {
      await assert.rejects(run(freeu as never), (e: Error) => e instanceof PipelineInputError && message.test(e.message));
    }
  } finally {
    await pipe.release();
  }
});
