/**
 * Distillation as SSD-1B was made, tiny: teacher tiny-sdxl, student with the tiny-ssd config. The
 * student starts from the teacher's weights (reported: dropped and duplicated blocks), training lowers
 * the student–teacher error, and the saved student is a diffusers folder our pipeline loads.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, fixture } from "./helpers/fixtures.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { planStudent } from "../src/training/distill/student.js";
import { circleDataset, ssd1b, tinyModel, valLosses } from "./training-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "training-distill-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const studentConfig = () => fixture("unet", "tiny-ssd", "config.json");
const json = (f: string) => JSON.parse(readFileSync(f, "utf8"));

test("student plan: kept blocks by name and index, dropped ones reported, deeper blocks copied", { skip: NO_FIXTURES }, () => {
  const plan = planStudent(json(fixture("pipeline", "tiny-sdxl", "unet", "config.json")), json(studentConfig()));
  assert.deepEqual(plan.dropped, ["mid_block.attentions.0", "mid_block.resnets.1",
    "up_blocks.0.attentions.2.transformer_blocks.1", "up_blocks.1.attentions.1.transformer_blocks.1", "up_blocks.1.attentions.2.transformer_blocks.1"]);
  assert.ok(plan.duplicated.includes("down_blocks.2.attentions.0.transformer_blocks.2 ← down_blocks.2.attentions.0.transformer_blocks.1"));
  assert.equal(plan.mapping.get("up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"), "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight");
  // SSD-1B from SDXL: only removals
  const sdxl = json(fixture("configs", "sdxl", "unet_config.json")), ssd = json(fixture("configs", "ssd-1b", "unet_config.json"));
  const real = planStudent(sdxl, ssd);
  assert.deepEqual(real.duplicated, []);
  assert.ok(real.dropped.includes("mid_block.attentions.0"));
  assert.ok(real.dropped.includes("down_blocks.2.attentions.0.transformer_blocks.4"));
});

test("distill tiny-sdxl into tiny-ssd: the student–teacher error falls; the student loads in the pipeline", { skip: NO_FIXTURES, timeout: 5 * 60_000 }, async (t) => {
  const teacher = tinyModel(join(tmp, "tiny-sdxl"), "tiny-sdxl");
  const data = circleDataset(join(tmp, "data"), "txt");
  const out = join(tmp, "student");
  // The synth teacher is noise, so its task loss pulls the student away from it: KD terms only here.
  const r = ssd1b(["distill", "--teacher", teacher, "--student", studentConfig(), "--data", data, "--output", out,
    "--resolution", "32", "--steps", "80", "--lr", "1e-4", "--task-weight", "0", "--eval-batches", "8", "--save-every", "1000", "--no-progress"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /student drops 5 teacher module\(s\): mid_block\.attentions\.0, mid_block\.resnets\.1/);
  assert.match(r.stderr, /start as copies: down_blocks\.2\.attentions\.0\.transformer_blocks\.2 ← /);
  const val = valLosses(out);
  t.diagnostic(`0.5·output KD + 0.5·feature KD on fixed batches: ${val.map((v) => v.val_loss!.toFixed(4)).join(" → ")}`);
  assert.ok(val.at(-1)!.val_loss! < 0.8 * val[0].val_loss!, "distillation lowers the student–teacher error");
  const saved = json(join(out, "unet", "config.json"));
  assert.deepEqual(saved.transformer_layers_per_block, [1, 2, 3]);
  assert.equal(saved.mid_block_type, "UNetMidBlock2D");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(out);
  try {
    const g = await pipe.generate({ prompt: "a red circle", seed: 0, numInferenceSteps: 2, width: 32, height: 32 });
    assert.deepEqual(g.images.shape, [1, 32, 32, 3]);
  } finally {
    await pipe.release();
  }
});

test("distill: a student that is not a sub-architecture is refused before training", { skip: NO_FIXTURES }, () => {
  const bad = join(tmp, "bad.json");
  writeFileSync(bad, JSON.stringify({ ...json(studentConfig()), block_out_channels: [32, 64, 64] }));
  const teacher = join(tmp, "tiny-sdxl");
  const r = ssd1b(["distill", "--teacher", teacher, "--student", bad, "--data", circleDataset(join(tmp, "d2"), "txt"), "--output", join(tmp, "bad-out"), "--resolution", "32", "--no-progress"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the student is not a sub-architecture of the teacher: \d+ student parameter\(s\) have no teacher counterpart/);
  assert.doesNotMatch(r.stderr, /training graph compiled/);
});
