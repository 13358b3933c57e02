/**
 * ComfyUI's Canny (image/kornia-canny.ts) against a literal transcription of its steps written here:
 * the NMS by its eight 3x3 kernels and gathered channels, the hysteresis by the iterated convolution
 * until nothing changes (the module uses direct neighbours and a flood fill). And the ComfyUI graph
 * LoadImage -> Canny -> ControlNetApplyAdvanced gives the net those edges.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { korniaCanny } from "../src/image/kornia-canny.js";
import { compileWorkflow } from "../src/server/comfyui/workflow.js";
import { DEFAULT_LIMITS } from "../src/server/validation.js";
import { decodePng } from "../src/image/png.js";
import type { RgbImage } from "../src/image/png.js";

/** The steps as comfy_extras/nodes_canny.py writes them, with its kernels as arrays. */
function literalCanny(img: RgbImage, low: number, high: number): Uint8Array {
  const { width: w, height: h } = img, n = w * h;
  const refl = (i: number, m: number) => (i < 0 ? -i : i >= m ? 2 * m - 2 - i : i);
  const rep = (i: number, m: number) => Math.min(m - 1, Math.max(0, i));
  const grey = Float32Array.from({ length: n }, (_, p) => 0.299 * (img.data[3 * p] / 255) + 0.587 * (img.data[3 * p + 1] / 255) + 0.114 * (img.data[3 * p + 2] / 255));
  const pdf = [-2, -1, 0, 1, 2].map((x) => Math.fround(Math.exp(-0.5 * x * x)));
  const sum = pdf.reduce((a, b) => a + b, 0);
  const k1 = pdf.map((v) => Math.fround(v / sum));
  const blurred = new Float32Array(n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    let s = 0;
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) s += Math.fround(k1[i] * k1[j]) * grey[refl(y + i - 2, h) * w + refl(x + j - 2, w)];
    blurred[y * w + x] = s;
  }
  const kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]];
  const conv3 = (src: Float32Array, k: number[][], y: number, x: number, pad: "replicate" | "zero") => {
    let s = 0;
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      const yy = y + i - 1, xx = x + j - 1;
      if (pad === "zero" && (yy < 0 || yy >= h || xx < 0 || xx >= w)) continue;
      s += k[i][j] * src[(pad === "zero" ? yy : rep(yy, h)) * w + (pad === "zero" ? xx : rep(xx, w))];
    }
    return s;
  };
  const ky = kx[0].map((_, i) => kx.map((row) => row[i]));
  const mag = new Float32Array(n), angle = new Float64Array(n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const gx = conv3(blurred, kx, y, x, "replicate"), gy = conv3(blurred, ky, y, x, "replicate");
    mag[y * w + x] = Math.sqrt(gx * gx + gy * gy + 1e-6);
    const a = (180 * Math.atan2(gy, gx)) / Math.PI / 45;
    const r = Math.round(a);
    angle[y * w + x] = (Math.abs(a % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r) * 45;
  }
  const nms = [
    [[0, 0, 0], [0, 1, -1], [0, 0, 0]], [[0, 0, 0], [0, 1, 0], [0, 0, -1]], [[0, 0, 0], [0, 1, 0], [0, -1, 0]], [[0, 0, 0], [0, 1, 0], [-1, 0, 0]],
    [[0, 0, 0], [-1, 1, 0], [0, 0, 0]], [[-1, 0, 0], [0, 1, 0], [0, 0, 0]], [[0, -1, 0], [0, 1, 0], [0, 0, 0]], [[0, 0, -1], [0, 1, 0], [0, 0, 0]],
  ];
  let edges = new Float32Array(n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const p = y * w + x, pos = (((angle[p] / 45) % 8) + 8) % 8, neg = (((angle[p] / 45 + 4) % 8) + 8) % 8;
    const isMax = Math.min(conv3(mag, nms[pos], y, x, "zero"), conv3(mag, nms[neg], y, x, "zero")) > 0;
    const m = isMax ? mag[p] : 0;
    edges[p] = (m > Math.fround(low) ? 0.5 : 0) + (m > Math.fround(high) ? 0.5 : 0);
  }
  const hyst = nms.map((k) => k.map((row) => row.map((v) => (v === -1 ? 1 : 0))));
  let old = new Float32Array(n).fill(-1), hm = new Float32Array(n);
  while (old.some((v, i) => v !== edges[i])) {
    hm = new Float32Array(n);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const any = hyst.some((k) => conv3(edges, k, y, x, "zero") === 1);
      hm[p] = (any ? 1 : 0) * (edges[p] === 0.5 ? 1 : 0) + (edges[p] === 1 ? 1 : 0);
    }
    old = edges;
    edges = hm.map((v, p) => v + (v === 0 && old[p] === 0.5 ? 0.5 : 0));
  }
  return Uint8Array.from(hm, (v) => v * 255);
}

function scene(w: number, h: number, seed: number): RgbImage {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const inBox = x > 8 && x < 30 && y > 6 && y < 20, inDisc = (x - 40) ** 2 + (y - 24) ** 2 < 81;
    const base = inBox ? 200 : inDisc ? 90 : 30 + x;
    for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = Math.min(255, Math.max(0, base + (c - 1) * 20 + Math.floor(rand() * 24)));
  }
  return { width: w, height: h, data };
}

test("ComfyUI Canny: the steps of comfy_extras/nodes_canny.py, NMS by its kernels and hysteresis iterated to convergence", () => {
  for (const [seed, low, high] of [[1, 0.4, 0.8], [2, 0.1, 0.3], [3, 0.05, 0.5], [4, 0.6, 0.2]] as const) {
    const img = scene(53, 37, seed);
    const got = korniaCanny(img, low, high).data;
    assert.deepEqual(got, literalCanny(img, low, high), `seed ${seed}, thresholds ${low} / ${high}`);
    if (seed === 1) assert.ok(got.some((v) => v === 255) && got.some((v) => v === 0), "edges and no edges");
  }
});

test("ComfyUI graph: LoadImage -> Canny -> ControlNetApplyAdvanced gives the net the Canny edges", () => {
  const img = scene(40, 32, 5);
  const rgba = { width: 40, height: 32, data: new Uint8Array(40 * 32 * 4) };
  for (let p = 0; p < 40 * 32; p++) rgba.data.set([...img.data.subarray(3 * p, 3 * p + 3), 255], 4 * p);
  const g: Record<string, any> = {
    3: { class_type: "KSampler", inputs: { seed: 1, steps: 2, cfg: 5, sampler_name: "euler", scheduler: "normal", denoise: 1, model: ["4", 0], positive: ["11", 0], negative: ["11", 1], latent_image: ["5", 0] } },
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 40, height: 32, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: "a box", clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: "", clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "x", images: ["8", 0] } },
    10: { class_type: "ControlNetLoader", inputs: { control_net_name: "canny-a.safetensors" } },
    11: { class_type: "ControlNetApplyAdvanced", inputs: { positive: ["6", 0], negative: ["7", 0], control_net: ["10", 0], image: ["12", 0], strength: 0.8, start_percent: 0, end_percent: 1 } },
    12: { class_type: "Canny", inputs: { image: ["13", 0], low_threshold: 0.2, high_threshold: 0.5 } },
    13: { class_type: "LoadImage", inputs: { image: "scene.png" } },
  };
  const ctx = {
    limits: DEFAULT_LIMITS, model: { name: "tiny-ssd", source: "/m/tiny-ssd", textEncoderLayers: [12, 32] as [number, number] },
    inputImage: () => undefined, upload: (name: string) => (name === "scene.png" ? rgba : undefined), uploadBytes: (name: string) => (name === "scene.png" ? "x" : undefined),
  };
  const { controlnets } = compileWorkflow(g, ctx);
  assert.equal(controlnets.length, 1);
  const edges = decodePng(Buffer.from(controlnets[0].image, "base64"));
  const want = korniaCanny(img, 0.2, 0.5).data;
  assert.deepEqual(Uint8Array.from({ length: 40 * 32 }, (_, p) => edges.data[3 * p]), want);
  assert.deepEqual([controlnets[0].module, controlnets[0].weight], ["none", 0.8]);
});
