/**
 * `serve --output-dir`: the file store writes each image to the folder and reads the newest back at
 * start (within its byte budget, only plain *.png names), so GET /v1/history outlives a restart.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../src/server/file-store.js";
import { JobQueue, type ModelInfo } from "../src/server/queue.js";
import type { Job } from "../src/server/job.js";
import { startServer } from "../src/server/app.js";
import { encodePng } from "../src/image/png.js";

/** A queue that takes no jobs: only the history route is under test. */
class NoQueue extends JobQueue {
  readonly mode = "in-process" as const;
  submit(): Promise<Job> { return Promise.reject(new Error("no jobs here")); }
  model(): ModelInfo { return { name: "none" }; }
  async close(): Promise<void> {}
}

const png = (prompt: string, side = 8) => encodePng({ width: side, height: side, data: new Uint8Array(side * side * 3).fill(128) }, { parameters: `${prompt}\nSteps: 3, Sampler: Euler, CFG scale: 5, Seed: 7, Size: ${side}x${side}, Model: m` });

test("file store with an output folder: written, read back newest-first after a restart, history lists them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "file-store-dir-"));
  try {
    const a = new FileStore(undefined, undefined, { dir });
    a.put("job1-0.png", png("one"));
    a.put("job2-0.png", png("two"));
    assert.ok(existsSync(join(dir, "job1-0.png")) && existsSync(join(dir, "job2-0.png")));
    // order on disk is by time: make it unambiguous
    utimesSync(join(dir, "job1-0.png"), new Date(1_000_000), new Date(1_000_000));
    utimesSync(join(dir, "job2-0.png"), new Date(2_000_000), new Date(2_000_000));
    writeFileSync(join(dir, "notes.txt"), "not an image");
    writeFileSync(join(dir, ".hidden.png"), png("hidden"));

    const b = new FileStore(undefined, undefined, { dir });
    assert.deepEqual(b.list().map(([n]) => n), ["job2-0.png", "job1-0.png"]);
    const server = await startServer({ queue: new NoQueue(4, b), files: b, host: "127.0.0.1", port: 0 });
    try {
      const h = await (await fetch(server.url + "/v1/history")).json() as { total: number; items: { name: string; created: string; width: number; fields: Record<string, string> }[] };
      assert.equal(h.total, 2);
      assert.deepEqual(h.items.map((i) => [i.name, i.fields.Prompt, i.width, i.created]), [["job2-0.png", "two", 8, new Date(2_000_000).toISOString()], ["job1-0.png", "one", 8, new Date(1_000_000).toISOString()]]);
      assert.equal((await fetch(server.url + "/files/job1-0.png")).status, 200);
    } finally {
      await server.close();
    }

    // a byte budget that holds one: the newest is read back
    const small = new FileStore(png("two").length + 10, undefined, { dir });
    assert.deepEqual(small.list().map(([n]) => n), ["job2-0.png"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
