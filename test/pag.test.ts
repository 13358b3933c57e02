/**
 * Perturbed-attention guidance: a perturbed self-attention row is to_out(to_v(x)) (diffusers' identity
 * processors) and the other rows attend as before; the UNet's PAG batch [negative, positive, perturbed]
 * gives the plain UNet's rows and a wholly perturbed positive row; the layers are chosen as diffusers'
 * PAGMixin chooses them (names as built); the guidance is diffusers' formula with its adaptive scale;
 * in the pipeline a PAG scale of 0 is the plain run, others change the image, and bad settings are
 * refused naming the problem (SSD-1B has no mid-block self-attention).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Graph } from "../src/ir/graph.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { storeSource } from "../src/loaders/component.js";
import { saveTensors, TensorStore } from "../src/safetensors/index.js";
import { Attention } from "../src/models/shared/attention.js";
import { UNet2DConditionModel, parseUNetConfig, selfAttentionNames, pagTargets } from "../src/models/unet/index.js";
import { pagLayerMatches } from "../src/models/unet/pag.js";
import { applyGuidance, applyPerturbedGuidance, pagScaleAt } from "../src/pipelines/guidance.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { diff, fixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { Prng } from "./helpers/prng.js";

const tmp = mkdtempSync(join(tmpdir(), "pag-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const prng = new Prng(9), rand = (n: number) => Float32Array.from({ length: n }, () => prng.next() * 2 - 1);

test("a perturbed self-attention row is to_out(to_v(x)); the other rows attend as without PAG", async () => {
  const [d, s, heads] = [8, 5, 2];
  const file = join(tmp, "attn.safetensors");
  const w = { q: rand(d * d), k: rand(d * d), v: rand(d * d), o: rand(d * d), ob: rand(d) };
  saveTensors(file, {
    "to_q.weight": { dtype: "F32", shape: [d, d], data: w.q }, "to_k.weight": { dtype: "F32", shape: [d, d], data: w.k },
    "to_v.weight": { dtype: "F32", shape: [d, d], data: w.v }, "to_out.0.weight": { dtype: "F32", shape: [d, d], data: w.o }, "to_out.0.bias": { dtype: "F32", shape: [d], data: w.ob },
  });
  const run = async (rows: number, identityRows: number, x: Float32Array) => {
    const g = new Graph();
    const attn = new Attention(WeightBuilder.root(g, storeSource(TensorStore.open(file))), d, { heads, identityRows });
    g.output("y", attn.forward(g.input("x", [rows, s, d])));
    const m = await CompiledGraph.create(g, "pag attention", { intraOpThreads: 1 });
    try { return (await m.run({ x })).y; } finally { await m.release(); }
  };
  const x = rand(3 * s * d);
  const pag = await run(3, 1, x);
  const plain = await run(2, 0, x.slice(0, 2 * s * d));
  assert.ok(diff(pag.subarray(0, 2 * s * d), plain).relL2 < 1e-6, "rows 0-1 attend as before");
  // row 2 on the host: (x Wvᵀ) Woᵀ + bo
  const row = x.subarray(2 * s * d), ref = new Float32Array(s * d);
  for (let t = 0; t < s; t++) {
    const v = Array.from({ length: d }, (_, o) => { let a = 0; for (let i = 0; i < d; i++) a += row[t * d + i] * w.v[o * d + i]; return a; });
    for (let o = 0; o < d; o++) { let a = w.ob[o]; for (let i = 0; i < d; i++) a += v[i] * w.o[o * d + i]; ref[t * d + o] = a; }
  }
  assert.ok(diff(pag.subarray(2 * s * d), ref).relL2 < 1e-6, "row 2 takes the identity attention map");
  assert.ok(diff(await run(1, 1, x.slice(2 * s * d)), ref).relL2 < 1e-6, "a batch of perturbed rows only");
});

test("PAG layers: diffusers' re.search over the self-attention names, which are the names the UNet builds; no match is an error", () => {
  const config = parseUNetConfig(JSON.parse(readFileSync(fixture("pipeline", "tiny-sdxl", "unet", "config.json"), "utf8")));
  const model = tinyModelIn(tmp, "tiny-sdxl");
  const seen: string[] = [];
  const g = new Graph();
  new UNet2DConditionModel(WeightBuilder.root(g, storeSource(TensorStore.open(join(model, "unet", "diffusion_pytorch_model.safetensors")))), config, { identityRowsOf: (name) => { seen.push(name); return undefined; } });
  assert.deepEqual([...selfAttentionNames(config)].sort(), [...seen].sort());
  assert.deepEqual([...pagTargets(config, ["mid"])], ["mid_block.attentions.0.transformer_blocks.0.attn1", "mid_block.attentions.0.transformer_blocks.1.attn1"]);
  assert.deepEqual([...pagTargets(config, ["up_blocks.1.attentions.(0|2)"])], ["up_blocks.1.attentions.0.transformer_blocks.0.attn1", "up_blocks.1.attentions.0.transformer_blocks.1.attn1", "up_blocks.1.attentions.2.transformer_blocks.0.attn1", "up_blocks.1.attentions.2.transformer_blocks.1.attn1"]);
  assert.ok(pagLayerMatches("down", "down_blocks.1.attentions.0.transformer_blocks.0.attn1"));
  assert.ok(!pagLayerMatches("blocks.1", "x.blocks.1"), "diffusers' is_fake_integral_match");
  for (const model of ["ssd-1b", "vega"]) {
    const c = parseUNetConfig(JSON.parse(readFileSync(fixture("configs", model, "unet_config.json"), "utf8")));
    assert.throws(() => pagTargets(c, ["mid"]), /PAG layer "mid" matches no self-attention layer of this UNet \(it has them in down_blocks\.1, down_blocks\.2, up_blocks\.0, up_blocks\.1\)/, model);
    assert.ok(pagTargets(c, ["up_blocks.0"]).size > 0);
  }
  const sdxl = parseUNetConfig(JSON.parse(readFileSync(fixture("configs", "sdxl", "unet_config.json"), "utf8")));
  assert.equal(pagTargets(sdxl, ["mid"]).size, 10, "SDXL's mid block: 10 transformer blocks");
});

test("guidance: uncond + cfg·(text - uncond) + pag·(text - perturbed), or without CFG text + pag·(text - perturbed); the adaptive scale", () => {
  const [u, t, p] = [rand(6), rand(6), rand(6)];
  const cat = (...xs: Float32Array[]) => { const o = new Float32Array(xs.length * 6); xs.forEach((x, i) => o.set(x, i * 6)); return o; };
  const out = applyPerturbedGuidance(cat(u, t, p), 5, 3);
  out.forEach((v, i) => assert.ok(Math.abs(v - (u[i] + 5 * (t[i] - u[i]) + 3 * (t[i] - p[i]))) < 1e-5));
  applyPerturbedGuidance(cat(t, p), undefined, 2).forEach((v, i) => assert.ok(Math.abs(v - (t[i] + 2 * (t[i] - p[i]))) < 1e-5));
  // at a PAG scale of 0 it is CFG exactly, rescale included
  assert.deepEqual(applyPerturbedGuidance(cat(u, t, p), 5, 0, 0.7), applyGuidance(cat(u, t), 5, 0.7));
  assert.equal(pagScaleAt({ scale: 3, adaptiveScale: 0 }, 10), 3);
  assert.ok(Math.abs(pagScaleAt({ scale: 3, adaptiveScale: 0.01 }, 900) - 2) < 1e-6);
  assert.equal(pagScaleAt({ scale: 3, adaptiveScale: 0.01 }, 500), 0, "clamped at 0");
});

test("UNet: the PAG batch [negative, positive, perturbed] is the plain UNet's two rows and a wholly perturbed positive row", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-sdxl"));
  try {
    const unet = pipe.unet, c = unet.config, [h, w] = [8, 8];
    const sample = rand(2 * c.inChannels * h * w), hidden = rand(2 * 77 * c.crossAttentionDim[0]);
    const textDim = c.projectionClassEmbeddingsInputDim - 6 * c.additionTimeEmbedDim, text = rand(2 * textDim);
    const ids = Float32Array.from([64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64]);
    const rows = (x: Float32Array, n: number, pick: number[]) => { const per = x.length / n, o = new Float32Array(pick.length * per); pick.forEach((r, i) => o.set(x.subarray(r * per, (r + 1) * per), i * per)); return o; };
    const feeds = (pick: number[]) => ({ sample: rows(sample, 2, pick), timestep: new Float32Array(pick.length).fill(500), encoder_hidden_states: rows(hidden, 2, pick), text_embeds: rows(text, 2, pick), time_ids: rows(ids, 2, pick) });
    const pag = { layers: ["mid"], perturbedRows: 1 };
    const three = await unet.run(3, h, w, feeds([0, 1, 1]), { pag });
    const plain = await unet.run(2, h, w, feeds([0, 1]));
    const per = plain.length / 2;
    assert.ok(diff(three.subarray(0, 2 * per), plain).relL2 < 1e-5, "the negative and positive rows");
    const perturbed = await unet.run(1, h, w, feeds([1]), { pag });
    assert.ok(diff(three.subarray(2 * per), perturbed).relL2 < 1e-5, "the perturbed row");
    assert.ok(diff(perturbed, plain.subarray(per)).relL2 > 1e-3, `the identity map changes the prediction: ${diff(perturbed, plain.subarray(per)).relL2}`);
  } finally {
    await pipe.release();
  }
});

test("pipeline: PAG scale 0 is the plain run; PAG with and without CFG changes the latents; bad settings are refused", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-sdxl"));
  try {
    const call = { prompt: "a red cube", negativePrompt: "blur", width: 64, height: 64, numInferenceSteps: 3, seed: 7, outputType: "latent" as const, numImagesPerPrompt: 2 };
    const run = async (o: Record<string, unknown> = {}) => (await pipe.generate({ ...call, ...o })).latents.data;
    const plain = await run();
    assert.deepEqual(await run({ pagScale: 0 }), plain);
    const pag = await run({ pagScale: 3 });
    assert.ok(diff(pag, plain).relL2 > 1e-3, `PAG changes the latents: ${diff(pag, plain).relL2}`);
    // the timesteps are 667, 334, 1: an adaptive scale of 0.2 is 0 at every one (the plain guidance on the PAG batch), 0.005 is not
    assert.ok(diff(await run({ pagScale: 3, pagAdaptiveScale: 0.2 }), plain).relL2 < 1e-5);
    const adaptive = await run({ pagScale: 3, pagAdaptiveScale: 0.005 });
    assert.ok(diff(adaptive, plain).relL2 > 1e-4 && diff(adaptive, pag).relL2 > 1e-4, "an adaptive scale between the two");
    // without CFG (guidance 1): the batch [positive, perturbed]
    const noCfg = await run({ guidanceScale: 1, pagScale: 2, pagAppliedLayers: ["down_blocks.1", "mid"] });
    assert.ok(diff(noCfg, await run({ guidanceScale: 1 })).relL2 > 1e-3);
    // img2img runs the same layout
    const image = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(120) };
    const i2i = (o: Record<string, unknown> = {}) => pipe.img2img({ ...call, image, strength: 0.6, ...o });
    assert.ok(diff((await i2i({ pagScale: 3 })).latents.data, (await i2i()).latents.data).relL2 > 1e-3);
    for (const [o, message] of [
      [{ pagScale: -1 }, /PAG scale must be a number >= 0, got -1/],
      [{ pagScale: 3, pagAdaptiveScale: Number.NaN }, /PAG adaptive scale must be a number >= 0/],
      [{ pagScale: 3, pagAppliedLayers: ["nothing"] }, /PAG layer "nothing" matches no self-attention layer/],
      [{ pagScale: 3, pagAppliedLayers: ["(a+)+b"] }, /patterns here take no repetition/],
      [{ pagScale: 3, pagAppliedLayers: [] }, /PAG needs at least one layer/],
    ] as const) {
      await assert.rejects(run(o), (e: Error) => e instanceof PipelineInputError && message.test(e.message), JSON.stringify(o));
    }
  } finally {
    await pipe.release();
  }
  const ssd = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp, "tiny-ssd"));
  try {
    await assert.rejects(ssd.generate({ prompt: "x", width: 32, height: 32, numInferenceSteps: 1, pagScale: 3 }), /PAG layer "mid" matches no self-attention layer of this UNet \(it has them in down_blocks\.1, down_blocks\.2, up_blocks\.0, up_blocks\.1\)/);
    const out = await ssd.generate({ prompt: "x", width: 32, height: 32, numInferenceSteps: 2, seed: 1, pagScale: 3, pagAppliedLayers: "up_blocks.0", outputType: "latent" });
    assert.ok(out.latents.data.every(Number.isFinite));
  } finally {
    await ssd.release();
  }
});
