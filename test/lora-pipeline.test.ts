import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, assertMaxAbs, assertModuleClose, fixture, openFixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { StableDiffusionXLPipeline, type GenerateOptions } from "../src/pipelines/sdxl/index.js";
import { LoraError } from "../src/loaders/lora.js";
import { readFloat32, saveTensors, TensorStore } from "../src/safetensors/index.js";
import { decodePng } from "../src/image/png.js";

/** Pipeline latents and images: the fixtures README's tolerance. */
const TOL = 2e-3;
const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

const tmp = mkdtempSync(join(tmpdir(), "lora-pipeline-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const tinyModel = () => tinyModelIn(tmp);

const loraFile = (form: "peft" | "kohya") => fixture("lora", form, "lora.safetensors");

/** The `basic` case's arguments (the LoRA cases use the same). */
function basicOptions(): GenerateOptions {
  const c = JSON.parse(readFileSync(fixture("lora", "peft", "cases.json"), "utf8")).lora_basic;
  return { prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler };
}

/** Runs the basic arguments and compares embeddings, every step's latents and the images with `prefix` in `ref`. */
async function checkCase(t: { diagnostic(m: string): void }, pipe: StableDiffusionXLPipeline, ref: TensorStore, prefix: string, what: string) {
  const opts = basicOptions();
  const emb = await pipe.encodePrompt({ ...opts, doClassifierFreeGuidance: true });
  assertModuleClose(emb.promptEmbeds.data, ref.float32(`${prefix}.prompt_embeds`), `${what} prompt_embeds`);
  assertModuleClose(emb.pooledPromptEmbeds.data, ref.float32(`${prefix}.pooled_prompt_embeds`), `${what} pooled_prompt_embeds`);
  const steps: Float32Array[] = [];
  const out = await pipe.generate({ ...opts, onStep: ({ latents }) => { steps.push(latents); } });
  assert.equal(steps.length, 4);
  steps.forEach((lat, i) => {
    const d = assertMaxAbs(lat, ref.float32(`${prefix}.latents_after_step${i}`), TOL, `${what} latents after step ${i}`);
    t.diagnostic(`${what} latents after step ${i}: max|d| ${d.maxAbs.toExponential(2)}`);
  });
  const d = assertMaxAbs(out.images.data, ref.float32(`${prefix}.images`), TOL, `${what} images`);
  t.diagnostic(`${what} images: max|d| ${d.maxAbs.toExponential(2)}`);
}

for (const form of ["peft", "kohya"] as const) {
  test(`lora pipeline: the ${form} LoRA at weight 1 reproduces diffusers' lora_basic; at weight 0 the plain basic case`, { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
    const dir = tinyModel();
    const on = await StableDiffusionXLPipeline.fromPretrained(dir, { loras: [{ file: loraFile(form), weight: 1 }] });
    try {
      assert.equal(on.loras.length, 1);
      assert.equal(on.loras[0].format, form);
      assert.equal(on.loras[0].deltas.unet.length, 80);
      await checkCase(t, on, openFixture("lora", form, "cases.safetensors"), "lora_basic", `${form} weight 1`);
    } finally {
      await on.release();
    }
    const off = await StableDiffusionXLPipeline.fromPretrained(dir, { loras: [{ file: loraFile(form), weight: 0 }] });
    try {
      await checkCase(t, off, openFixture("pipeline", "tiny-ssd", "cases.safetensors"), "basic", `${form} weight 0`);
    } finally {
      await off.release();
    }
  });
}

test("lora pipeline: two LoRAs at half strength each stack to the weight-1 result", { skip: NO_FIXTURES, timeout: 300_000 }, async (t) => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModel(), {
    loras: [{ file: loraFile("peft"), weight: 0.5 }, { file: loraFile("kohya"), weight: 0.5 }],
  });
  try {
    await checkCase(t, pipe, openFixture("lora", "peft", "cases.safetensors"), "lora_basic", "peft 0.5 + kohya 0.5");
  } finally {
    await pipe.release();
  }
});

test("lora pipeline: a LoRA for another architecture fails clearly, naming the tensors", { skip: NO_FIXTURES }, async () => {
  const dir = tinyModel();
  const src = TensorStore.open(loraFile("kohya"));
  const tensors = (rename: (k: string) => string, reshape = false) => Object.fromEntries([...src.tensors].map(([k, e]) => {
    let data = readFloat32(e), shape = e.shape;
    if (reshape && k.endsWith("lora_down.weight")) { shape = [e.shape[0], e.shape[1] * 2]; data = new Float32Array(shape[0] * shape[1]); }
    return [rename(k), { dtype: "F32" as const, shape, data }];
  }));
  // input_blocks.1 holds no attention in the tiny SSD (its first down block is a DownBlock2D)
  const foreign = join(tmp, "foreign.safetensors");
  saveTensors(foreign, tensors((k) => k.replace("lora_unet_input_blocks_4_1_", "lora_unet_input_blocks_1_1_")));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { loras: [{ file: foreign, weight: 1 }] }),
    (e: Error) => e instanceof LoraError && /match no module of this model/.test(e.message)
      && e.message.includes("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight"));
  const misfit = join(tmp, "misfit.safetensors");
  saveTensors(misfit, tensors((k) => k, true));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { loras: [{ file: misfit, weight: 1 }] }),
    (e: Error) => e instanceof LoraError && /does not fit "down_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn1\.to_q\.weight" \[32,32\]/.test(e.message));
  await assert.rejects(StableDiffusionXLPipeline.fromPretrained(dir, { loras: [{ file: join(tmp, "nope.safetensors"), weight: 1 }] }),
    (e: Error) => e instanceof LoraError && /LoRA file not found: .*nope\.safetensors/.test(e.message));
});

test("lora pipeline: text encoder LoRAs (kohya te1 / te2) equal the merged weights W + scale·up·down", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = tinyModel();
  const mat = (rows: number, cols: number, seed: number) => Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(seed + i * 0.37) * 0.2);
  const te1 = { key: "text_model.encoder.layers.0.self_attn.q_proj.weight", up: mat(32, 2, 1), down: mat(2, 32, 2), rows: 32, cols: 32, scale: 1 * 1 / 2 };
  const te2 = { key: "text_model.encoder.layers.1.mlp.fc1.weight", up: mat(37, 2, 3), down: mat(2, 32, 4), rows: 37, cols: 32, scale: 1 };
  const file = join(tmp, "te-lora.safetensors");
  saveTensors(file, {
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { dtype: "F32", shape: [32, 2], data: te1.up },
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { dtype: "F32", shape: [2, 32], data: te1.down },
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.alpha": { dtype: "F32", shape: [], data: Float32Array.of(1) },
    "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_up.weight": { dtype: "F32", shape: [37, 2], data: te2.up },
    "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_down.weight": { dtype: "F32", shape: [2, 32], data: te2.down },
  });
  // the same change merged into a copy of the model's text encoder files
  const merged = join(tmp, "tiny-ssd-merged");
  cpSync(dir, merged, { recursive: true });
  for (const [folder, d] of [["text_encoder", te1], ["text_encoder_2", te2]] as const) {
    const path = join(merged, folder, "model.safetensors");
    const store = TensorStore.open(join(dir, folder, "model.safetensors"));
    const tensors = Object.fromEntries([...store.tensors].map(([k, e]) => [k, { dtype: "F32" as const, shape: e.shape, data: readFloat32(e) }]));
    const w = tensors[d.key].data;
    for (let o = 0; o < d.rows; o++) for (let i = 0; i < d.cols; i++) {
      let acc = 0;
      for (let r = 0; r < 2; r++) acc += d.up[o * 2 + r] * d.down[r * d.cols + i];
      w[o * d.cols + i] += d.scale * acc;
    }
    saveTensors(path, tensors);
  }
  const args = { prompt: "An astronaut riding a green horse", negativePrompt: "ugly" };
  const embeds = async (model: string, loras?: { file: string; weight: number }[]) => {
    const p = await StableDiffusionXLPipeline.fromPretrained(model, { loras });
    try {
      return await p.encodePrompt(args);
    } finally {
      await p.release();
    }
  };
  const withLora = await embeds(dir, [{ file, weight: 1 }]);
  const mergedEmb = await embeds(merged);
  const plain = await embeds(dir);
  assertModuleClose(withLora.promptEmbeds.data, mergedEmb.promptEmbeds.data, "prompt_embeds with te LoRA vs merged");
  assertModuleClose(withLora.pooledPromptEmbeds.data, mergedEmb.pooledPromptEmbeds.data, "pooled with te2 LoRA vs merged");
  assert.notDeepEqual(withLora.promptEmbeds.data, plain.promptEmbeds.data);
});

test("lora pipeline: a text-encoder weight of its own (A1111's <lora:NAME:TE:UNET>, ComfyUI's strength_clip) scales only the text encoders' deltas", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = tinyModel();
  const mat = (rows: number, cols: number, seed: number) => Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(seed + i * 0.37) * 0.2);
  const te = {
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": { dtype: "F32" as const, shape: [32, 2], data: mat(32, 2, 1) },
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": { dtype: "F32" as const, shape: [2, 32], data: mat(2, 32, 2) },
  };
  const store = TensorStore.open(loraFile("peft"));
  const unet = Object.fromEntries([...store.tensors].map(([k, e]) => [k, { dtype: "F32" as const, shape: e.shape, data: readFloat32(e) }]));
  const both = join(tmp, "unet-and-te.safetensors"), teOnly = join(tmp, "te-only.safetensors");
  saveTensors(both, { ...unet, ...te });
  saveTensors(teOnly, te);
  const base = await StableDiffusionXLPipeline.fromPretrained(dir);
  const opts = { ...basicOptions(), outputType: "latent" as const };
  const run = async (loras: { file: string; weight: number; textEncoderWeight?: number }[]) => {
    const p = await base.withLoras(loras);
    try {
      return { emb: await p.encodePrompt(opts), latents: (await p.generate(opts)).latents.data, sharesEncoder: p.promptEncoder === base.promptEncoder };
    } finally {
      await p.release();
    }
  };
  try {
    const unetOnly = await run([{ file: loraFile("peft"), weight: 1 }]);
    const plain = { emb: await base.encodePrompt(opts) };
    // text encoders at 0: the UNet-only LoRA's run exactly, and the base's text encoders are kept
    const noTe = await run([{ file: both, weight: 1, textEncoderWeight: 0 }]);
    assert.ok(noTe.sharesEncoder, "no text-encoder delta: the prompt encoder is shared");
    assert.deepEqual(Array.from(noTe.emb.promptEmbeds.data), Array.from(plain.emb.promptEmbeds.data));
    assert.deepEqual(Array.from(noTe.latents), Array.from(unetOnly.latents));
    // the text encoders at 0.5, the UNet at 0: the te-only LoRA at 0.5
    const halfTe = await run([{ file: both, weight: 0, textEncoderWeight: 0.5 }]);
    const teHalf = await run([{ file: teOnly, weight: 0.5 }]);
    assert.deepEqual(Array.from(halfTe.emb.promptEmbeds.data), Array.from(teHalf.emb.promptEmbeds.data));
    assert.deepEqual(Array.from(halfTe.latents), Array.from(teHalf.latents));
    assert.notDeepEqual(Array.from(halfTe.emb.promptEmbeds.data), Array.from(plain.emb.promptEmbeds.data));
  } finally {
    await base.release();
  }
});

function ssd1b(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("cli --lora FILE[:W]: the kohya LoRA at :1 writes diffusers' lora_basic image (within 1 level); bad --lora is a usage error", { skip: NO_FIXTURES, timeout: 300_000 }, (t) => {
  const dir = tinyModel();
  const out = join(tmp, "cli", "lora.png");
  const o = basicOptions();
  const r = ssd1b(["generate", "--model", dir, "--prompt", String(o.prompt), "--negative-prompt", String(o.negativePrompt),
    "--steps", "4", "--guidance", "5", "--seed", "0", "--scheduler", "euler", "--lora", `${loraFile("kohya")}:1`, "--output", out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /lora .*kohya.*lora\.safetensors \(kohya\) at 1/);
  const img = decodePng(readFileSync(out));
  const ref = openFixture("lora", "kohya", "cases.safetensors").float32("lora_basic.images");
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(img.data[i] - ref[i] * 255));
  t.diagnostic(`max difference ${m.toFixed(3)} levels`);
  assert.ok(m <= 1, `PNG vs lora_basic: ${m} levels`);

  const bad = ssd1b(["generate", "--model", dir, "--prompt", "x", "--lora", join(tmp, "missing.safetensors:0.8"), "--output", join(tmp, "cli", "x.png")]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--lora .*missing\.safetensors:0\.8: file not found: .*missing\.safetensors\n/);
});
