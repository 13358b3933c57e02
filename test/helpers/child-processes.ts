/** Stopping the processes a test (or the server benchmark) started. */
import type { ChildProcess } from "node:child_process";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops `children` last started first (workers and front ends before the Redis they use): SIGTERM,
 * up to 10 s to exit, then SIGKILL. Those that have exited already are skipped.
 */
export async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  for (const c of [...children].reverse()) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGTERM");
    await Promise.race([exited, sleep(10000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}
