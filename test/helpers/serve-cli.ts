/** `ssd1b serve ...` as a child process, up to its "listening on" line, and its clean stop. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "./fixtures.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

export interface ServeChild {
  child: ChildProcess;
  /** http://127.0.0.1:PORT */
  url: string;
  /** What it wrote on stderr so far. */
  stderr(): string;
  /** SIGTERM; resolves with the exit code (a clean stop is 0). */
  stop(): Promise<number | null>;
}

/** Starts the CLI with `args` (its command first) and waits up to `timeoutMs` for it to listen; rejects with its stderr otherwise. */
export async function startServeCli(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60000): Promise<ServeChild> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let stderr = "";
  child.stderr!.on("data", (d) => { stderr += d; });
  const stop = () => {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    return exited;
  };
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => { void stop(); reject(new Error(`no "listening" line; stderr: ${stderr}`)); }, timeoutMs);
    child.stdout!.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${stderr}`)); });
  });
  return { child, url, stderr: () => stderr, stop };
}
