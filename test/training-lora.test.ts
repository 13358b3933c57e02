/**
 * End to end on the tiny SSD-1B: a full fine-tune (saved as a diffusers folder), then a LoRA on top
 * of it that lowers the loss and, loaded into the pipeline, draws latents closer to the training
 * images; PEFT and kohya files equal; `--resume` reproduces an uninterrupted run bit for bit.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, cpSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { VaeRunner } from "../src/pipelines/sessions.js";
import { TensorStore } from "../src/safetensors/index.js";
import { scanImageFolder } from "../src/training/data/dataset.js";
import { prepareSample } from "../src/training/data/sample.js";
import { TrainingRng } from "../src/training/rng.js";
import { COLOURS, circleDataset, makeVaeInformative, readLog, ssd1b, tinyModel, valLosses } from "./training-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "training-lora-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const rms = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length);

/** For each training caption: the latents drawn for it and their RMS distance to that image's latent. */
async function distanceToTraining(model: string, data: string, lora?: string): Promise<{ distance: number; latents: Float32Array }[]> {
  const vae = VaeRunner.open(model, undefined);
  const items = scanImageFolder(data);
  const pipe = await StableDiffusionXLPipeline.fromPretrained(model, lora ? { loras: [{ file: lora, weight: 1 }] } : {});
  const out: { distance: number; latents: Float32Array }[] = [];
  try {
    for (const [i, item] of items.entries()) {
      const s = prepareSample(item, { resolution: 32, centerCrop: true, randomFlip: false }, new TrainingRng(0));
      const target = (await vae.encode(s.pixels, 32, 32)).mean.map((v) => v * vae.config.scalingFactor);
      const g = await pipe.generate({ prompt: item.caption, seed: 100 + i, numInferenceSteps: 8, width: 32, height: 32, outputType: "latent" });
      out.push({ distance: rms(g.latents.data, target), latents: g.latents.data });
    }
  } finally {
    await pipe.release();
    await vae.release();
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("finetune then LoRA: both lower the loss; the LoRA moves generated latents towards the training images", { skip: NO_FIXTURES, timeout: 5 * 60_000 }, async (t) => {
  const model = tinyModel(join(tmp, "tiny-ssd"), "tiny-ssd");
  makeVaeInformative(model);
  // stage 1: the random synth UNet learns to draw circles in general (one caption for all)
  const generic = circleDataset(join(tmp, "generic"), "metadata", () => "a circle");
  const base = join(tmp, "base");
  let r = ssd1b(["train", "finetune", "--model", model, "--data", generic, "--output", base, "--resolution", "32", "--center-crop",
    "--steps", "150", "--lr", "1e-3", "--eval-batches", "8", "--save-every", "1000", "--no-progress"]);
  assert.equal(r.code, 0, r.stderr);
  const ftVal = valLosses(base);
  t.diagnostic(`finetune val_loss ${ftVal.map((v) => v.val_loss!.toFixed(4)).join(" → ")}`);
  assert.ok(ftVal.at(-1)!.val_loss! < 0.7 * ftVal[0].val_loss!, "finetune lowers the loss");
  assert.ok(existsSync(join(base, "unet", "diffusion_pytorch_model.safetensors")) && existsSync(join(base, "model_index.json")));

  // stage 2: a LoRA with the per-colour captions
  const data = circleDataset(join(tmp, "colours"), "txt");
  const out = join(tmp, "lora");
  r = ssd1b(["train", "lora", "--model", base, "--data", data, "--output", out, "--resolution", "32", "--center-crop",
    "--steps", "300", "--lr", "3e-3", "--eval-batches", "16", "--save-every", "1000", "--kohya", "--no-progress"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /training graph compiled in [\d.]+ s: 320 tensors/);
  const val = valLosses(out);
  t.diagnostic(`LoRA val_loss ${val.map((v) => v.val_loss!.toFixed(4)).join(" → ")}`);
  assert.ok(val.at(-1)!.val_loss! < val[0].val_loss!, "the LoRA lowers the loss");
  const log = readLog(out).filter((l) => l.loss !== undefined);
  assert.equal(log.length, 300);
  for (const k of ["loss", "lr", "step_time_s", "grad_norm", "epoch"]) assert.ok(typeof log[0][k] === "number", `log has ${k}`);

  const peft = join(out, "pytorch_lora_weights.safetensors");
  const keys = [...TensorStore.open(peft).tensors.keys()];
  assert.ok(keys.includes("unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight"), keys[0]);
  assert.ok(keys.every((k) => /^unet\..*\.(to_q|to_k|to_v|to_out\.0)\.lora_[AB]\.weight$/.test(k)));

  const before = await distanceToTraining(base, data);
  const withLora = await distanceToTraining(base, data, peft);
  const withKohya = await distanceToTraining(base, data, join(out, "pytorch_lora_weights_kohya.safetensors"));
  const d0 = mean(before.map((x) => x.distance)), d1 = mean(withLora.map((x) => x.distance));
  t.diagnostic(`latent RMS distance to the training image: base ${d0.toFixed(4)}, with the LoRA ${d1.toFixed(4)} (${COLOURS.length} captions)`);
  assert.ok(d1 < 0.95 * d0, "the LoRA draws closer to the training images");
  // kohya names (SGM blocks, alpha) load to the same model as the PEFT file
  withLora.forEach((x, i) => assert.ok(rms(withKohya[i].latents, x.latents) < 1e-5, "kohya file = PEFT file"));
});

test("--resume continues bit for bit (accumulation, cosine warmup, random crop/flip, caption dropout)", { skip: NO_FIXTURES, timeout: 5 * 60_000 }, () => {
  const model = tinyModel(join(tmp, "resume-model"), "tiny-ssd");
  const data = circleDataset(join(tmp, "resume-data"), "txt");
  const args = (out: string) => ["train", "lora", "--model", model, "--data", data, "--output", out, "--resolution", "32", "--steps", "12",
    "--save-every", "6", "--grad-accum", "2", "--batch-size", "2", "--lr", "1e-3", "--lr-scheduler", "cosine", "--lr-warmup-steps", "3",
    "--random-flip", "--caption-dropout", "0.3", "--seed", "7", "--no-progress"];
  const full = join(tmp, "full");
  let r = ssd1b(args(full));
  assert.equal(r.code, 0, r.stderr);
  const resumed = join(tmp, "resumed");
  mkdirSync(resumed);
  cpSync(join(full, "checkpoint-6"), join(resumed, "checkpoint-6"), { recursive: true });
  r = ssd1b([...args(resumed), "--resume", "latest"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /resumed from .*checkpoint-6 at step 6/);
  const a = readFileSync(join(full, "pytorch_lora_weights.safetensors")), b = readFileSync(join(resumed, "pytorch_lora_weights.safetensors"));
  assert.ok(a.equals(b), "final LoRA identical");
  assert.ok(readFileSync(join(full, "checkpoint-12", "state.safetensors")).equals(readFileSync(join(resumed, "checkpoint-12", "state.safetensors"))), "optimizer state identical");
  const la = readLog(full).filter((l) => l.step > 6).map((l) => [l.step, l.loss, l.lr]);
  const lb = readLog(resumed).filter((l) => l.step > 6).map((l) => [l.step, l.loss, l.lr]);
  assert.deepEqual(lb, la, "same losses and LRs after the resume");
  // a changed setting is refused
  r = ssd1b([...args(join(tmp, "other")), "--resume", join(full, "checkpoint-6"), "--rank", "8"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /settings differ from the checkpoint's: rank 4 → 8/);
});

test("--cache-dir: a second run takes every text embedding and latent from disk (no text encoder) and trains the same", { skip: NO_FIXTURES, timeout: 2 * 60_000 }, () => {
  const model = existsSync(join(tmp, "resume-model")) ? join(tmp, "resume-model") : tinyModel(join(tmp, "resume-model"), "tiny-ssd");
  const data = circleDataset(join(tmp, "cache-data"), "txt");
  const cache = join(tmp, "cache");
  const args = (out: string) => ["train", "lora", "--model", model, "--data", data, "--output", out, "--resolution", "32", "--steps", "4",
    "--cache-latents", "--cache-dir", cache, "--random-flip", "--no-progress"];
  let r = ssd1b(args(join(tmp, "cold")));
  assert.equal(r.code, 0, r.stderr);
  const te = join(model, "text_encoder", "model.safetensors");
  renameSync(te, `${te}.away`);
  try {
    r = ssd1b(args(join(tmp, "warm")));
  } finally {
    renameSync(`${te}.away`, te);
  }
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(join(tmp, "cold", "pytorch_lora_weights.safetensors")).equals(readFileSync(join(tmp, "warm", "pytorch_lora_weights.safetensors"))));
});
