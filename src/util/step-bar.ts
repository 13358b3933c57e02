/**
 * The step progress bar of generation and training, "step 3/25 |######      | 1.52 it/s" (training
 * adds its loss): redrawn in place on a terminal, one line per step otherwise.
 */

/** One line of the bar after `done` of `total` steps, at `secsPerStep`, with `suffix` after the rate. */
export function stepBarLine(done: number, total: number, secsPerStep: number, suffix = ""): string {
  const width = 24, fill = Math.round((done / total) * width);
  const rate = secsPerStep >= 1 ? `${secsPerStep.toFixed(2)} s/it` : `${(1 / Math.max(secsPerStep, 1e-6)).toFixed(2)} it/s`;
  return `step ${done}/${total} |${"#".repeat(fill)}${" ".repeat(width - fill)}| ${rate}${suffix}`;
}

/** Draws `line` over the last one on a terminal (ending the bar after the `last` step), else as a new line. */
export function drawStepBar(stream: NodeJS.WriteStream, line: string, last: boolean): void {
  stream.write(stream.isTTY ? `\r${line}${last ? "\n" : ""}` : line + "\n");
}
