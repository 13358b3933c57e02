/**
 * One training run from its settings: every input checked first (from configs and file headers,
 * before any weight is read), then the encoders, the training graph (built and compiled once), the
 * optimizer and the loop; the result saved in the diffusers layout. Shared by `ssd1b train lora|dreambooth-lora|finetune` and `ssd1b distill`.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as ort from "onnxruntime-node";
import type { ComponentWeights, Variant } from "../loaders/component.js";
import { readConfig } from "../loaders/component.js";
import { expectedParameters } from "../models/components.js";
import { compileTrainingGraph } from "./graph/train-session.js";
import { DDPMScheduler } from "../schedulers/index.js";
import { CLIPTokenizer } from "../tokenizer/index.js";
import { scanImageFolder, type DatasetItem } from "./data/dataset.js";
import { LatentEncoder, TextEmbedder } from "./data/encoders.js";
import { DiskCache } from "./data/disk-cache.js";
import { BatchSource } from "./batches.js";
import { buildTrainGraph, type DistillWeights, type TrainMode } from "./graph/train-graph.js";
import { selectLoraWeights, TEXT_LORA_TARGETS } from "./graph/lora-modules.js";
import { kohyaTensors, peftTensors, saveLora } from "./lora-save.js";
import { openTrainingModel, type TrainingModel } from "./model.js";
import { ensureLocal, type HubOptions } from "../hub/index.js";
import { AdamW } from "./optim/adamw.js";
import { SGD } from "./optim/sgd.js";
import { EMA } from "./optim/ema.js";
import type { Optimizer } from "./optim/optimizer.js";
import type { ScheduleName } from "./optim/schedule.js";
import { TrainingRng } from "./rng.js";
import { resolveResume } from "./checkpoint.js";
import { trainLoop } from "./trainer.js";
import { copyOtherComponents, saveUNet } from "./save-model.js";
import { validationImages } from "./validation.js";
import { ensureClassImages } from "./class-images.js";
import { planStudent, resolveStudentConfig, studentSource } from "./distill/student.js";

export type TrainKind = "lora" | "dreambooth-lora" | "finetune" | "distill";

export class TrainingSetupError extends Error {}

export interface TrainConfig {
  kind: TrainKind;
  /** How a Hub repo id given as the model is downloaded (offline, token, progress). */
  hub?: HubOptions;
  /** Base model (the teacher when distilling). */
  model: string;
  variant?: Variant;
  data: string;
  output: string;
  captionColumn?: string;
  // DreamBooth
  instancePrompt?: string;
  classPrompt?: string;
  classData?: string;
  numClassImages: number;
  priorLossWeight: number;
  // LoRA
  rank: number;
  alpha: number;
  targets: string[];
  trainTextEncoder: boolean;
  kohya: boolean;
  // distillation
  student?: string;
  distillWeights: DistillWeights;
  // optimization
  lr: number;
  steps?: number;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  optimizer: "adamw" | "sgd";
  adamBetas: [number, number];
  adamEps: number;
  weightDecay: number;
  momentum: number;
  schedule: ScheduleName;
  warmupSteps: number;
  maxGradNorm: number;
  useEma: boolean;
  emaDecay: number;
  // data
  resolution: number;
  centerCrop: boolean;
  randomFlip: boolean;
  captionDropout: number;
  noiseOffset: number;
  snrGamma?: number;
  predictionType?: "epsilon" | "v_prediction";
  cacheLatents: boolean;
  /** Keep text embeddings (and cached latents) on disk here, for later runs. */
  cacheDir?: string;
  // bookkeeping
  seed: number;
  saveEvery?: number;
  checkpointsTotalLimit?: number;
  resume?: string;
  validationPrompts: string[];
  validateEvery?: number;
  numValidationImages: number;
  validationSteps: number;
  saveDtype: "fp32" | "fp16";
  threads?: number;
  progress?: boolean;
  /** Recompute the UNet blocks' activations in the backward pass (less memory, more time). */
  gradientCheckpointing: boolean;
  /** Pre-pack frozen weights for each product (faster steps, one more copy of them; see train-session.ts). */
  prepackWeights?: boolean;
  /** Fixed batches for a logged val_loss (0 = none). */
  evalBatches: number;
}

export interface TrainResult {
  output: string;
  steps: number;
  lastLoss: number;
  /** The main file(s) written. */
  files: string[];
}

const isLora = (k: TrainKind) => k === "lora" || k === "dreambooth-lora";

/** Everything that can be checked from configs and files alone, before any weight is read. */
function preflight(c: TrainConfig, teacherUnetConfig: Record<string, any>, vaeScale: number) {
  if (c.resolution % vaeScale !== 0) throw new TrainingSetupError(`--resolution ${c.resolution} is not a multiple of the VAE's scale factor ${vaeScale}`);
  if (c.kind === "dreambooth-lora" && !c.instancePrompt) throw new TrainingSetupError("dreambooth-lora needs --instance-prompt");
  if (c.classPrompt && c.kind !== "dreambooth-lora") throw new TrainingSetupError("--class-prompt applies to dreambooth-lora");
  if (c.trainTextEncoder && !isLora(c.kind)) throw new TrainingSetupError("--train-text-encoder applies to LoRA training (lora, dreambooth-lora)");
  if (c.useEma && isLora(c.kind)) throw new TrainingSetupError("--use-ema applies to finetune and distill");
  const items = scanImageFolder(c.data, { fixedCaption: c.kind === "dreambooth-lora" ? c.instancePrompt : undefined, captionColumn: c.captionColumn });
  let studentConfig: Record<string, any> | undefined;
  let plan;
  if (c.kind === "distill") {
    if (!c.student) throw new TrainingSetupError("distill needs --student ssd-1b|vega|CONFIG.json");
    studentConfig = resolveStudentConfig(c.student);
    plan = planStudent(teacherUnetConfig, studentConfig);
  }
  if (isLora(c.kind)) selectLoraWeights(expectedParameters("unet", teacherUnetConfig), c.targets, "", "UNet");
  return { items, studentConfig, plan };
}

export async function runTraining(c: TrainConfig, log: (m: string) => void): Promise<TrainResult> {
  // a repo id is downloaded on first use; validation images and class images then load the same folder
  c = { ...c, model: await ensureLocal(c.model, "model", { ...c.hub, variant: c.variant }) };
  const model: TrainingModel = openTrainingModel(c.model, c.variant);
  const vaeConfig = readConfig(join(model.dir, "vae"));
  const vaeScale = 2 ** (((vaeConfig.block_out_channels as number[] | undefined) ?? [1, 1, 1, 1]).length - 1);
  const { items, studentConfig, plan } = preflight(c, model.unet.config, vaeScale);
  const output = resolve(c.output);
  mkdirSync(output, { recursive: true });
  const resume = c.resume ? resolveResume(c.resume, output) : undefined;
  log(`${c.kind}: ${items.length} image(s) from ${c.data}, model ${model.dir}`);

  let priorItems: DatasetItem[] | undefined;
  if (c.kind === "dreambooth-lora" && c.classPrompt) {
    const dir = c.classData ?? join(output, "class_images");
    await ensureClassImages({ model: model.dir, variant: c.variant, dir, prompt: c.classPrompt, count: c.numClassImages, resolution: c.resolution, steps: c.validationSteps, seed: c.seed, log });
    priorItems = scanImageFolder(dir, { fixedCaption: c.classPrompt });
  }

  const scheduler = new DDPMScheduler(model.schedulerConfig);
  const predictionType = c.predictionType ?? scheduler.config.prediction_type;
  if (predictionType !== "epsilon" && predictionType !== "v_prediction") throw new TrainingSetupError(`prediction_type ${predictionType} cannot be trained (epsilon or v_prediction)`);

  const updatesPerEpoch = Math.max(1, Math.ceil(items.length / c.batchSize / c.gradAccum));
  const maxSteps = c.steps ?? c.epochs * updatesPerEpoch;
  const rng = new TrainingRng(c.seed);

  let unet: ComponentWeights = model.unet;
  let mode: TrainMode;
  if (isLora(c.kind)) mode = { kind: "lora", rank: c.rank, alpha: c.alpha, targets: c.targets, textEncoderTargets: TEXT_LORA_TARGETS };
  else if (c.kind === "finetune") mode = { kind: "full" };
  else {
    if (plan!.dropped.length) log(`student drops ${plan!.dropped.length} teacher module(s): ${plan!.dropped.join(", ")}`);
    if (plan!.duplicated.length) log(`student blocks deeper than the teacher start as copies: ${plan!.duplicated.join(", ")}`);
    unet = { config: studentConfig!, source: studentSource(model.unet.source, plan!), where: `student (${c.student})` };
    mode = { kind: "distill", teacher: model.unet, weights: c.distillWeights };
  }
  const trainTE = isLora(c.kind) && c.trainTextEncoder;
  // text_encoder's last layer feeds no output (SDXL takes the penultimate states): onnxruntime would warn about each unused weight
  if (trainTE) ort.env.logLevel = "error";
  const textEncoders = trainTE ? [model.textEncoder(0), model.textEncoder(1)] as [ComponentWeights, ComponentWeights] : undefined;

  const vae = LatentEncoder.open(model.dir, c.variant);
  const disk = c.cacheDir ? new DiskCache(c.cacheDir) : undefined;
  let text: TextEmbedder | undefined;
  const tokenizers = trainTE ? [CLIPTokenizer.fromDirectory(join(model.dir, "tokenizer")), CLIPTokenizer.fromDirectory(join(model.dir, "tokenizer_2"))] as [CLIPTokenizer, CLIPTokenizer] : undefined;
  const batches = new BatchSource({
    items, priorItems, priorLossWeight: c.priorLossWeight, batchSize: c.batchSize,
    augment: { resolution: c.resolution, centerCrop: c.centerCrop, randomFlip: c.randomFlip },
    captionDropout: c.captionDropout, noiseOffset: c.noiseOffset, snrGamma: c.snrGamma, predictionType, scheduler, vae, tokenizers,
    cacheLatents: c.cacheLatents ? { seed: c.seed, disk, modelKey: `${model.dir}/vae:${c.variant ?? ""}` } : undefined,
  });
  if (!trainTE) {
    text = new TextEmbedder(model.dir, c.variant, {}, disk);
    log("encoding captions");
    await text.precompute(batches.captions());
  }
  batches.o.text = text;
  if (c.cacheLatents) {
    log("encoding latents");
    await batches.precomputeLatents();
    await vae.release();
  }

  const t0 = performance.now();
  const tg = buildTrainGraph({ unet, batch: batches.rows, latentSize: c.resolution / vaeScale, mode, textEncoders, rng, checkpointing: c.gradientCheckpointing });
  const compiled = await compileTrainingGraph(tg.graph, `training graph (${c.kind})`, { threads: c.threads, weightsOnTheLeft: !c.prepackWeights });
  const trainedCount = tg.params.reduce((n, p) => n + p.value.length, 0);
  log(`training graph compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${tg.params.length} tensors, ${trainedCount} trained values; ${maxSteps} steps`);

  const opt: Optimizer = c.optimizer === "sgd"
    ? new SGD(tg.params, { lr: c.lr, momentum: c.momentum, weightDecay: c.weightDecay })
    : new AdamW(tg.params, { lr: c.lr, betas: c.adamBetas, eps: c.adamEps, weightDecay: c.weightDecay });
  const ema = c.useEma ? new EMA(tg.params, { decay: c.emaDecay }) : undefined;

  const files: string[] = [];
  const finalWeights = () => tg.params.map((p) => ({ key: p.key, shape: p.tensor.shape, value: ema?.shadow.get(p.key) ?? p.value }));
  const save = (dir: string, final: boolean) => {
    if (isLora(c.kind)) {
      const f = join(dir, "pytorch_lora_weights.safetensors");
      saveLora(f, peftTensors(tg.lora));
      if (c.kohya) saveLora(join(dir, "pytorch_lora_weights_kohya.safetensors"), kohyaTensors(tg.lora, model.unet.config));
      if (final) files.push(f);
    } else if (final) {
      files.push(saveUNet(join(dir, "unet"), unet.config, finalWeights(), c.saveDtype));
      copyOtherComponents(model.dir, dir);
    }
  };
  const validate = c.validationPrompts.length ? async (step: number) => {
    const vdir = join(output, "validation");
    mkdirSync(vdir, { recursive: true });
    let modelDir = model.dir, lora: string | undefined;
    if (isLora(c.kind)) {
      lora = join(vdir, "current_lora.safetensors");
      saveLora(lora, peftTensors(tg.lora));
    } else {
      modelDir = join(vdir, "current_model");
      saveUNet(join(modelDir, "unet"), unet.config, finalWeights(), "fp32");
      copyOtherComponents(model.dir, modelDir);
    }
    const written = await validationImages({
      model: modelDir, variant: isLora(c.kind) ? c.variant : "fp32", lora, prompts: c.validationPrompts, imagesPerPrompt: c.numValidationImages,
      steps: c.validationSteps, guidance: 5, resolution: c.resolution, seed: c.seed,
    }, vdir, step);
    log(`validation: ${written.join(", ")}`);
  } : undefined;

  const settings = {
    kind: c.kind, model: model.dir, data: resolve(c.data), resolution: c.resolution, batchSize: c.batchSize, gradAccum: c.gradAccum,
    rank: isLora(c.kind) ? c.rank : undefined, alpha: isLora(c.kind) ? c.alpha : undefined, targets: isLora(c.kind) ? c.targets : undefined,
    trainTextEncoder: trainTE, student: c.student, optimizer: c.optimizer, lr: c.lr, schedule: c.schedule, warmupSteps: c.warmupSteps,
    totalSteps: c.schedule === "linear" || c.schedule === "cosine" ? maxSteps : undefined, seed: c.seed, cacheLatents: c.cacheLatents,
    useEma: c.useEma, parameters: tg.params.length,
  };
  writeFileSync(join(output, "training_config.json"), JSON.stringify({ ...c, maxSteps }, null, 1));
  try {
    const r = await trainLoop({
      output, maxSteps, gradAccum: c.gradAccum, lr: c.lr,
      schedule: { name: c.schedule, warmupSteps: c.warmupSteps, totalSteps: maxSteps },
      maxGradNorm: c.maxGradNorm, saveEvery: c.saveEvery, checkpointsTotalLimit: c.checkpointsTotalLimit,
      validateEvery: c.validateEvery, resume, settings, log, progress: c.progress, evalBatches: c.evalBatches,
    }, { compiled, params: tg.params, lossTerms: tg.lossTerms, batches, optimizer: opt, ema, rng, save, validate });
    if (!isLora(c.kind) && existsSync(join(model.dir, "model_index.json")) && !existsSync(join(output, "model_index.json"))) copyFileSync(join(model.dir, "model_index.json"), join(output, "model_index.json"));
    return { output, steps: r.steps, lastLoss: r.lastLoss, files };
  } finally {
    await compiled.release();
    await vae.release();
    await text?.release();
  }
}
