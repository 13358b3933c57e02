/**
 * ComfyUI's custom sampling graphs compile to the job of the KSampler / KSamplerAdvanced graph they
 * amount to: the scheduler nodes at their defaults are BasicScheduler's schedulers, SplitSigmas'
 * halves are KSamplerAdvanced's end_at_step and start_at_step (a base and its refiner, img2img from a
 * step), DisableNoise is add_noise disable; what has no counterpart is refused naming node and input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { compileWorkflow, type WorkflowContext } from "../src/server/comfyui/workflow.js";
import { DEFAULT_LIMITS } from "../src/server/validation.js";
import { createScheduler } from "../src/schedulers/index.js";
import { NO_FIXTURES, fixture } from "./helpers/fixtures.js";
import { readFileSync } from "node:fs";

const ctx: WorkflowContext = {
  limits: DEFAULT_LIMITS,
  model: { name: "tiny-ssd", source: "/models/tiny-ssd", textEncoderLayers: [12, 32], models: [{ name: "tiny-ssd", source: "/models/tiny-ssd" }, { name: "tiny-refiner", source: "/models/tiny-refiner" }] },
  inputImage: (name) => (name === "photo.png" ? { png: "x", width: 32, height: 32 } : undefined),
  upload: () => undefined, uploadBytes: () => undefined,
};
const spec = (g: Record<string, any>) => compileWorkflow(g, ctx).spec;

/** The default graph's loader, prompts, latent and decode around sampler node 3. */
function around(sampler: Record<string, any>, extra: Record<string, any> = {}): Record<string, any> {
  return {
    3: sampler,
    4: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-ssd" } },
    5: { class_type: "EmptyLatentImage", inputs: { width: 32, height: 32, batch_size: 1 } },
    6: { class_type: "CLIPTextEncode", inputs: { text: "a lighthouse", clip: ["4", 1] } },
    7: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["4", 1] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["3", 0], vae: ["4", 2] } },
    9: { class_type: "SaveImage", inputs: { filename_prefix: "ComfyUI", images: ["8", 0] } },
    ...extra,
  };
}
const ksampler = (scheduler: string, latent = ["5", 0]) => ({ class_type: "KSampler", inputs: { seed: 7, steps: 6, cfg: 5, sampler_name: "euler", scheduler, denoise: 1, model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: latent } });
/** SamplerCustomAdvanced (RandomNoise 7, CFGGuider cfg 5, euler) on the SIGMAS of node 33. */
const custom = (sigmas: Record<string, any>, o: { sigmasLink?: [string, number]; noise?: Record<string, any>; latent?: [string, number] } = {}) => ({
  3: { class_type: "SamplerCustomAdvanced", inputs: { noise: ["30", 0], guider: ["31", 0], sampler: ["32", 0], sigmas: o.sigmasLink ?? ["33", 0], latent_image: o.latent ?? ["5", 0] } },
  30: o.noise ?? { class_type: "RandomNoise", inputs: { noise_seed: 7 } },
  31: { class_type: "CFGGuider", inputs: { model: ["4", 0], positive: ["6", 0], negative: ["7", 0], cfg: 5 } },
  32: { class_type: "KSamplerSelect", inputs: { sampler_name: "euler" } },
  33: sigmas,
});
const customGraph = (sigmas: Record<string, any>, o: Parameters<typeof custom>[1] = {}, extra: Record<string, any> = {}) => {
  const parts = custom(sigmas, o);
  return around(parts[3], { ...parts, ...extra, 3: parts[3] });
};

test("KarrasScheduler, ExponentialScheduler and BetaSamplingScheduler at their defaults are BasicScheduler's karras, exponential and beta; SDTurboScheduler's step sgm_uniform's", { skip: NO_FIXTURES }, () => {
  const karras = { class_type: "KarrasScheduler", inputs: { steps: 6, sigma_max: 14.614642, sigma_min: 0.0291675, rho: 7 } };
  assert.deepEqual(spec(customGraph(karras)), spec(around(ksampler("karras"))));
  assert.equal(spec(customGraph(karras)).scheduler, "Euler Karras");
  const exponential = { class_type: "ExponentialScheduler", inputs: { steps: 6, sigma_max: 14.614642, sigma_min: 0.0291675 } };
  assert.deepEqual(spec(customGraph(exponential)), spec(around(ksampler("exponential"))));
  const beta = { class_type: "BetaSamplingScheduler", inputs: { model: ["4", 0], steps: 6, alpha: 0.6, beta: 0.6 } };
  assert.deepEqual(spec(customGraph(beta)), spec(around(ksampler("beta"))));
  // other parameters have no diffusers counterpart: refused naming the input
  for (const [node, input, value] of [[karras, "rho", 3], [karras, "sigma_max", 10], [exponential, "sigma_min", 0.1], [beta, "alpha", 0.5]] as const) {
    const changed = { ...node, inputs: { ...node.inputs, [input]: value } };
    assert.throws(() => spec(customGraph(changed)), (e: any) => e.node?.id === "33" && e.input === input && new RegExp(`${input} ${value} is not run here: ${node.class_type} runs at its default`).test(e.message));
  }
  // SDTurboScheduler's one step (SDXL Turbo's example) is sgm_uniform's: timestep 999
  const turbo = { class_type: "SDTurboScheduler", inputs: { model: ["4", 0], steps: 1, denoise: 1 } };
  const oneStep = around({ ...ksampler("sgm_uniform"), inputs: { ...ksampler("sgm_uniform").inputs, steps: 1 } });
  assert.deepEqual(spec(customGraph(turbo)), spec(oneStep));
  const scheduler = createScheduler(spec(customGraph(turbo)).scheduler!, JSON.parse(readFileSync(fixture("pipeline", "tiny-ssd", "scheduler", "scheduler_config.json"), "utf8")));
  scheduler.setTimesteps(1);
  assert.deepEqual(Array.from(scheduler.timesteps), [999]);
  assert.throws(() => spec(customGraph({ ...turbo, inputs: { ...turbo.inputs, steps: 2 } })), (e: any) => e.node?.id === "33" && e.input === "steps" && /999, 899/.test(e.message));
  assert.throws(() => spec(customGraph({ ...turbo, inputs: { ...turbo.inputs, denoise: 0.5 } })), (e: any) => e.node?.id === "33" && e.input === "denoise");
  // BetaSamplingScheduler's model is the sampler's
  assert.throws(() => spec(customGraph({ ...beta, inputs: { ...beta.inputs, model: ["99", 0] } })), (e: any) => e.node?.id === "33" && e.input === "model");
});

test("SplitSigmas: low_sigmas of a VAEEncode is img2img from that step (KSamplerAdvanced start_at_step); the noise disabled needs a split", () => {
  const image = { 10: { class_type: "LoadImage", inputs: { image: "photo.png" } }, 11: { class_type: "VAEEncode", inputs: { pixels: ["10", 0], vae: ["4", 2] } } };
  const split = { 33: { class_type: "SplitSigmas", inputs: { sigmas: ["34", 0], step: 2 } }, 34: { class_type: "BasicScheduler", inputs: { model: ["4", 0], scheduler: "normal", steps: 6, denoise: 1 } } };
  const g = customGraph(split[33], { sigmasLink: ["33", 1], latent: ["11", 0] }, { ...image, 34: split[34] });
  const advanced = around({ class_type: "KSamplerAdvanced", inputs: { add_noise: "enable", noise_seed: 7, steps: 6, cfg: 5, sampler_name: "euler", scheduler: "normal", start_at_step: 2, end_at_step: 10000, return_with_leftover_noise: "disable", model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["11", 0] } }, image);
  const want = spec(advanced);
  assert.deepEqual(spec(g), want);
  assert.deepEqual([want.steps, want.strength], [6, 4 / 6]);
  // SamplerCustom reads the same
  const samplerCustom = structuredClone(g);
  samplerCustom[3] = { class_type: "SamplerCustom", inputs: { model: ["4", 0], add_noise: true, noise_seed: 7, cfg: 5, positive: ["6", 0], negative: ["7", 0], sampler: ["32", 0], sigmas: ["33", 1], latent_image: ["11", 0] } };
  assert.deepEqual(spec(samplerCustom), want);
  // low_sigmas from an empty latent needs an image; high_sigmas alone stops early; a split of a partial schedule; no noise without a split
  assert.throws(() => spec(customGraph(split[33], { sigmasLink: ["33", 1] }, { 34: split[34] })), (e: any) => e.node?.id === "3" && e.input === "start_at_step");
  assert.throws(() => spec(customGraph(split[33], { sigmasLink: ["33", 0] }, { 34: split[34] })), (e: any) => e.node?.id === "3" && e.input === "end_at_step" && /hands over to a refiner/.test(e.message));
  assert.throws(() => spec(customGraph(split[33], { sigmasLink: ["33", 1], latent: ["11", 0] }, { ...image, 34: { ...split[34], inputs: { ...split[34].inputs, denoise: 0.5 } } })), (e: any) => e.node?.id === "33" && e.input === "sigmas");
  const noNoise = customGraph({ class_type: "BasicScheduler", inputs: { model: ["4", 0], scheduler: "normal", steps: 6, denoise: 1 } }, { noise: { class_type: "DisableNoise", inputs: {} } });
  assert.throws(() => spec(noNoise), (e: any) => e.node?.id === "3" && e.input === "noise" && /the noise disabled is not run here/.test(e.message));
  assert.throws(() => spec({ ...samplerCustom, 3: { ...samplerCustom[3], inputs: { ...samplerCustom[3].inputs, add_noise: false, sigmas: ["34", 0] } } }), (e: any) => e.node?.id === "3" && e.input === "add_noise");
});

test("SplitSigmas' high_sigmas on the base and low_sigmas with DisableNoise on a second checkpoint are the base + refiner graph", () => {
  const refinerParts = {
    12: { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-refiner" } },
    15: { class_type: "CLIPTextEncode", inputs: { text: "a lighthouse", clip: ["12", 1] } },
    16: { class_type: "CLIPTextEncode", inputs: { text: "fog", clip: ["12", 1] } },
    34: { class_type: "BasicScheduler", inputs: { model: ["4", 0], scheduler: "karras", steps: 6, denoise: 1 } },
    33: { class_type: "SplitSigmas", inputs: { sigmas: ["34", 0], step: 4 } },
  };
  const g = customGraph(refinerParts[33], { sigmasLink: ["33", 0] }, {
    ...refinerParts,
    // the refiner's sampler on the low half, continuing the base's latents; the output shows it
    40: { class_type: "SamplerCustomAdvanced", inputs: { noise: ["41", 0], guider: ["42", 0], sampler: ["32", 0], sigmas: ["33", 1], latent_image: ["3", 0] } },
    41: { class_type: "DisableNoise", inputs: {} },
    42: { class_type: "CFGGuider", inputs: { model: ["12", 0], positive: ["15", 0], negative: ["16", 0], cfg: 5 } },
    8: { class_type: "VAEDecode", inputs: { samples: ["40", 0], vae: ["12", 2] } },
  });
  const sampler = { cfg: 5, sampler_name: "euler", scheduler: "karras", steps: 6 };
  const advanced = around({ class_type: "KSamplerAdvanced", inputs: { ...sampler, add_noise: "enable", noise_seed: 7, start_at_step: 0, end_at_step: 4, return_with_leftover_noise: "enable", model: ["4", 0], positive: ["6", 0], negative: ["7", 0], latent_image: ["5", 0] } }, {
    12: refinerParts[12], 15: refinerParts[15], 16: refinerParts[16],
    40: { class_type: "KSamplerAdvanced", inputs: { ...sampler, add_noise: "disable", noise_seed: 0, start_at_step: 4, end_at_step: 10000, return_with_leftover_noise: "disable", model: ["12", 0], positive: ["15", 0], negative: ["16", 0], latent_image: ["3", 0] } },
    8: { class_type: "VAEDecode", inputs: { samples: ["40", 0], vae: ["12", 2] } },
  });
  const want = spec(advanced);
  assert.deepEqual(want.refiner, { model: "tiny-refiner", switchStep: 4 });
  assert.deepEqual(spec(g), want);
  // the base's denoised_output is its prediction at the split, not its latents: not what the refiner continues
  const denoised = structuredClone(g);
  denoised[40].inputs.latent_image = ["3", 1];
  assert.throws(() => spec(denoised), (e: any) => e.node?.id === "40" && e.input === "latent_image");
});

test("a FreeU on the guider's model with BasicScheduler on the checkpoint's: the job's FreeU; another checkpoint's scheduler is refused", () => {
  const g = customGraph({ class_type: "BasicScheduler", inputs: { model: ["4", 0], scheduler: "karras", steps: 6, denoise: 1 } }, {}, {
    40: { class_type: "FreeU_V2", inputs: { model: ["4", 0], b1: 1.3, b2: 1.4, s1: 0.9, s2: 0.2 } },
  });
  g[31].inputs.model = ["40", 0];
  const s = spec(g);
  assert.deepEqual(s.freeu, { b1: 1.3, b2: 1.4, s1: 0.9, s2: 0.2, variant: "comfyui-v2" });
  assert.equal(s.steps, 6);
  // the scheduler on FreeU's MODEL too, as many graphs wire it
  g[33].inputs.model = ["40", 0];
  assert.deepEqual(spec(g).freeu, s.freeu);
  g[41] = { class_type: "CheckpointLoaderSimple", inputs: { ckpt_name: "tiny-refiner" } };
  g[33].inputs.model = ["41", 0];
  assert.throws(() => spec(g), (e: any) => e.node.id === "33" && /BasicScheduler must take the sampler's model \(or its checkpoint's\) here/.test(e.message));
});
