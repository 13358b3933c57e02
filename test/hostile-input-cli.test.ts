/**
 * Hostile input on the command line and in model folders: sizes and steps past the library's
 * limits fail before the model loads; scheduler configs with absurd or mistyped values and a
 * malformed model_index.json are errors that name the field or file; synth and the CLI's PNGs
 * leave no partial file behind when they fail.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, PROJECT_ROOT, fixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { resolveConfig } from "../src/schedulers/common.js";
import { createScheduler } from "../src/schedulers/index.js";
import { writeAtomically } from "../src/util/atomic-write.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");
const tmp = mkdtempSync(join(tmpdir(), "hostile-cli-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60000 });

test("cli: --width 100000, --steps 1e9 and --num-images 1000 are usage errors naming the limit, before the model loads", () => {
  for (const [args, re] of [
    [["--width", "100000", "--height", "64"], /--width 100000 is above the limit of 4096/],
    [["--steps", "1000000000"], /--steps 1000000000 is above the limit of 1000/],
    [["--num-images", "1000"], /--num-images 1000 is above the limit of 64/],
  ] as [string[], RegExp][]) {
    const t0 = Date.now();
    // a model that does not exist: the limit is checked first
    const r = cli("generate", "--model", join(tmp, "no-such-model"), "--prompt", "x", ...args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.ok(Date.now() - t0 < 20000);
  }
});

test("scheduler configs: values of the wrong type or out of range are errors naming the field, before any table is made", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ num_train_timesteps: 4e9 }, /num_train_timesteps must be a whole number in \[1, 100000\], got 4000000000/],
    [{ num_train_timesteps: 10.5 }, /num_train_timesteps must be a whole number/],
    [{ beta_start: "x" }, /beta_start must be a number, got "x"/],
    [{ beta_end: 7 }, /beta_end must be a number in \[0, 1\)/],
    [{ beta_schedule: 3 }, /beta_schedule must be a string/],
    [{ steps_offset: -1 }, /steps_offset must be a whole number/],
    [{ trained_betas: ["a"] }, /trained_betas must be null or/],
    [{ prediction_type: ["epsilon"] }, /prediction_type must be a string, got \["epsilon"\]/],
  ];
  for (const name of ["Euler", "DPM++ 2M", "DDIM", "UniPC", "Heun", "DDPM", "LCM", "Euler a"]) {
    for (const [config, re] of cases) {
      assert.throws(() => createScheduler(name, { beta_schedule: "scaled_linear", ...config }), re, `${name} ${JSON.stringify(config)}`);
    }
    createScheduler(name, { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, steps_offset: 1, trained_betas: null });
  }
  // a field the class defaults to null takes any JSON value; known fields of other classes are ignored
  assert.deepEqual(resolveConfig("X", { a: null as unknown, b: 1 }, { a: [1], c: "other" }), { a: [1], b: 1 });
});

test("cli generate: a bad scheduler_config.json or model_index.json fails with the field or file named (no black image)", { skip: NO_FIXTURES }, () => {
  const dir = tinyModelIn(tmp);
  const schedFile = join(dir, "scheduler", "scheduler_config.json");
  const indexFile = join(dir, "model_index.json");
  for (const f of [schedFile, indexFile]) chmodSync(f, 0o644);
  const sched = readFileSync(schedFile, "utf8"), index = readFileSync(indexFile, "utf8");
  const out = join(tmp, "out.png");
  try {
    for (const [change, re] of [
      [{ num_train_timesteps: 4e9 }, /num_train_timesteps must be a whole number in \[1, 100000\]/],
      [{ beta_start: "x" }, /beta_start must be a number, got "x"/],
    ] as [Record<string, unknown>, RegExp][]) {
      writeFileSync(schedFile, JSON.stringify({ ...JSON.parse(sched), ...change }));
      const r = cli("generate", "--model", dir, "--prompt", "x", "--steps", "2", "--output", out);
      assert.notEqual(r.status, 0, `${JSON.stringify(change)}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(existsSync(out), false);
    }
    writeFileSync(schedFile, "{ not json");
    assert.match(cli("generate", "--model", dir, "--prompt", "x", "--steps", "2", "--output", out).stderr, /scheduler_config\.json: not valid JSON/);
    writeFileSync(schedFile, sched);
    writeFileSync(indexFile, "{\"_class_name\": ");
    const r = cli("generate", "--model", dir, "--prompt", "x", "--steps", "2", "--output", out);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /model_index\.json: not valid JSON/);
    assert.ok(r.stderr.includes(indexFile), r.stderr);
  } finally {
    writeFileSync(schedFile, sched);
    writeFileSync(indexFile, index);
  }
  const ok = cli("generate", "--model", dir, "--prompt", "x", "--steps", "2", "--output", out);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok(existsSync(out));
  assert.deepEqual(readdirSync(tmp).filter((f) => f.endsWith(".partial")), [], "no temporary file left");
});

test("synth with a config too big to write leaves no partial file; writeAtomically keeps the old file on failure", { skip: NO_FIXTURES }, () => {
  const dir = join(tmp, "huge", "unet");
  mkdirSync(dir, { recursive: true });
  cpSync(fixture("pipeline", "tiny-ssd", "unet", "config.json"), join(dir, "config.json"));
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  config.block_out_channels = config.block_out_channels.map(() => 1 << 17);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const r = cli("synth", join(tmp, "huge"));
  assert.notEqual(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(dir), ["config.json"], "neither the weights file nor a temporary one");

  const file = join(tmp, "kept.txt");
  writeFileSync(file, "old");
  assert.throws(() => writeAtomically(file, (t) => { writeFileSync(t, "half"); throw new Error("killed"); }), /killed/);
  assert.equal(readFileSync(file, "utf8"), "old");
  assert.deepEqual(readdirSync(tmp).filter((f) => f.includes("kept.txt.")), []);
});
