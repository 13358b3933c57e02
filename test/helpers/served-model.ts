/**
 * The fixture of most server tests, registered as node:test hooks: the tiny-ssd model with synth
 * weights (optionally a tiny TAESD), the server on an in-process queue, and Chromium for web-page
 * tests; all released after the file's tests. Nothing starts when `skip` says why.
 */
import { before, after } from "node:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { StableDiffusionXLPipeline } from "../../src/pipelines/sdxl/index.js";
import type { RunningServer } from "../../src/server/app.js";
import { PROJECT_ROOT } from "./fixtures.js";
import { launchBrowser } from "./browser.js";
import { startLocalServer } from "./local-server.js";
import { tinyModelIn } from "./tiny-model.js";
import { tinyTaesdIn } from "./tiny-taesd.js";

/** Where the web-page tests write their screenshots. */
export const TEST_OUTPUT = join(PROJECT_ROOT, "test-output");

export interface Served {
  tmp: string;
  pipe: StableDiffusionXLPipeline;
  server: RunningServer;
  /** With `browser: true`. */
  browser: Browser;
}

type LocalServerOptions = NonNullable<Parameters<typeof startLocalServer>[1]>;

/** `setup(tmp)` runs before the server starts: folders to make, the queue's and server's extra options (libraries). */
export function serveTinyModel(prefix: string, opts: {
  skip: string | false; browser?: boolean; taesd?: boolean; queueSize?: number;
  setup?: (tmp: string) => Pick<LocalServerOptions, "queue" | "server">;
}): Served {
  const served = { tmp: mkdtempSync(join(tmpdir(), prefix)) } as Served;
  before(async () => {
    if (opts.skip) return;
    served.pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(served.tmp), opts.taesd ? { taesd: tinyTaesdIn(served.tmp) } : {});
    served.server = await startLocalServer(served.pipe, { queueSize: opts.queueSize, ...opts.setup?.(served.tmp) });
    if (opts.browser) {
      served.browser = await launchBrowser();
      mkdirSync(TEST_OUTPUT, { recursive: true });
    }
  });
  after(async () => {
    await served.browser?.close();
    await served.server?.close();
    await served.pipe?.release();
    rmSync(served.tmp, { recursive: true, force: true });
  });
  return served;
}
