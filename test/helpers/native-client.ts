/** The native API as a client uses it: POST /v1/jobs, poll /v1/jobs/:id, fetch the first image. */
import assert from "node:assert/strict";

/** The finished job's JSON (any end state), polling every 50 ms. */
export async function nativeJob(url: string, body: Record<string, unknown>): Promise<any> {
  const submit = await fetch(`${url}/v1/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(submit.status, 202, await submit.clone().text());
  const { id } = await submit.json() as { id: string };
  for (;;) {
    const job = await (await fetch(`${url}/v1/jobs/${id}`)).json() as any;
    if (job.status !== "queued" && job.status !== "running") return job;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A job that must succeed: its first image's PNG bytes. */
export async function nativeJobPng(url: string, body: Record<string, unknown>): Promise<Buffer> {
  const job = await nativeJob(url, body);
  assert.equal(job.status, "done", JSON.stringify(job));
  return Buffer.from(await (await fetch(job.result.images[0].url)).arrayBuffer());
}
