/**
 * A1111's prompt editing: the schedules of A1111's own doctests (prompt_parser.py) and of its comment's
 * landscape; the pipeline's run with [from:to:when] equals the run split where A1111 switches (Euler: a
 * base to the switch, then img2img from its latents with the other prompt), alternation takes A1111's
 * step counter (red, red, blue), the negative prompt is scheduled too, prompts of other chunk counts share
 * one shape, the diffusers syntax leaves brackets alone, and hostile prompts stay cheap or are refused before encoding.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promptSchedule } from "../src/prompts/prompt-editing.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { diff, levelDiff, NO_FIXTURES } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { startLocalServer } from "./helpers/local-server.js";
import { txt2imgFirst } from "./helpers/a1111-client.js";
import { nativeJobPng } from "./helpers/native-client.js";

const tmp = mkdtempSync(join(tmpdir(), "prompt-editing-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const g = (p: string, steps = 10, baseSteps?: number) => promptSchedule(p, steps, baseSteps === undefined ? undefined : { baseSteps }).map((e) => [e.endAt, e.text]);

test("schedules as A1111's doctests give them", () => {
  const cases: [string, (number | string)[][]][] = [
    ["test", [[10, "test"]]],
    ["a [b:3]", [[3, "a "], [10, "a b"]]],
    ["a [b: 3]", [[3, "a "], [10, "a b"]]],
    ["a [[[b]]:2]", [[2, "a "], [10, "a [[b]]"]]],
    ["[(a:2):3]", [[3, ""], [10, "(a:2)"]]],
    ["a [b : c : 1] d", [[1, "a b  d"], [10, "a  c  d"]]],
    ["a[b:[c:d:2]:1]e", [[1, "abe"], [2, "ace"], [10, "ade"]]],
    ["a [unbalanced", [[10, "a [unbalanced"]]],
    ["a [b:.5] c", [[5, "a  c"], [10, "a b c"]]],
    ["((a][:b:c [d:3]", [[3, "((a][:b:c "], [10, "((a][:b:c d"]]],
    ["[a|(b:1.1)]", Array.from({ length: 10 }, (_, i) => [i + 1, i % 2 ? "(b:1.1)" : "a"])],
    ["[fe|]male", Array.from({ length: 10 }, (_, i) => [i + 1, i % 2 ? "male" : "female"])],
    ["[fe|||]male", Array.from({ length: 10 }, (_, i) => [i + 1, i % 4 ? "male" : "female"])],
  ];
  for (const [p, want] of cases) assert.deepEqual(g(p), want, p);
  // the hires pass: integers from the first pass's end, fractions from 1
  assert.deepEqual(g("a [b:.5] c", 10, 10), [[10, "a b c"]]);
  assert.deepEqual(g("a [b:1.5] c", 10, 10), [[5, "a  c"], [10, "a b c"]]);
  assert.deepEqual(g("a [b:15] c", 10, 10), [[5, "a  c"], [10, "a b c"]]);
  // the comment at the top of prompt_parser.py (steps = 100)
  assert.deepEqual(g("fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6][: in background:0.25] [shoddy:masterful:0.5]", 100), [
    [25, "fantasy landscape with a mountain and an oak in foreground shoddy"],
    [50, "fantasy landscape with a lake and an oak in foreground in background shoddy"],
    [60, "fantasy landscape with a lake and an oak in foreground in background masterful"],
    [75, "fantasy landscape with a lake and an oak in background masterful"],
    [100, "fantasy landscape with a lake and a christmas tree in background masterful"],
  ]);
  // what the grammar does not take is the text as is (A1111's parse-error fallback); emphasis alone is no editing
  assert.deepEqual(g("a | b [c:d:2]"), [[10, "a | b [c:d:2]"]]);
  assert.deepEqual(g("a (b:1.2) [c] \\[d:e:1\\]"), [[10, "a (b:1.2) [c] \\[d:e:1\\]"]]);
  assert.equal(g("a [b|c]").length, 10);
  // brackets nested past 100 are taken as they are (no recursion 20,000 deep), quickly
  const deep = "[a".repeat(8000) + "[b:c:2]";
  const t0 = performance.now();
  assert.deepEqual(g(deep), [[10, deep]]);
  const nest = "[".repeat(200) + "x" + "]".repeat(200);
  assert.deepEqual(g(nest), [[10, nest]]);
  assert.deepEqual(g("[a|b] ".repeat(3000), 50).length, 50);
  assert.ok(performance.now() - t0 < 2000, `${performance.now() - t0} ms`);
});

test("pipeline: [from:to:when] is the run split where A1111 switches; the negative prompt too; alternation on A1111's counter", { skip: NO_FIXTURES, timeout: 180_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  try {
    // 4 Euler steps (timesteps 751, 501, 251, 1): [..:..:0.25] holds to step int(0.25 * 4) = 1, i.e. model calls 0 and 1
    const common = { width: 64, height: 64, numInferenceSteps: 4, scheduler: "Euler", guidanceScale: 5, promptSyntax: "a1111" as const, outputType: "latent" as const };
    const split = async (first: { prompt: string; negativePrompt: string }, second: { prompt: string; negativePrompt: string }, end: number) => {
      const a = await pipe.generate({ ...common, ...first, seed: 3, denoisingEnd: end });
      return (await pipe.img2img({ ...common, ...second, seed: 3, image: a.latents, denoisingStart: end })).latents.data;
    };
    const edited = await pipe.generate({ ...common, seed: 3, prompt: "a [red:blue:0.25] cube", negativePrompt: "[blurry::1] dark" });
    // calls 0 and 1 (>= timestep 400 with denoisingEnd 0.6) on the first texts, calls 2 and 3 on the second
    const ref = await split({ prompt: "a red cube", negativePrompt: "blurry dark" }, { prompt: "a blue cube", negativePrompt: " dark" }, 0.6);
    assert.ok(diff(edited.latents.data, ref).relL2 < 1e-6, `edited vs split: ${diff(edited.latents.data, ref).relL2}`);
    const plain = await pipe.generate({ ...common, seed: 3, prompt: "a red cube", negativePrompt: "blurry dark" });
    assert.ok(diff(edited.latents.data, plain.latents.data).relL2 > 1e-4, `the switch changes the run: ${diff(edited.latents.data, plain.latents.data).relL2}`);
    // [red|blue] over 3 steps: entries end at 1, 2, 3; calls 0 and 1 take the first (red), call 2 the second (blue)
    const three = { ...common, numInferenceSteps: 3 };
    const alt = await pipe.generate({ ...three, seed: 4, prompt: "a [red|blue] cube" });
    const a = await pipe.generate({ ...three, seed: 4, prompt: "a red cube", denoisingEnd: 0.7 });
    assert.equal(a.timesteps.length, 2);
    const b = await pipe.img2img({ ...three, seed: 4, prompt: "a blue cube", image: a.latents, denoisingStart: 0.7 });
    assert.ok(diff(alt.latents.data, b.latents.data).relL2 < 1e-6, "alternation: red, red, blue");
    // prompts of different chunk counts over the run: one UNet shape (both at the longer's)
    const long = Array.from({ length: 90 }, (_, i) => `word${i % 7}`).join(" ");
    const mixed = await pipe.generate({ ...common, seed: 3, prompt: `[a red cube:${long}:0.5]` });
    assert.ok(mixed.latents.data.every(Number.isFinite));
    // the diffusers syntax reads brackets as text: no schedule
    const literal = await pipe.generate({ ...common, promptSyntax: "diffusers", seed: 3, prompt: "a [red:blue:0.5] cube" });
    const same = await pipe.generate({ ...common, promptSyntax: "diffusers", seed: 3, prompt: "a [red:blue:0.5] cube" });
    assert.deepEqual(literal.latents.data, same.latents.data);
    assert.ok(diff(literal.latents.data, edited.latents.data).relL2 > 1e-4);
    // refused before any encoding: too many distinct long prompts
    const options = Array.from({ length: 30 }, (_, i) => `colour${i}`).join("|");
    const many = `[${options}] ${Array(6).fill(long).join(" ")}`;
    await assert.rejects(pipe.generate({ ...common, numInferenceSteps: 30, prompt: many }), (e: Error) => {
      const m = /^the prompt editing makes 30 distinct prompts of (\d+) chunks of 75 tokens .*at most 256/.exec(e.message);
      return e instanceof PipelineInputError && m !== null && 30 * Number(m[1]) > 256;
    });
  } finally {
    await pipe.release();
  }
});

test("A1111's txt2img (serve --prompt-syntax a1111): prompt editing and AND as the library's a1111 syntax", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp), { promptSyntax: "a1111" });
  const server = await startLocalServer(pipe);
  try {
    const body = { prompt: "a [red:blue:0.5] cube, [shiny|matte] AND a sphere:0.7", negative_prompt: "[blurry::3]", steps: 4, cfg_scale: 5, seed: 8, width: 64, height: 64, sampler_name: "Euler" };
    const { image, info } = await txt2imgFirst(server.url, body);
    const lib = await pipe.generate({ prompt: body.prompt, negativePrompt: body.negative_prompt, numInferenceSteps: 4, guidanceScale: 5, seed: 8, width: 64, height: 64, scheduler: "Euler", promptSyntax: "a1111" });
    assert.ok(levelDiff(image, lib.images.data) <= 1);
    assert.equal(info.prompt, body.prompt, "the infotext keeps the prompt as written");
    // the native API names the syntax per job (this server's default is a1111; diffusers' reads the brackets as text)
    const native = { prompt: body.prompt, negative_prompt: body.negative_prompt, steps: 4, guidance_scale: 5, seed: 8, width: 64, height: 64, scheduler: "Euler" };
    assert.ok(levelDiff(await nativeJobPng(server.url, { ...native, prompt_syntax: "a1111" }), lib.images.data) <= 1);
    const literal = await pipe.generate({ ...native, negativePrompt: native.negative_prompt, numInferenceSteps: 4, guidanceScale: 5, promptSyntax: "diffusers" });
    assert.ok(levelDiff(await nativeJobPng(server.url, { ...native, prompt_syntax: "diffusers" }), literal.images.data) <= 1);
    const bad = await fetch(`${server.url}/v1/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...native, prompt_syntax: "lark" }) });
    assert.equal(bad.status, 400);
    assert.match((await bad.json() as any).error.message, /prompt_syntax must be one of diffusers, a1111, comfyui, got "lark"/);
  } finally {
    await server.close();
    await pipe.release();
  }
});
