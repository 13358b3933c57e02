import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HAVE_FIXTURES, NO_FIXTURES, assertMaxAbs, assertModuleClose, fixture, openFixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline, type GenerateOptions, type Img2ImgOptions } from "../src/pipelines/sdxl/index.js";
import { PipelineInputError } from "../src/pipelines/errors.js";
import { img2imgTimeIds, txt2imgTimeIds, type Pair } from "../src/pipelines/micro-conditioning.js";
import { applyGuidance } from "../src/pipelines/guidance.js";
import { repeatRows } from "../src/pipelines/prompt-encoding.js";
import { TorchGenerator } from "../src/random/index.js";

/** Pipeline latents and images: the fixtures README's tolerance. */
const TOL = 2e-3;

interface Case {
  prompt: string | string[];
  negative_prompt?: string | string[];
  num_inference_steps: number;
  guidance_scale: number;
  seed: number;
  scheduler: string;
  n_steps_recorded: number;
  init_image: boolean;
  width?: number;
  height?: number;
  num_images_per_prompt?: number;
  strength?: number;
  original_size?: Pair;
  crops_coords_top_left?: Pair;
  target_size?: Pair;
}

const MODELS = ["tiny-ssd", "tiny-sdxl"];
const tmpDirs: string[] = [];
after(() => { for (const d of tmpDirs) rmSync(d, { recursive: true, force: true }); });

/** A temp copy of the fixture model folder with synth weights. */
function tinyModel(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  tmpDirs.push(dir);
  cpSync(fixture("pipeline", name), dir, { recursive: true });
  synthModel(dir, "fp32");
  return dir;
}

/** The fixture case's arguments as pipeline options. */
function caseOptions(c: Case): GenerateOptions {
  return {
    prompt: c.prompt, negativePrompt: c.negative_prompt, numInferenceSteps: c.num_inference_steps,
    guidanceScale: c.guidance_scale, seed: c.seed, scheduler: c.scheduler, width: c.width, height: c.height,
    numImagesPerPrompt: c.num_images_per_prompt, originalSize: c.original_size,
    cropsCoordsTopLeft: c.crops_coords_top_left, targetSize: c.target_size,
  };
}

const fmt = (d: { maxAbs: number }) => d.maxAbs.toExponential(2);

for (const model of MODELS) {
  const cases: Record<string, Case> = HAVE_FIXTURES ? JSON.parse(readFileSync(fixture("pipeline", model, "cases.json"), "utf8")) : {};
  let pipe: StableDiffusionXLPipeline | undefined;
  const open = async () => (pipe ??= await StableDiffusionXLPipeline.fromPretrained(tinyModel(model)));
  after(async () => { await pipe?.release(); });

  for (const [name, c] of Object.entries(cases)) {
    test(`pipeline ${model}/${name}: embeddings, latents after every step and images match diffusers`, { skip: NO_FIXTURES }, async (t) => {
      const p = await open();
      const ref = openFixture("pipeline", model, "cases.safetensors");
      const opts = caseOptions(c);
      const guidance = c.guidance_scale > 1;

      const emb = await p.encodePrompt({ ...opts, doClassifierFreeGuidance: guidance });
      const got: Record<string, Float32Array | undefined> = {
        prompt_embeds: emb.promptEmbeds.data, pooled_prompt_embeds: emb.pooledPromptEmbeds.data,
        negative_prompt_embeds: emb.negativePromptEmbeds?.data, negative_pooled_prompt_embeds: emb.negativePooledPromptEmbeds?.data,
      };
      for (const [key, value] of Object.entries(got)) {
        const refKey = `${name}.${key}`;
        if (!ref.has(refKey)) { assert.equal(value, undefined, `${key}: none without guidance`); continue; }
        assert.deepEqual(key.includes("pooled") ? emb.pooledPromptEmbeds.shape : emb.promptEmbeds.shape, ref.get(refKey).shape, `${key} shape`);
        const d = assertModuleClose(value!, ref.float32(refKey), `${model}/${name} ${key}`);
        t.diagnostic(`${key}: max|d| ${fmt(d)}`);
      }

      const steps: Float32Array[] = [];
      const onStep = ({ latents }: { latents: Float32Array }) => { steps.push(latents); };
      const out = c.init_image
        ? await p.img2img({ ...opts, image: { data: ref.float32(`${name}.init_image`), shape: ref.get(`${name}.init_image`).shape }, strength: c.strength, onStep } as Img2ImgOptions)
        : await p.generate({ ...opts, onStep });
      assert.equal(steps.length, c.n_steps_recorded, "steps run");
      steps.forEach((lat, i) => {
        const d = assertMaxAbs(lat, ref.float32(`${name}.latents_after_step${i}`), TOL, `${model}/${name} latents after step ${i}`);
        t.diagnostic(`latents after step ${i}: max|d| ${fmt(d)}`);
      });
      assert.deepEqual(out.images.shape, ref.get(`${name}.images`).shape, "images shape");
      const d = assertMaxAbs(out.images.data, ref.float32(`${name}.images`), TOL, `${model}/${name} images`);
      t.diagnostic(`images: max|d| ${fmt(d)}`);
      assert.equal(out.seed, c.seed);
    });
  }
}

test("pipeline: bad arguments are rejected before any work, cancellation stops the loop", { skip: NO_FIXTURES }, async () => {
  const p = await StableDiffusionXLPipeline.fromPretrained(tinyModel("tiny-ssd"));
  try {
    const base = { prompt: "a cat", numInferenceSteps: 2 };
    const rejects = (o: Promise<unknown>, re: RegExp) => assert.rejects(o, (e: Error) => e instanceof PipelineInputError && re.test(e.message));
    await rejects(p.generate({ ...base, width: 36 }), /width 36 is not a multiple of 8/);
    await rejects(p.generate({ ...base, numInferenceSteps: 0 }), /positive integer, got 0/);
    await rejects(p.generate({ ...base, scheduler: "Frobnicator" }), /unknown scheduler "Frobnicator"/);
    await rejects(p.generate({ ...base, prompt: ["a", "b"], negativePrompt: ["x"] }), /1 entries but there are 2 prompts/);
    const image = { data: new Float32Array(3 * 32 * 32), shape: [1, 3, 32, 32] };
    await rejects(p.img2img({ ...base, image, strength: 0 }), /strength must be in \(0, 1\]/);
    await rejects(p.img2img({ ...base, image, strength: 1.5 }), /strength must be in \(0, 1\]/);
    await rejects(p.img2img({ ...base, image, strength: 0.1 }), /leaves no denoising step/);

    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      p.generate({ ...base, numInferenceSteps: 4, seed: 1, signal: ac.signal, onStep: () => { if (++seen === 2) ac.abort(); } }),
      (e: Error) => e.name === "AbortError",
    );
    assert.equal(seen, 2, "stopped after the step that aborted");
    // the same pipeline still works afterwards, with a random seed it reports
    const out = await p.generate({ ...base, numInferenceSteps: 1, outputType: "latent" });
    assert.equal(typeof out.seed, "number");
    assert.deepEqual(out.latents.shape, [1, 4, 16, 16]);
  } finally {
    await p.release();
  }
});

test("pipeline: per-image seeds (a list of generators) give each image of a batch its single-image result; stopEarly decodes the latents so far", { skip: NO_FIXTURES }, async () => {
  const p = await StableDiffusionXLPipeline.fromPretrained(tinyModel("tiny-ssd"));
  try {
    // Euler a draws step noise too: each image's comes from its own generator
    const base = { prompt: "a cat", negativePrompt: "blurry", numInferenceSteps: 3, width: 32, height: 24, scheduler: "Euler a" };
    const close = (a: Float32Array, b: Float32Array, what: string) => assertMaxAbs(a, b, 1e-4, what);
    const batch = await p.generate({ ...base, seeds: [7, 8, 9], numImagesPerPrompt: 3 });
    assert.deepEqual(batch.seeds, [7, 8, 9]);
    assert.equal(batch.seed, undefined);
    const per = batch.latents.data.length / 3, px = batch.images.data.length / 3;
    for (const [i, seed] of [7, 8, 9].entries()) {
      const one = await p.generate({ ...base, seed });
      close(batch.latents.data.subarray(i * per, (i + 1) * per), one.latents.data, `latents of image ${i}`);
      close(batch.images.data.subarray(i * px, (i + 1) * px), one.images.data, `image ${i}`);
    }
    const listed = await p.generate({ ...base, generator: [new TorchGenerator(7), new TorchGenerator(8), new TorchGenerator(9)], numImagesPerPrompt: 3, outputType: "latent" });
    assert.deepEqual(Array.from(listed.latents.data), Array.from(batch.latents.data), "generators list = seeds");
    // one seed keeps diffusers' behaviour: the batch is one draw, so image 1 is not seed 8's image
    const shared = await p.generate({ ...base, seed: 7, numImagesPerPrompt: 2, outputType: "latent" });
    assert.notDeepEqual(Array.from(shared.latents.data.subarray(per)), Array.from(batch.latents.data.subarray(per, 2 * per)));

    // img2img: diffusers tiles the init image and samples each posterior with its image's generator
    const image = { width: 32, height: 24, data: new Uint8Array(32 * 24 * 3).map((_, i) => (i * 37) % 256) };
    const i2i = await p.img2img({ ...base, image, strength: 0.7, seeds: [3, 4], numImagesPerPrompt: 2 });
    for (const [i, seed] of [3, 4].entries()) {
      const one = await p.img2img({ ...base, image, strength: 0.7, seed });
      close(i2i.images.data.subarray(i * px, (i + 1) * px), one.images.data, `img2img image ${i}`);
    }

    const rejects = (o: Promise<unknown>, re: RegExp) => assert.rejects(o, (e: Error) => e instanceof PipelineInputError && re.test(e.message));
    await rejects(p.generate({ ...base, seeds: [1, 2], numImagesPerPrompt: 3 }), /2 generators \(or seeds\) were passed for 3 images/);
    await rejects(p.generate({ ...base, seeds: [1], seed: 1 }), /one of seed, seeds and generator/);

    // stopEarly after step 2 of 3: the latents of step 2, decoded; no error
    const stop = new AbortController();
    let stepTwo: Float32Array | undefined;
    const cut = await p.generate({ ...base, seed: 5, stopEarly: stop.signal, onStep: ({ step, latents }) => { if (step === 1) { stepTwo = latents; stop.abort(); } } });
    assert.equal(cut.timesteps.length, 2);
    assert.deepEqual(Array.from(cut.latents.data), Array.from(stepTwo!));
    assert.equal(cut.images.shape[1], 24);
  } finally {
    await p.release();
  }
});

test("pipeline parts: guidance (and rescale), micro-conditioning row order, prompt repeat order", () => {
  const pred = Float32Array.from([1, 2, 3, 4, /* text */ 3, 2, 7, 0]);
  assert.deepEqual(Array.from(applyGuidance(pred, 2)), [5, 2, 11, -4]);
  // rescale 1: each sample takes the text prediction's std; rescale 0 leaves the guided one
  const full = applyGuidance(pred, 2, 1, 2);
  const std = (a: ArrayLike<number>) => { const m = (a[0] + a[1]) / 2; return Math.sqrt(((a[0] - m) ** 2 + (a[1] - m) ** 2)); };
  assert.ok(Math.abs(std(full.subarray(0, 2)) - std([3, 2])) < 1e-6 && Math.abs(std(full.subarray(2)) - std([7, 0])) < 1e-6);
  assert.deepEqual(applyGuidance(pred, 2, 0, 2), applyGuidance(pred, 2));

  const mc = { negativeOriginalSize: [1, 2] as const, negativeTargetSize: [3, 4] as const, cropsCoordsTopLeft: [5, 6] as const };
  // txt2img: cat([neg, pos]).repeat(batch) as diffusers; negative crops default (0, 0)
  assert.deepEqual(Array.from(txt2imgTimeIds(mc, 8, 16, 2, true)), [1, 2, 0, 0, 3, 4, 8, 16, 5, 6, 8, 16, 1, 2, 0, 0, 3, 4, 8, 16, 5, 6, 8, 16]);
  assert.deepEqual(Array.from(txt2imgTimeIds({}, 8, 16, 1, false)), [8, 16, 0, 0, 8, 16]);
  // img2img: [neg x batch, pos x batch]; the negative uses the positive crop
  assert.deepEqual(Array.from(img2imgTimeIds(mc, 8, 16, 2, true)), [1, 2, 5, 6, 3, 4, 1, 2, 5, 6, 3, 4, 8, 16, 5, 6, 8, 16, 8, 16, 5, 6, 8, 16]);
  // num_images_per_prompt: each prompt's rows repeated in place (p0, p0, p1, p1)
  assert.deepEqual(Array.from(repeatRows(Float32Array.from([1, 2, 3, 4]), 2, 2)), [1, 2, 1, 2, 3, 4, 3, 4]);
});

test("low-memory mode (sessions dropped between stages) gives the same images, twice in a row", { skip: NO_FIXTURES }, async () => {
  const dir = tinyModel("tiny-ssd");
  const cases = JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "cases.json"), "utf8")) as Record<string, Case>;
  const ref = openFixture("pipeline", "tiny-ssd", "cases.safetensors").float32("basic.images");
  const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, { lowMemory: true });
  try {
    for (let i = 0; i < 2; i++) {
      const { images } = await pipe.generate(caseOptions(cases.basic));
      assertMaxAbs(images.data, ref, TOL, `low-memory run ${i + 1}`);
    }
  } finally {
    await pipe.release();
  }
});
