import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { diff, fixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { Graph } from "../src/ir/graph.js";
import { WeightBuilder } from "../src/nn/weights.js";
import { WeightDeltas } from "../src/nn/weight-deltas.js";
import { storeSource } from "../src/loaders/component.js";
import { CompiledGraph } from "../src/runtime/session.js";
import { readFloat32, saveTensors, TensorStore } from "../src/safetensors/index.js";
import { expectedParameters } from "../src/models/components.js";
import { buildUNetGraph, parseUNetConfig } from "../src/models/unet/index.js";
import { synthTensor } from "../src/synth/synth-weights.js";
import { writeSynthFile } from "../src/synth/write-synth.js";
import { addLoraDeltas, emptyLoraDeltaSet, LoraError, LoraTargets, parseLoraArg, readLora, type LoraDelta } from "../src/loaders/lora.js";

const config = (c: string) => JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", c, "config.json"), "utf8"));
const loraFile = (form: "peft" | "kohya") => fixture("lora", form, "lora.safetensors");
const targets = () => new LoraTargets({ unet: config("unet"), textEncoder: config("text_encoder"), textEncoder2: config("text_encoder_2") });

/** scale · up · down as float64, the change a delta makes to its weight. */
function product({ delta }: LoraDelta): Float64Array {
  const up = readFloat32(delta.up), down = readFloat32(delta.down);
  const rank = delta.down.shape[0], out = delta.up.shape[0], inner = down.length / rank;
  const w = new Float64Array(out * inner);
  for (let o = 0; o < out; o++) for (let r = 0; r < rank; r++) for (let i = 0; i < inner; i++) w[o * inner + i] += delta.scale * up[o * rank + r] * down[r * inner + i];
  return w;
}

test("lora: the PEFT and kohya fixtures give the same deltas, on weights the tiny-ssd UNet has", { skip: NO_FIXTURES }, () => {
  const t = targets();
  const peft = readLora(loraFile("peft"), 1, t);
  const kohya = readLora(loraFile("kohya"), 1, t);
  assert.equal(peft.format, "peft");
  assert.equal(kohya.format, "kohya");
  assert.deepEqual(peft.unmatched, []);
  assert.equal(peft.deltas.unet.length, 80);
  assert.equal(peft.deltas.textEncoder.length + peft.deltas.textEncoder2.length, 0);
  const params = expectedParameters("unet", config("unet"));
  const byKey = new Map(kohya.deltas.unet.map((d) => [d.key, d]));
  assert.deepEqual([...byKey.keys()].sort(), peft.deltas.unet.map((d) => d.key).sort());
  for (const d of peft.deltas.unet) {
    assert.ok(params.has(d.key), `${d.key} is not a parameter of the tiny-ssd UNet`);
    const k = byKey.get(d.key)!;
    assert.equal(k.delta.scale, 1, "alpha = rank gives scale 1");
    const a = product(d), b = product(k);
    assert.equal(a.length, params.get(d.key)!.reduce((x, y) => x * y, 1));
    assert.deepEqual(a, b, d.key);
  }
  // The strength multiplies the scale.
  assert.equal(readLora(loraFile("kohya"), 0.5, t).deltas.unet[0].delta.scale, 0.5);
});

test("lora: unknown modules, misfit shapes and unsupported variants are errors that name the tensors", { skip: NO_FIXTURES }, () => {
  const dir = mkdtempSync(join(tmpdir(), "lora-"));
  try {
    const t = targets();
    const mat = (rows: number, cols: number) => ({ dtype: "F32" as const, shape: [rows, cols], data: synthTensor("m", [rows, cols]) });
    const scalar = (v: number) => ({ dtype: "F32" as const, shape: [], data: Float32Array.of(v) });
    // down_blocks.0 is a DownBlock2D: input_blocks.1 has no attention in this model.
    const foreign = join(dir, "foreign.safetensors");
    saveTensors(foreign, {
      "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight": mat(4, 32),
      "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_up.weight": mat(32, 4),
      "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": mat(2, 32),
      "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": mat(32, 2),
      "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha": scalar(1),
      "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": mat(2, 32),
      "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": mat(32, 2),
    });
    assert.throws(() => readLora(foreign, 1, t), (e: Error) => e instanceof LoraError && e.message.includes("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q.lora_down.weight"));
    const lenient = readLora(foreign, 0.8, t, { allowUnmatched: true });
    assert.equal(lenient.unmatched.length, 2);
    assert.equal(lenient.deltas.unet.length, 1);
    assert.equal(lenient.deltas.unet[0].key, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight");
    assert.ok(Math.abs(lenient.deltas.unet[0].delta.scale - 0.8 / 2) < 1e-12, "scale = weight · alpha / rank");
    assert.equal(lenient.deltas.textEncoder2[0].key, "text_model.encoder.layers.0.self_attn.q_proj.weight");
    // Without the text encoder configs, a text encoder LoRA has nothing to land on.
    assert.throws(() => readLora(foreign, 1, new LoraTargets({ unet: config("unet") }), { allowUnmatched: false }), /lora_te2_text_model_encoder_layers_0_self_attn_q_proj/);

    const misfit = join(dir, "misfit.safetensors");
    saveTensors(misfit, {
      "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": mat(4, 2048),
      "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight": mat(32, 4),
    });
    assert.throws(() => readLora(misfit, 1, t), /does not fit "down_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight" \[32,64\]/);

    const loha = join(dir, "loha.safetensors");
    saveTensors(loha, { "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.hada_w1_a": mat(32, 4) });
    assert.throws(() => readLora(loha, 1, t), /LoHa/);

    // Older diffusers attention-processor names, with a LoCon conv on a resnet (kohya, diffusers-style names).
    const legacy = join(dir, "legacy.safetensors");
    saveTensors(legacy, {
      "unet.up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor.to_out_lora.down.weight": mat(4, 64),
      "unet.up_blocks.0.attentions.1.transformer_blocks.0.attn2.processor.to_out_lora.up.weight": mat(64, 4),
      "lora_unet_down_blocks_0_resnets_1_conv1.lora_down.weight": { dtype: "F32", shape: [4, 32, 3, 3], data: synthTensor("c", [4, 32, 3, 3]) },
      "lora_unet_down_blocks_0_resnets_1_conv1.lora_up.weight": { dtype: "F32", shape: [32, 4, 1, 1], data: synthTensor("u", [32, 4, 1, 1]) },
    });
    const l = readLora(legacy, 1, t);
    assert.deepEqual(l.deltas.unet.map((d) => d.key).sort(), ["down_blocks.0.resnets.1.conv1.weight", "up_blocks.0.attentions.1.transformer_blocks.0.attn2.to_out.0.weight"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lora: --lora FILE[:WEIGHT] arguments", () => {
  assert.deepEqual(parseLoraArg("style.safetensors:0.7"), { file: "style.safetensors", weight: 0.7 });
  assert.deepEqual(parseLoraArg("style.safetensors"), { file: "style.safetensors", weight: 1 });
  assert.deepEqual(parseLoraArg("C:\\loras\\x.safetensors:-.5"), { file: "C:\\loras\\x.safetensors", weight: -0.5 });
  // FILE:TE:UNET, as A1111's <lora:NAME:TE:UNET>
  assert.deepEqual(parseLoraArg("style.safetensors:0.5:1"), { file: "style.safetensors", weight: 1, textEncoderWeight: 0.5 });
  assert.deepEqual(parseLoraArg("C:\\x.safetensors:0:1.5"), { file: "C:\\x.safetensors", weight: 1.5, textEncoderWeight: 0 });
  assert.deepEqual(parseLoraArg("style.safetensors:0.7:0.7"), { file: "style.safetensors", weight: 0.7 });
});

test("lora: a tiny-ssd UNet forward gives the same output with either form; weight 0 is the plain model", { skip: NO_FIXTURES, timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "lora-unet-"));
  try {
    const raw = config("unet");
    const cfg = parseUNetConfig(raw);
    const weights = join(dir, "unet.safetensors");
    writeSynthFile(weights, expectedParameters("unet", raw));
    const shape = { batch: 1, height: 8, width: 8 };
    const feeds = {
      sample: synthTensor("in.sample", [1, 4, 8, 8]),
      timestep: Float32Array.of(500),
      encoder_hidden_states: synthTensor("in.encoder_hidden_states", [1, 77, cfg.crossAttentionDim[0]]),
      text_embeds: synthTensor("in.text_embeds", [1, cfg.projectionClassEmbeddingsInputDim - 6 * cfg.additionTimeEmbedDim]),
      time_ids: Float32Array.of(64, 64, 0, 0, 64, 64),
    };
    const t = targets();
    const run = async (lora?: { form: "peft" | "kohya"; weight: number }) => {
      const set = emptyLoraDeltaSet();
      if (lora) addLoraDeltas(readLora(loraFile(lora.form), lora.weight, t), set);
      const g = new Graph();
      buildUNetGraph(g, WeightBuilder.root(g, storeSource(TensorStore.open(weights)), set.unet), cfg, shape);
      assert.deepEqual(set.unet.unapplied(), [], "every delta lands on a weight");
      const m = await CompiledGraph.create(g, "tiny-ssd unet + lora");
      const out = (await m.run(feeds)).sample_out;
      await m.release();
      return out;
    };
    const plain = await run();
    const peft = await run({ form: "peft", weight: 1 });
    const kohya = await run({ form: "kohya", weight: 1 });
    const off = await run({ form: "kohya", weight: 0 });
    const same = diff(kohya, peft);
    assert.ok(same.maxAbs <= 1e-6 * same.maxRef, `peft vs kohya: max|d| ${same.maxAbs}`);
    const zero = diff(off, plain);
    assert.ok(zero.maxAbs <= 1e-6 * zero.maxRef, `weight 0 vs no LoRA: max|d| ${zero.maxAbs}`);
    const changed = diff(peft, plain);
    assert.ok(changed.relL2 > 1e-3, `weight 1 changes the output (rel L2 ${changed.relL2})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("lora: several LoRAs stack on one delta set", { skip: NO_FIXTURES }, () => {
  const t = targets();
  const set = emptyLoraDeltaSet();
  addLoraDeltas(readLora(loraFile("peft"), 0.5, t), set);
  addLoraDeltas(readLora(loraFile("kohya"), 0.25, t), set);
  assert.equal(set.unet.size, 80);
  const both = set.unet.take("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight");
  assert.deepEqual(both.map((d) => d.scale), [0.5, 0.25]);
  assert.ok(set.unet instanceof WeightDeltas);
});

test("lora: a file with a NaN or infinite value in a tensor is refused, naming it (never a NaN image)", { skip: NO_FIXTURES }, () => {
  const dir = mkdtempSync(join(tmpdir(), "lora-nan-"));
  try {
    const store = TensorStore.open(loraFile("kohya"));
    const names = [...store.tensors.keys()];
    const up = names.find((n) => n.endsWith("lora_up.weight"))!, alpha = names.find((n) => n.endsWith(".alpha"))!;
    for (const [victim, value] of [[up, Number.NaN], [up, Number.POSITIVE_INFINITY], [alpha, Number.NaN]] as const) {
      const tensors = Object.fromEntries(names.map((n) => {
        const e = store.tensors.get(n)!;
        const data = Float32Array.from(readFloat32(e));
        if (n === victim) data[data.length - 1] = value;
        return [n, { dtype: "F32" as const, shape: e.shape, data }];
      }));
      const file = join(dir, "bad.safetensors");
      saveTensors(file, tensors);
      assert.throws(() => readLora(file, 1, targets()), (e: Error) => e instanceof LoraError && (e.message.includes(victim) || (victim === alpha && /alpha of .* is NaN/.test(e.message))), `${victim} = ${value}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
