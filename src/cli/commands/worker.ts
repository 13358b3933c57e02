import { parseArgs } from "node:util";
import { StableDiffusionXLPipeline } from "../../pipelines/sdxl/index.js";
import { PipelineInputError } from "../../pipelines/errors.js";
import { DEFAULT_LOCK_MS, DEFAULT_STALLED_MS, startRedisWorker } from "../../server/redis-worker.js";
import { probeRedis } from "../../server/redis-queue.js";
import { UsageError } from "../usage-error.js";
import { parseDevice, resolveDevice, type DeviceChoice } from "../../runtime/device.js";
import { intFlag, MODEL_LOAD_OPTIONS, parseModelLoad } from "./generate.js";
import { LORA_DIR_OPTIONS, parseLoraDir, parseVariant, untilSignal } from "./serve.js";
import { FAST_HELP, FAST_OPTIONS, parseFast, resolveFastLora, withFastTaesd } from "../fast-flags.js";
import { CONTROLNET_DIR_HELP, CONTROLNET_DIR_OPTIONS, parseControlNetDir } from "../controlnet-dir-flags.js";

export const workerUsage = `ssd1b worker --queue redis://HOST:PORT [--model M] [options]
  Runs the jobs that \`ssd1b serve --queue\` puts in Redis (BullMQ), one at a time. Start several for
  more throughput; a job whose worker dies is taken up by another once its lock expires.
  --queue URL          redis://[:password@]host:port[/db][?name=queue] (required; the same as serve's)
  --model M            diffusers folder or Hugging Face repo id in the local cache (default segmind/SSD-1B)
  --variant fp16|fp32  which weight files to load (default fp32 when present, else fp16)
  --lora FILE[:W], --vae DIR|FILE, --config DIR, --vae-precision P, --unet-precision P, --unet-weights W,
                       --text-encoder-weights W, --vae-tiling, --vae-tile-size PX,
                       --prompt-syntax diffusers|a1111|comfyui, --embedding FILE: as for generate
  --embeddings-dir DIR every SDXL textual inversion under DIR, in every prompt, as A1111's embeddings folder
                       (the name in A1111 prompts, embedding:NAME in ComfyUI's; GET /sdapi/v1/embeddings lists them)
  --taesd DIR|FILE     a TAESD (madebyollin/taesdxl): progress previews become its full-size decode (made
                       in the background) instead of the latent-to-RGB projection
  --lora-dir DIR       where the LoRA names of jobs (<lora:NAME:W>, "loras") are looked up: the same
                       files as serve's --lora-dir (sub-folders too); jobs naming LoRAs fail without it
  --lora-cache N       LoRA sets kept compiled between jobs (default 1; each holds its own UNet weights)
${CONTROLNET_DIR_HELP}
${FAST_HELP}
                       (the front end takes --fast too; fast jobs fail on a worker without it)
  --device cpu|webgpu|auto  onnxruntime execution provider (default cpu; auto: webgpu on a hardware
                       GPU with a Vulkan driver, else cpu)
  --lock-ms N          job lock time (default 300000): must outlast the longest single model call (an
                       SSD-1B step at 1024x1024 blocks 44 s on 2 cores); a machine that vanishes
                       without closing its Redis connections has its job retaken after it
  --stalled-ms N       how often to look for jobs of dead workers (default 5000); a killed worker's job
                       is retaken within about this plus 4 s (the front end drops its lock)`;

export async function workerCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      queue: { type: "string" },
      model: { type: "string", default: "segmind/SSD-1B" },
      variant: { type: "string" },
      ...MODEL_LOAD_OPTIONS,
      ...LORA_DIR_OPTIONS,
      ...CONTROLNET_DIR_OPTIONS,
      ...FAST_OPTIONS,
      device: { type: "string", default: "cpu" },
      "lock-ms": { type: "string", default: String(DEFAULT_LOCK_MS) },
      "stalled-ms": { type: "string", default: String(DEFAULT_STALLED_MS) },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!values.queue) throw new UsageError("--queue redis://HOST:PORT is required");
  if (!/^rediss?:\/\//.test(values.queue)) throw new UsageError(`--queue must be a redis:// URL, got "${values.queue}"`);
  const variant = parseVariant(values.variant);
  const fast = parseFast(values);
  const deviceChoice = parseDevice(values.device);
  if (!deviceChoice) throw new UsageError(`--device must be cpu, webgpu or auto, got "${values.device}"`);
  const lockDurationMs = intFlag(values, "lock-ms", 500)!;
  const stalledIntervalMs = intFlag(values, "stalled-ms", 100)!;
  const log = (m: string) => process.stderr.write(`${new Date().toISOString()} worker ${process.pid}: ${m}\n`);
  const { loras, loraCache } = parseLoraDir(values);
  const { controlnets, controlnetCache } = parseControlNetDir(values);
  await probeRedis(values.queue);
  let pipe: StableDiffusionXLPipeline;
  const load = withFastTaesd(parseModelLoad(values), fast);
  try {
    const device = await resolveDevice(deviceChoice, log);
    pipe = await StableDiffusionXLPipeline.fromPretrained(values.model!, { ...load, variant, session: { device }, onWarning: (m) => log(`warning: ${m}`) });
  } catch (e) {
    if (e instanceof PipelineInputError) throw new UsageError(e.message);
    throw e;
  }
  let running;
  try {
    const fastLora = fast ? await resolveFastLora(values, pipe, load.hub, log) : undefined;
    running = await startRedisWorker({ url: values.queue, pipe, lockDurationMs, stalledIntervalMs, log, loras, loraCache, fastLora, controlnets, controlnetCache });
  } catch (e) {
    await pipe.release();
    throw e;
  }
  log(`ready: ${pipe.model.name} on ${values.queue}${loras ? `, LoRAs from ${loras.dir}` : ""}${controlnets ? `, ControlNets from ${controlnets.dir}` : ""}${fast ? ", fast preset" : ""}`);
  const signal = await untilSignal();
  log(`${signal}: finishing the current job`);
  await running.close();
  await pipe.release();
}
