/**
 * One SSD-1B pipeline benchmark in its own process: text-to-image with guidance 5 on a full-size synth
 * fp16 model, timed by stage. Prints one JSON line.
 * Usage: node pipeline-worker.js <model-dir> <size> <steps> [<taesd-dir> | ""] [cpu|webgpu] [float32|float16] [warm]
 * warm: the pipeline stays loaded and a 1-step image at the same size creates every session first.
 * With a TAESD folder it runs what the fast preset runs (--fast): LCM scheduler, guidance 1 (no CFG
 * batch), TAESD decoding. Its LCM-LoRA is left out: a LoRA is folded into the weights when the UNet
 * session is created and does not change the time of a step.
 * SSD1B_BENCH_WEIGHTS=q8: the UNet's and text encoders' Linear layers in 8 bits (unetWeights and
 * textEncoderWeights "q8"); SSD1B_BENCH_KEEP_LOADED=1: every session stays loaded, as the server keeps them.
 */
import { performance } from "node:perf_hooks";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { StableDiffusionXLPipeline } from "../src/pipelines/index.js";
import type { ExecutionDevice } from "../src/runtime/session.js";

const [dir, sizeArg, stepsArg, taesdArg, deviceArg, precisionArg, warmArg] = process.argv.slice(2);
const taesd = taesdArg || undefined;
const fast = taesd !== undefined;
const device = (deviceArg || "cpu") as ExecutionDevice;
const unetPrecision = precisionArg === "float16" ? "float16" : "float32";
const warm = warmArg === "warm";
// The bench's full-size folders are fp16; the tiny fixture pipeline has fp32 files.
const variant = existsSync(join(dir, "unet", "diffusion_pytorch_model.fp16.safetensors")) ? "fp16" : "fp32";
const q8 = process.env.SSD1B_BENCH_WEIGHTS === "q8";
const weights = q8 ? { unetWeights: "q8", textEncoderWeights: "q8" } as const : {};
const size = Number(sizeArg), steps = Number(stepsArg);
const prompt = "An astronaut riding a green horse", negativePrompt = "ugly, blurry, poor quality";

let t = performance.now();
const pipe = await StableDiffusionXLPipeline.fromPretrained(dir, {
  variant, session: { device }, unetPrecision, ...weights, lowMemory: !warm && !process.env.SSD1B_BENCH_KEEP_LOADED, ...(fast ? { taesd } : {}),
});
const loadSeconds = (performance.now() - t) / 1000;

// Warm text encoding on its own (generate repeats it; it is small next to the UNet).
await pipe.encodePrompt({ prompt, negativePrompt });
t = performance.now();
await pipe.encodePrompt({ prompt, negativePrompt });
const textEncodeSeconds = (performance.now() - t) / 1000;

const generate = { prompt, negativePrompt, guidanceScale: fast ? 1 : 5, seed: 42, ...(fast ? { scheduler: "LCM", fastDecode: true } : {}), width: size, height: size };
if (warm) await pipe.generate({ ...generate, numInferenceSteps: 1 });
const marks: number[] = [];
const start = performance.now();
await pipe.generate({ ...generate, numInferenceSteps: steps, onStep: () => { marks.push(performance.now()); } });
const end = performance.now();
const stepSeconds = marks.slice(1).map((m, i) => (m - marks[i]) / 1000);
const perStep = stepSeconds.length ? stepSeconds.reduce((a, b) => a + b, 0) / stepSeconds.length : NaN;
console.log(JSON.stringify({
  size, steps, fast, device, unetPrecision, warm, loadSeconds, textEncodeSeconds,
  // Before the first step: prompt encoding, latents, UNet session creation and the first step.
  firstStepSeconds: (marks[0] - start) / 1000,
  perStepSeconds: perStep,
  // After the last step: VAE session creation and decode.
  decodeSeconds: (end - marks[marks.length - 1]) / 1000,
  totalSeconds: (end - start) / 1000,
  peakRss: process.resourceUsage().maxRSS * 1024,
}));
await pipe.release();
