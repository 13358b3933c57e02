#!/usr/bin/env node
import { synthCommand, synthUsage } from "./commands/synth.js";
import { forwardCommand, forwardUsage } from "./commands/forward.js";
import { generateCommand, generateUsage } from "./commands/generate.js";
import { img2imgCommand, img2imgUsage } from "./commands/img2img.js";
import { inpaintCommand, inpaintUsage } from "./commands/inpaint.js";
import { outpaintCommand, outpaintUsage } from "./commands/outpaint.js";
import { serveCommand, serveUsage } from "./commands/serve.js";
import { workerCommand, workerUsage } from "./commands/worker.js";
import { trainCommand, trainUsage } from "./commands/train.js";
import { distillCommand, distillUsage } from "./commands/distill.js";
import { downloadCommand, downloadUsage } from "./commands/download.js";
import { upscaleCommand, upscaleUsage } from "./commands/upscale.js";
import { UsageError } from "./usage-error.js";

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; usage: string }> = {
  download: { run: downloadCommand, usage: downloadUsage },
  synth: { run: synthCommand, usage: synthUsage },
  forward: { run: forwardCommand, usage: forwardUsage },
  generate: { run: generateCommand, usage: generateUsage },
  img2img: { run: img2imgCommand, usage: img2imgUsage },
  inpaint: { run: inpaintCommand, usage: inpaintUsage },
  outpaint: { run: outpaintCommand, usage: outpaintUsage },
  serve: { run: serveCommand, usage: serveUsage },
  worker: { run: workerCommand, usage: workerUsage },
  train: { run: trainCommand, usage: trainUsage },
  distill: { run: distillCommand, usage: distillUsage },
  upscale: { run: upscaleCommand, usage: upscaleUsage },
};

const HELP = `ssd1b: SSD-1B / SDXL text-to-image in TypeScript on onnxruntime-node

Usage: ssd1b <command> [options]

Commands:
${Object.values(COMMANDS).map((c) => "  " + c.usage.split("\n").join("\n  ")).join("\n\n")}

Set SSD1B_DEBUG=1 to see stack traces.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(HELP + "\n");
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`ssd1b: unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(", ")})\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(cmd.usage + "\n");
    return 0;
  }
  try {
    await cmd.run(rest);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (process.env.SSD1B_DEBUG) process.stderr.write(`${err.stack}\n`);
    const usage = e instanceof UsageError || err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || err.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE";
    process.stderr.write(`ssd1b ${name}: error: ${err.message}\n`);
    if (usage) process.stderr.write(`usage: ${cmd.usage.split("\n")[0]}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
