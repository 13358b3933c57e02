/**
 * The training loop shared by every command: micro-batches through the compiled training graph,
 * gradients accumulated, clipped (clip_grad_norm_), one optimizer update on the host at the
 * scheduled LR, EMA, then logging (JSONL: step, loss, lr, step time, grad norm), checkpoints every N
 * updates, validation every N updates. `resume` restores everything a checkpoint holds, so the run
 * continues as if never stopped.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parameterFeeds, GRAD_PREFIX, type TrainableParameter } from "../ir/passes/trainable.js";
import type { CompiledGraph } from "../runtime/session.js";
import type { Optimizer } from "./optim/optimizer.js";
import type { EMA } from "./optim/ema.js";
import { GradientAccumulator } from "./optim/accumulate.js";
import { clipGradNorm } from "./optim/clip-grad.js";
import { learningRate, type ScheduleOptions } from "./optim/schedule.js";
import { TrainingRng } from "./rng.js";
import type { BatchSource, Feeds } from "./batches.js";
import { checkpointDir, loadCheckpoint, pruneCheckpoints, saveCheckpoint } from "./checkpoint.js";
import { drawStepBar, stepBarLine } from "../util/step-bar.js";

export interface LoopOptions {
  output: string;
  maxSteps: number;
  gradAccum: number;
  lr: number;
  schedule: ScheduleOptions;
  /** clip_grad_norm_ max norm; 0 = no clipping. */
  maxGradNorm: number;
  saveEvery?: number;
  checkpointsTotalLimit?: number;
  validateEvery?: number;
  /** A checkpoint folder to continue from. */
  resume?: string;
  /** What a resumed run must share with the checkpoint. */
  settings: Record<string, unknown>;
  log: (line: string) => void;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  /** Fixed batches whose mean loss is logged as `val_loss` before training, at checkpoints and at the end. */
  evalBatches?: number;
}

export interface LoopParts {
  compiled: CompiledGraph;
  params: TrainableParameter[];
  lossTerms: string[];
  batches: BatchSource;
  optimizer: Optimizer;
  ema?: EMA;
  rng: TrainingRng;
  /** Writes the trained result (LoRA file, model folder) into `dir`. */
  save: (dir: string, final: boolean) => Promise<void> | void;
  validate?: (step: number) => Promise<void>;
}

export interface LogRecord {
  step: number;
  loss: number;
  lr: number;
  step_time_s: number;
  epoch: number;
  grad_norm?: number;
  val_loss?: number;
  [term: string]: number | undefined;
}

/** Drops log lines past `step` (a resumed run rewrites them). */
function truncateLog(file: string, step: number): void {
  if (!existsSync(file)) return;
  // a resumed run rewrites what came after its checkpoint (val_loss at the checkpoint included)
  const kept = readFileSync(file, "utf8").split("\n").filter((l) => {
    if (!l.trim()) return false;
    const r = JSON.parse(l) as LogRecord;
    return r.step < step || (r.step === step && r.val_loss === undefined);
  });
  writeFileSync(file, kept.map((l) => l + "\n").join(""));
}

export async function trainLoop(o: LoopOptions, p: LoopParts): Promise<{ steps: number; lastLoss: number; rng: TrainingRng }> {
  mkdirSync(o.output, { recursive: true });
  const logFile = join(o.output, "train_log.jsonl");
  let step = 0;
  let rng = p.rng;
  if (o.resume) {
    const meta = loadCheckpoint(o.resume, o.settings, p.params, p.optimizer, p.ema);
    step = meta.step;
    rng = TrainingRng.fromState(meta.rng);
    p.batches.load(meta.data as ReturnType<BatchSource["state"]>);
    truncateLog(logFile, step);
    o.log(`resumed from ${o.resume} at step ${step}`);
  } else if (existsSync(logFile)) {
    writeFileSync(logFile, "");
  }
  const acc = new GradientAccumulator(o.gradAccum);
  const bar = o.progress ?? true;
  let stop = false;
  const onSigint = () => { o.log("\ninterrupted: saving a checkpoint after this step"); stop = true; };
  process.once("SIGINT", onSigint);
  let lastLoss = NaN;
  // Fixed evaluation batches: drawn from their own RNG without moving the data order.
  const evalFeeds: Feeds[] = [];
  if (o.evalBatches) {
    const saved = p.batches.state();
    const fresh = { epoch: 0, position: 0, perm: [] };
    p.batches.load({ order: fresh, prior: fresh }); // the same batches whether or not the run was resumed
    const evalRng = new TrainingRng(0xe7a1);
    for (let i = 0; i < o.evalBatches; i++) evalFeeds.push(await p.batches.next(evalRng));
    p.batches.load(JSON.parse(JSON.stringify(saved)));
  }
  const evaluate = async () => {
    if (!evalFeeds.length) return;
    let sum = 0;
    for (const f of evalFeeds) sum += (await p.compiled.run({ ...f, ...parameterFeeds(p.params) })).loss[0];
    const rec = { step, val_loss: sum / evalFeeds.length };
    appendFileSync(logFile, JSON.stringify(rec) + "\n");
    o.log(`${bar && process.stderr.isTTY ? "\n" : ""}step ${step}: val_loss ${rec.val_loss.toPrecision(4)}`);
  };
  await evaluate();
  const checkpoint = async () => {
    const dir = checkpointDir(o.output, step);
    const meta = { step, optimizer: { kind: "", steps: 0 }, rng: rng.state(), data: p.batches.state(), settings: o.settings };
    const pending: Promise<void>[] = [];
    saveCheckpoint(dir, meta, p.params, p.optimizer, p.ema, (tmp) => { const r = p.save(tmp, false); if (r) pending.push(r); });
    await Promise.all(pending);
    if (o.checkpointsTotalLimit) pruneCheckpoints(o.output, o.checkpointsTotalLimit);
    o.log(`${bar && process.stderr.isTTY ? "\n" : ""}saved ${dir}`);
  };
  try {
    while (step < o.maxSteps && !stop) {
      const t0 = performance.now();
      let loss = 0;
      const terms: Record<string, number> = {};
      let ready = false;
      for (let micro = 0; micro < o.gradAccum; micro++) {
        const feeds = await p.batches.next(rng);
        const out = await p.compiled.run({ ...feeds, ...parameterFeeds(p.params) });
        loss += out.loss[0] / o.gradAccum;
        for (const t of p.lossTerms) terms[t] = (terms[t] ?? 0) + out[t][0] / o.gradAccum;
        ready = acc.add(Object.fromEntries(p.params.map((q) => [q.key, out[GRAD_PREFIX + q.key]])));
      }
      if (!ready) throw new Error("gradient accumulation out of step");
      const grads = acc.take();
      const gradNorm = o.maxGradNorm > 0 ? clipGradNorm(Object.values(grads), o.maxGradNorm) : undefined;
      const lr = learningRate(o.lr, step, o.schedule);
      p.optimizer.lr = lr;
      p.optimizer.step(grads);
      p.ema?.step();
      step++;
      lastLoss = loss;
      const secs = (performance.now() - t0) / 1000;
      const rec: LogRecord = { step, loss, lr, step_time_s: Number(secs.toFixed(4)), epoch: p.batches.order.epoch, ...(gradNorm !== undefined ? { grad_norm: gradNorm } : {}), ...terms };
      appendFileSync(logFile, JSON.stringify(rec) + "\n");
      // "step 3/100 |###     | 1.52 s/it loss 0.1234" on stderr
      if (bar) drawStepBar(process.stderr, stepBarLine(step, o.maxSteps, secs, ` loss ${loss.toPrecision(4)}`), step === o.maxSteps);
      if (!Number.isFinite(loss)) throw new Error(`the loss became ${loss} at step ${step}; lower the learning rate`);
      if ((o.saveEvery && step % o.saveEvery === 0) || stop) {
        await checkpoint();
        if (step < o.maxSteps) await evaluate();
      }
      if (p.validate && o.validateEvery && step % o.validateEvery === 0) await p.validate(step);
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  if (!stop) {
    await evaluate();
    await p.save(o.output, true);
  }
  return { steps: step, lastLoss, rng };
}
