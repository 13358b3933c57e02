import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { randomInt } from "node:crypto";
import { StableDiffusionXLPipeline, type CommonOptions, type PipelineOutput } from "../../pipelines/stable-diffusion-xl.js";
import { PipelineInputError } from "../../pipelines/errors.js";
import type { StepInfo } from "../../pipelines/denoise.js";
import { createScheduler } from "../../schedulers/index.js";
import { encodePng } from "../../image/png.js";
import { toRgb8 } from "../../image/image.js";
import { formatInfotext, samplerLabel } from "../../image/infotext.js";
import { UsageError } from "../usage-error.js";

const COMMON_HELP = `  --model M            diffusers folder or Hugging Face repo id in the local cache (default segmind/SSD-1B)
  --prompt TEXT        what to draw (required)
  --negative-prompt T  what to avoid (default none: zero embeddings, as diffusers)
  --steps N            denoising steps (default 25)
  --guidance G         classifier-free guidance scale, off at <= 1 (default 5)
  --seed S             torch CPU generator seed (default random; always reported)
  --scheduler NAME     A1111 name ("Euler", "Euler a", "DPM++ 2M Karras", ...) or diffusers class (default: the model's)
  --num-images N       images for the prompt (default 1)
  --output FILE.png    where to write (several images: FILE-0.png, FILE-1.png, ...; default ssd1b-SEED.png)
  --variant fp16|fp32  which weight files to load (default fp32 when present, else fp16)
  --device cpu|webgpu  onnxruntime execution provider (default cpu)`;

export const generateUsage = `ssd1b generate --prompt TEXT [--model M] [--width W --height H] [options]
  Text to image, equal to diffusers' StableDiffusionXLPipeline. Writes PNGs with AUTOMATIC1111 "parameters".
${COMMON_HELP}
  --width W, --height H  multiples of 8 (default UNet sample_size x VAE scale, 1024 for SSD-1B)`;

export const COMMON_OPTIONS = {
  model: { type: "string", default: "segmind/SSD-1B" },
  prompt: { type: "string" },
  "negative-prompt": { type: "string" },
  steps: { type: "string", default: "25" },
  guidance: { type: "string", default: "5" },
  seed: { type: "string" },
  scheduler: { type: "string" },
  "num-images": { type: "string", default: "1" },
  output: { type: "string" },
  variant: { type: "string" },
  device: { type: "string", default: "cpu" },
} as const;

type Values = Record<string, string | undefined>;

/** A whole number from a flag, with the flag named in the error. */
export function intFlag(values: Values, name: string, min: number): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(v)) throw new UsageError(`--${name} must be a whole number, got "${raw}"`);
  if (v < min) throw new UsageError(`--${name} must be at least ${min}, got ${v}`);
  return v;
}

export function numberFlag(values: Values, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
  return v;
}

/** Everything generate and img2img share, checked before any model is loaded. */
export interface ParsedCommon {
  model: string;
  options: CommonOptions & { seed: number | bigint; numInferenceSteps: number; guidanceScale: number };
  output?: string;
  variant?: "fp16" | "fp32";
  device: "cpu" | "webgpu";
}

export function parseCommon(values: Values): ParsedCommon {
  const prompt = values.prompt;
  if (prompt === undefined) throw new UsageError("--prompt is required");
  const steps = intFlag(values, "steps", 1)!;
  const guidance = numberFlag(values, "guidance")!;
  let seed: number | bigint = randomInt(0, 2 ** 32 - 1);
  if (values.seed !== undefined) {
    if (!/^-?\d+$/.test(values.seed.trim())) throw new UsageError(`--seed must be a whole number, got "${values.seed}"`);
    const big = BigInt(values.seed.trim());
    if (big < -(1n << 63n) || big >= 1n << 64n) throw new UsageError(`--seed must be in [-2^63, 2^64), got ${big}`);
    seed = Number.isSafeInteger(Number(big)) ? Number(big) : big;
  }
  if (values.scheduler !== undefined) {
    try {
      createScheduler(values.scheduler);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const variant = values.variant;
  if (variant !== undefined && variant !== "fp16" && variant !== "fp32") throw new UsageError(`--variant must be fp16 or fp32, got "${variant}"`);
  const device = values.device;
  if (device !== "cpu" && device !== "webgpu") throw new UsageError(`--device must be cpu or webgpu, got "${device}"`);
  return {
    model: values.model!,
    output: values.output,
    variant, device,
    options: {
      prompt, negativePrompt: values["negative-prompt"], numInferenceSteps: steps, guidanceScale: guidance, seed,
      scheduler: values.scheduler, numImagesPerPrompt: intFlag(values, "num-images", 1),
    },
  };
}

/** "step 3/25 |######      | 1.52 it/s" on stderr: redrawn in place on a terminal, one line per step otherwise. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): (info: StepInfo) => void {
  const created = performance.now();
  let firstDone = created;
  return ({ step, totalSteps }) => {
    const now = performance.now();
    if (step === 0) firstDone = now;
    const done = step + 1;
    // the first step also compiles the UNet session: the rate comes from the steps after it when there are some
    const secs = done > 1 ? (now - firstDone) / 1000 / (done - 1) : (now - created) / 1000;
    const rate = secs >= 1 ? `${secs.toFixed(2)} s/it` : `${(1 / Math.max(secs, 1e-6)).toFixed(2)} it/s`;
    const width = 24, fill = Math.round((done / totalSteps) * width);
    const line = `step ${done}/${totalSteps} |${"#".repeat(fill)}${" ".repeat(width - fill)}| ${rate}`;
    if (stream.isTTY) stream.write(`\r${line}${done === totalSteps ? "\n" : ""}`);
    else stream.write(line + "\n");
  };
}

/** FILE.png for one image; FILE-0.png, FILE-1.png, ... for several. */
export function outputNames(output: string, count: number): string[] {
  if (count === 1) return [output];
  const base = output.replace(/\.png$/i, "");
  return Array.from({ length: count }, (_, i) => `${base}-${i}.png`);
}

/** Loads the model, runs `call` with a progress bar, writes the PNGs with their parameters. */
export async function runAndSave(
  parsed: ParsedCommon,
  call: (pipe: StableDiffusionXLPipeline, onStep: (s: StepInfo) => void, signal: AbortSignal) => Promise<PipelineOutput>,
  extraInfo: { denoisingStrength?: number } = {},
): Promise<string[]> {
  const log = (m: string) => process.stderr.write(m + "\n");
  const { options } = parsed;
  log(`seed: ${options.seed}`);
  const t0 = performance.now();
  const pipe = await StableDiffusionXLPipeline.fromPretrained(parsed.model, {
    variant: parsed.variant, session: { device: parsed.device }, onWarning: (m) => log(`warning: ${m}`),
  });
  const ac = new AbortController();
  const onSigint = () => { log("interrupted: stopping after this step"); ac.abort(); };
  process.once("SIGINT", onSigint);
  let out: PipelineOutput;
  try {
    log(`loaded ${pipe.model.dir} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    out = await call(pipe, progressBar(), ac.signal);
  } catch (e) {
    if (e instanceof PipelineInputError) throw new UsageError(e.message);
    throw e;
  } finally {
    process.off("SIGINT", onSigint);
    await pipe.release();
  }
  const [n, height, width] = out.images.shape;
  const output = parsed.output ?? `ssd1b-${options.seed}.png`;
  const names = outputNames(output, n);
  const parameters = formatInfotext({
    prompt: typeof options.prompt === "string" ? options.prompt : options.prompt.join(" | "),
    negativePrompt: typeof options.negativePrompt === "string" ? options.negativePrompt : undefined,
    steps: options.numInferenceSteps, sampler: samplerLabel(out.scheduler.className, out.scheduler.config as Record<string, unknown>),
    cfgScale: options.guidanceScale, seed: options.seed, width, height, model: pipe.model.name, ...extraInfo,
  });
  names.forEach((name, i) => {
    mkdirSync(dirname(name), { recursive: true });
    writeFileSync(name, encodePng(toRgb8(out.images, i), { parameters }));
    log(`wrote ${name} (${width}x${height})`);
  });
  log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return names;
}

export async function generateCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { ...COMMON_OPTIONS, width: { type: "string" }, height: { type: "string" } },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (put the prompt in --prompt "...")`);
  const parsed = parseCommon(values);
  const size = (name: string) => {
    const v = intFlag(values, name, 8);
    if (v !== undefined && v % 8 !== 0) throw new UsageError(`--${name} ${v} is not a multiple of 8 (try ${Math.round(v / 8) * 8})`);
    return v;
  };
  const width = size("width"), height = size("height");
  await runAndSave(parsed, (pipe, onStep, signal) => pipe.generate({ ...parsed.options, width, height, onStep, signal }));
}
