/**
 * The pipeline with ControlNets against diffusers 0.27.2 StableDiffusionXLControlNetPipeline (and
 * MultiControlNetModel): ../shared/fixtures/controlnet/tiny-ssd, every case, latents after every step
 * and the images within the README's tolerance (max|Δ| ≤ 2e-3).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, assertMaxAbs, fixture, openFixture } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { synthComponentFolder } from "./helpers/controlnet-folder.js";
import { StableDiffusionXLPipeline, type GenerateOptions } from "../src/pipelines/sdxl/index.js";
import type { ControlNetRunner } from "../src/pipelines/controlnet-runner.js";
import { createScheduler, parsePythonJson } from "../src/schedulers/index.js";
import { rgbToTensor, type FloatTensor } from "../src/image/image.js";
import type { RgbImage } from "../src/image/png.js";
import { diffusersResize } from "../src/image/resize-modes.js";

const TOL = 2e-3;
const CN = (...p: string[]) => fixture("controlnet", "tiny-ssd", ...p);
const tmp = mkdtempSync(join(tmpdir(), "controlnet-pipe-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cases = NO_FIXTURES ? {} : parsePythonJson(readFileSync(CN("cases.json"), "utf8")) as Record<string, any>;
let pipe: StableDiffusionXLPipeline | undefined;
const nets = new Map<string, ControlNetRunner>();
after(async () => { for (const n of nets.values()) await n.release(); await pipe?.release(); });

async function open(): Promise<StableDiffusionXLPipeline> {
  if (pipe) return pipe;
  const dir = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), dir, { recursive: true });
  synthModel(dir, "fp32");
  pipe = await StableDiffusionXLPipeline.fromPretrained(dir);
  return pipe;
}

async function net(config: string): Promise<ControlNetRunner> {
  if (!nets.has(config)) {
    const dir = synthComponentFolder(join(tmp, config.replace(/\W/g, "_")), fixture(config));
    nets.set(config, await (await open()).loadControlNet(dir));
  }
  return nets.get(config)!;
}

/** The case's arguments as generate options with its ControlNet units. */
export async function controlNetCaseOptions(name: string, c: any): Promise<GenerateOptions> {
  const ref = openFixture("controlnet", "tiny-ssd", "cases.safetensors");
  const image = (key: string): FloatTensor => ({ data: ref.float32(`${name}.${key}`), shape: [...ref.get(`${name}.${key}`).shape] });
  const configs: string[] = c.controlnets;
  const list = <T>(v: T | T[], k: number): T => (Array.isArray(v) ? v[k] : v);
  const controlnets = await Promise.all(configs.map(async (config, k) => ({
    controlnet: await net(config), image: image(configs.length > 1 ? `control_image_${k}` : "control_image"),
    scale: list(c.controlnet_conditioning_scale, k), start: list(c.control_guidance_start, k), end: list(c.control_guidance_end, k),
  })));
  return {
    prompt: c.prompt, negativePrompt: c.negative_prompt ?? undefined, numInferenceSteps: c.num_inference_steps, guidanceScale: c.guidance_scale,
    seed: c.seed, numImagesPerPrompt: c.num_images_per_prompt, scheduler: createScheduler(c.scheduler.class, c.scheduler.config),
    controlnets, guessMode: c.guess_mode,
  };
}

for (const [name, c] of Object.entries(cases)) {
  test(`controlnet tiny-ssd/${name}: latents after every step and images match diffusers`, { skip: NO_FIXTURES }, async (t) => {
    const p = await open();
    const ref = openFixture("controlnet", "tiny-ssd", "cases.safetensors");
    const steps: Float32Array[] = [];
    const out = await p.generate({ ...await controlNetCaseOptions(name, c), onStep: ({ latents }) => { steps.push(latents); } });
    assert.deepEqual(out.timesteps, c.timesteps);
    assert.deepEqual(out.images.shape, [1, c.height, c.width, 3], "size from the control image");
    for (let i = 0; i < c.n_steps_recorded; i++) {
      const d = assertMaxAbs(steps[i], ref.float32(`${name}.latents_after_step${i}`), TOL, `latents after step ${i}`);
      t.diagnostic(`step ${i}: max|d| ${d.maxAbs.toExponential(2)}`);
    }
    const d = assertMaxAbs(out.images.data, ref.float32(`${name}.images`), TOL, "images");
    t.diagnostic(`images: max|d| ${d.maxAbs.toExponential(2)}`);
  });
}

test("controlnet: bad windows and scales, a control image that is not one RGB image, a net that does not fit: clear errors", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const opts = await controlNetCaseOptions("single", cases.single);
  const unit = opts.controlnets![0];
  await assert.rejects(p.generate({ ...opts, controlnets: [{ ...unit, start: 0.8, end: 0.2 }] }), /guidance window must satisfy 0 <= start < end <= 1/);
  await assert.rejects(p.generate({ ...opts, controlnets: [{ ...unit, scale: NaN }] }), /conditioning scale must be a number/);
  await assert.rejects(p.generate({ ...opts, controlnets: [{ ...unit, image: { data: new Float32Array(32 * 32), shape: [1, 1, 32, 32] } }] }), /control image 1 must be one RGB image/);
  // a net made for another text encoder width
  const bad = JSON.parse(readFileSync(CN("controlnet", "config.json"), "utf8"));
  bad.cross_attention_dim = 32;
  const badDir = join(tmp, "bad-net");
  mkdirSync(badDir, { recursive: true });
  writeFileSync(join(badDir, "config.json"), JSON.stringify(bad));
  synthModel(badDir, "fp32");
  await assert.rejects(p.loadControlNet(badDir), /cross_attention_dim is 32, the UNet's is 64/);
});

test("controlnet on img2img and inpaint: the same hook; at scale 0 it changes nothing, at scale 1 it does", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const opts = await controlNetCaseOptions("single", cases.single);
  const unit = opts.controlnets![0];
  const init = { data: new Float32Array(3 * 32 * 32).map((_, i) => (i % 97) / 97), shape: [1, 3, 32, 32] };
  const mask = { data: new Float32Array(32 * 32).map((_, i) => (i % 32 > 12 ? 1 : 0)), shape: [32, 32] };
  const common = { prompt: opts.prompt, negativePrompt: opts.negativePrompt, numInferenceSteps: 4, seed: 3, outputType: "latent" as const };
  for (const call of [
    (extra: object) => p.img2img({ ...common, image: init, strength: 0.75, ...extra }),
    (extra: object) => p.inpaint({ ...common, image: init, maskImage: mask, strength: 1, ...extra }),
  ]) {
    const plain = (await call({})).latents.data;
    const zero = (await call({ controlnets: [{ ...unit, scale: 0 }] })).latents.data;
    const one = (await call({ controlnets: [unit] })).latents.data;
    assertMaxAbs(zero, plain, 1e-5, "scale 0 = no ControlNet");
    assert.ok(one.some((v, i) => Math.abs(v - plain[i]) > 1e-3), "scale 1 changes the latents");
  }
});

test("controlnet: a control image of another size is resized as diffusers resizes a PIL image (PIL Lanczos)", { skip: NO_FIXTURES }, async () => {
  const p = await open();
  const opts = await controlNetCaseOptions("single", cases.single);
  const big: RgbImage = { width: 48, height: 40, data: new Uint8Array(48 * 40 * 3).map((_, i) => (i * 37) % 251) };
  const small = rgbToTensor(diffusersResize(big, 32, 32, "default") as RgbImage);
  const run = (image: RgbImage | FloatTensor) => p.generate({ ...opts, numInferenceSteps: 2, width: 32, height: 32, outputType: "latent", controlnets: [{ ...opts.controlnets![0], image }] });
  assert.deepEqual(Array.from((await run(big)).latents.data), Array.from((await run(small)).latents.data));
});
