/** Bad training inputs fail with a clear message before any training graph is built; DreamBooth with prior preservation runs. */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { TensorStore } from "../src/safetensors/index.js";
import { circleDataset, readLog, ssd1b, tinyModel } from "./training-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "training-errors-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

let model: string | undefined;
const tiny = () => (model ??= tinyModel(join(tmp, "tiny-ssd"), "tiny-ssd"));

function fails(args: string[], message: RegExp, code = 1): void {
  const r = ssd1b(args);
  assert.equal(r.code, code, `${args.join(" ")}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /training graph compiled/, "failed before building the training graph");
}

test("train: empty dataset, missing captions, unmatched LoRA target, bad flags are refused up front", { skip: NO_FIXTURES, timeout: 2 * 60_000 }, () => {
  const m = tiny();
  const base = (data: string, ...more: string[]) => ["train", "lora", "--model", m, "--data", data, "--output", join(tmp, "out"), "--resolution", "32", ...more];
  const empty = join(tmp, "empty");
  mkdirSync(empty);
  fails(base(empty), /empty dataset, no images found/);
  const missing = circleDataset(join(tmp, "missing"), "txt");
  unlinkSync(join(missing, "5.txt"));
  fails(base(missing), /missing captions for 1 of 8 image\(s\): 5\.png; put a \.txt file beside each image or a metadata\.jsonl/);
  const data = circleDataset(join(tmp, "data"), "txt");
  fails(base(data, "--targets", "to_q,q_proj"), /LoRA target\(s\) "q_proj" match no Linear layer of the UNet/);
  fails(base(data, "--targets", "conv1"), /not a Linear layer \(LoRA on convolutions is not supported\)/);
  fails(base(data, "--resolution", "33"), /--resolution 33 is not a multiple of the VAE.s scale factor 2/);
  fails(base(data, "--lr-scheduler", "exp"), /unknown LR schedule "exp"/, 2);
  fails(["train", "dreambooth-lora", "--model", m, "--data", data, "--output", join(tmp, "db")], /dreambooth-lora needs --instance-prompt/);
  fails(["train", "sideways", "--model", m], /train needs a kind first: lora, dreambooth-lora, finetune/, 2);
  fails(["distill", "--teacher", m, "--student", "nano", "--data", data, "--output", join(tmp, "d")], /--student nano: not "ssd-1b", "vega" or an existing UNet config\.json/);
});

test("dreambooth-lora with prior preservation: class images drawn by the model, instance + class batches", { skip: NO_FIXTURES, timeout: 2 * 60_000 }, () => {
  const m = tiny();
  const inst = join(tmp, "instance");
  mkdirSync(inst);
  circleDataset(inst, "txt");
  const out = join(tmp, "db-out");
  const r = ssd1b(["train", "dreambooth-lora", "--model", m, "--data", inst, "--output", out, "--instance-prompt", "a sks circle",
    "--class-prompt", "a circle", "--num-class-images", "2", "--validation-steps", "2", "--resolution", "32", "--steps", "4",
    "--batch-size", "2", "--prior-loss-weight", "0.5", "--validation-prompt", "a sks circle", "--validate-every", "4",
    "--train-text-encoder", "--kohya", "--no-progress"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /generating 2 class image\(s\) for "a circle"/);
  assert.deepEqual(readdirSync(join(out, "class_images")).sort(), ["class-0.png", "class-1.png"]);
  assert.match(r.stderr, /training graph compiled/);
  assert.equal(readLog(out).filter((l) => l.loss !== undefined).length, 4);
  assert.ok(readdirSync(join(out, "validation")).includes("step-4-0.png"), "validation image written (the pipeline loaded the LoRA)");
  // --train-text-encoder: LoRA on both text encoders too, in both file forms
  const peft = [...TensorStore.open(join(out, "pytorch_lora_weights.safetensors")).tensors.keys()];
  assert.ok(peft.includes("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight"));
  assert.ok(peft.some((k) => k.startsWith("text_encoder_2.")) && peft.some((k) => k.startsWith("unet.")));
  const kohya = [...TensorStore.open(join(out, "pytorch_lora_weights_kohya.safetensors")).tensors.keys()];
  assert.ok(kohya.includes("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"));
  assert.ok(kohya.includes("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha"), kohya.find((k) => k.startsWith("lora_unet")));
});
