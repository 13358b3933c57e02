import { parseArgs } from "node:util";
import { UsageError } from "../usage-error.js";
import { parseTrainConfig, TRAIN_OPTIONS } from "./train.js";
import { runTraining } from "../../training/run.js";

export const distillUsage = `ssd1b distill --teacher DIR --student ssd-1b|vega|CONFIG.json --data DIR --output DIR [options]
  Knowledge distillation as SSD-1B was made: the student starts from the teacher's weights for every
  block it keeps (transformer blocks mapped by index; dropped blocks are reported) and trains on
  task loss + output KD + block-feature KD, saving a diffusers model folder our pipeline loads.
  --task-weight, --kd-weight, --feature-weight   loss weights (default 1, 0.5, 0.5)
  Other options as for ssd1b train finetune (--lr default 1e-5, --steps, --batch-size, --resolution,
  --save-every, --resume, --validation-prompt, --use-ema, ...).`;

export async function distillCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: TRAIN_OPTIONS });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.model !== undefined) throw new UsageError("distill takes --teacher, not --model");
  const config = parseTrainConfig("distill", values);
  const log = (m: string) => process.stderr.write(m + "\n");
  const r = await runTraining(config, log);
  log(`done: ${r.steps} steps, last loss ${r.lastLoss.toPrecision(4)}; wrote ${r.output}`);
}
