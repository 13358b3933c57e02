/** A throwaway redis-server for the scale-out tests and the server benchmark. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { probeRedis } from "../../src/server/redis-queue.js";

/** Debian's redis-server, when installed (.ci/run installs it). */
export const REDIS_SERVER = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => existsSync(p));

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)); });
  });
}

/**
 * Starts redis-server on a free loopback port, without persistence, and waits (up to 10 s) until it
 * answers. The caller stops `process` (SIGTERM) when done.
 */
export async function startRedisServer(): Promise<{ url: string; process: ChildProcess }> {
  if (!REDIS_SERVER) throw new Error("redis-server not found (apt-get install -y redis-server)");
  const port = await freePort();
  const child = spawn(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await probeRedis(url, 500);
      return { url, process: child };
    } catch (e) {
      if (i >= 100) { child.kill("SIGKILL"); throw e; }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
