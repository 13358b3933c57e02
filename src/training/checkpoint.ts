/**
 * Training checkpoints that `--resume` continues exactly: `checkpoint-<step>/` holds the trained
 * parameters, the optimizer's buffers and the EMA weights (state.safetensors, float32, bit for bit)
 * and the step, optimizer step count, RNG state, data order and the run's settings (state.json).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TensorStore, saveTensors } from "../safetensors/index.js";
import type { TrainableParameter } from "../ir/passes/trainable.js";
import type { Optimizer } from "./optim/optimizer.js";
import type { EMA } from "./optim/ema.js";

export class CheckpointError extends Error {}

export interface CheckpointMeta {
  step: number;
  optimizer: { kind: string; steps: number };
  rng: number[];
  data: unknown;
  emaSteps?: number;
  /** The settings that must not change across a resume (model, data, shapes, trained parameters…). */
  settings: Record<string, unknown>;
}

export function checkpointDir(output: string, step: number): string {
  return join(output, `checkpoint-${step}`);
}

/** Writes to a temporary folder first, so an interrupted save never leaves a half checkpoint. */
export function saveCheckpoint(dir: string, meta: CheckpointMeta, params: TrainableParameter[], opt: Optimizer, ema?: EMA, extra?: (tmp: string) => void): void {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
  for (const p of params) tensors[`param.${p.key}`] = { dtype: "F32", shape: [p.value.length], data: p.value };
  const st = opt.state();
  for (const [k, v] of Object.entries(st.buffers)) tensors[`optim.${k}`] = { dtype: "F32", shape: [v.length], data: v };
  if (ema) for (const [k, v] of ema.shadow) tensors[`ema.${k}`] = { dtype: "F32", shape: [v.length], data: v };
  saveTensors(join(tmp, "state.safetensors"), tensors);
  writeFileSync(join(tmp, "state.json"), JSON.stringify({ ...meta, optimizer: { kind: st.kind, steps: st.steps }, emaSteps: ema?.optimizationStep }, null, 1));
  extra?.(tmp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

/** `latest` → the highest checkpoint-N of the output folder. */
export function resolveResume(spec: string, output: string): string {
  if (spec !== "latest") {
    if (!existsSync(join(spec, "state.json"))) throw new CheckpointError(`--resume ${spec}: not a checkpoint folder (no state.json)`);
    return spec;
  }
  const steps = existsSync(output) ? readdirSync(output).map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1]).filter((s): s is string => !!s).map(Number) : [];
  if (!steps.length) throw new CheckpointError(`--resume latest: no checkpoint-N folder in ${output}`);
  return checkpointDir(output, Math.max(...steps));
}

export function readCheckpointMeta(dir: string): CheckpointMeta {
  return JSON.parse(readFileSync(join(dir, "state.json"), "utf8")) as CheckpointMeta;
}

/** Restores parameters, optimizer and EMA in place after checking the settings match. */
export function loadCheckpoint(dir: string, settings: Record<string, unknown>, params: TrainableParameter[], opt: Optimizer, ema?: EMA): CheckpointMeta {
  const meta = readCheckpointMeta(dir);
  const changed = Object.keys({ ...settings, ...meta.settings }).filter((k) => JSON.stringify(settings[k]) !== JSON.stringify(meta.settings[k]));
  if (changed.length) {
    throw new CheckpointError(`${dir}: the run's settings differ from the checkpoint's: ${changed.map((k) => `${k} ${JSON.stringify(meta.settings[k])} → ${JSON.stringify(settings[k])}`).join(", ")}`);
  }
  const store = TensorStore.open(join(dir, "state.safetensors"));
  for (const p of params) {
    if (!store.has(`param.${p.key}`)) throw new CheckpointError(`${dir}: no saved value of "${p.key}"`);
    p.value.set(store.float32(`param.${p.key}`));
  }
  const buffers: Record<string, Float32Array> = {};
  for (const name of store.tensors.keys()) if (name.startsWith("optim.")) buffers[name.slice(6)] = store.float32(name);
  opt.loadState({ kind: meta.optimizer.kind, steps: meta.optimizer.steps, buffers });
  if (ema) {
    for (const [k, v] of ema.shadow) {
      if (!store.has(`ema.${k}`)) throw new CheckpointError(`${dir}: no EMA weights (was the run started without --use-ema?)`);
      v.set(store.float32(`ema.${k}`));
    }
    ema.optimizationStep = meta.emaSteps ?? 0;
  }
  return meta;
}

/** Keeps the newest `limit` checkpoints (diffusers' checkpoints_total_limit). */
export function pruneCheckpoints(output: string, limit: number): string[] {
  const steps = readdirSync(output).map((n) => /^checkpoint-(\d+)$/.exec(n)?.[1]).filter((s): s is string => !!s).map(Number).sort((a, b) => a - b);
  const drop = steps.slice(0, Math.max(0, steps.length - limit)).map((s) => checkpointDir(output, s));
  for (const d of drop) rmSync(d, { recursive: true, force: true });
  return drop;
}
