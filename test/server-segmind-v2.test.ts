/**
 * Segmind's async v2 API (submit + poll) for SSD-1B and SSD Img2Img: the submit answer, the status
 * and result routes, and the images equal to the synchronous v1 route's for the same request.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { serveTinyModel } from "./helpers/served-model.js";

const served = serveTinyModel("segmind-v2-", { skip: NO_FIXTURES, queueSize: 8 });

const post = (path: string, body: unknown) => fetch(served.server.url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function getJson(u: string): Promise<any> {
  const r = await fetch(u);
  assert.equal(r.status, 200, u);
  return r.json();
}

async function completed(statusUrl: string): Promise<void> {
  const end = Date.now() + 60000;
  while (Date.now() < end) {
    const s = await getJson(statusUrl);
    assert.ok(["QUEUED", "PROCESSING", "COMPLETED"].includes(s.status), JSON.stringify(s));
    if (s.status === "COMPLETED") {
      assert.equal(typeof s.metrics.inference_time, "number");
      assert.equal(s.output, undefined, "the status carries no output");
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("timed out");
}

const body = { prompt: "a red bicycle", negative_prompt: "blurry", samples: 2, scheduler: "Euler", num_inference_steps: 2, guidance_scale: 7, seed: 12, img_width: 32, img_height: 32 };

test("Segmind v2 /v2/ssd-1b: submit, poll status_url, fetch response_url: the v1 route's images", { skip: NO_FIXTURES }, async () => {
  const r = await post("/v2/ssd-1b", body);
  assert.equal(r.status, 200);
  const sub = await r.json() as Record<string, string>;
  assert.equal(sub.status, "QUEUED");
  assert.equal(sub.status_url, `${served.server.url}/v2/requests/${sub.request_id}/status`);
  assert.equal(sub.response_url, `${served.server.url}/v2/requests/${sub.request_id}`);
  assert.equal(sub.poll_url, `${served.server.url}/v1/requests/${sub.request_id}`);
  await completed(sub.status_url);
  const res = await getJson(sub.response_url);
  assert.equal(res.status, "COMPLETED");
  assert.equal(res.outputs.length, 2);
  assert.equal(res.output, res.outputs[0]);
  assert.deepEqual(res.seeds, [12, 12]);
  assert.deepEqual(await getJson(sub.poll_url), res);
  const v1 = await (await post("/v1/ssd-1b", { ...body, base64: true })).json() as { images: string[] };
  for (let i = 0; i < 2; i++) {
    const png = Buffer.from(await (await fetch(res.outputs[i])).arrayBuffer());
    assert.deepEqual(decodePng(png).data, decodePng(Buffer.from(v1.images[i], "base64")).data, `image ${i}`);
  }
  // base64: true puts the images themselves in the result
  const b = await (await post("/v2/ssd-1b", { ...body, samples: 1, base64: true })).json() as Record<string, string>;
  await completed(b.status_url);
  const out = await getJson(b.response_url);
  assert.deepEqual(decodePng(Buffer.from(out.output, "base64")).data, decodePng(Buffer.from(v1.images[0], "base64")).data);
});

test("Segmind v2 /v2/ssd-img2img and the errors: a bad request is a 400 at submit, an unknown id a 404", { skip: NO_FIXTURES }, async () => {
  const image = encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).map((_, i) => (i * 13) % 256) }).toString("base64");
  const sub = await (await post("/v2/ssd-img2img", { ...body, samples: 1, image, strength: 0.5 })).json() as Record<string, string>;
  await completed(sub.status_url);
  const res = await getJson(sub.response_url);
  assert.equal(decodePng(Buffer.from(await (await fetch(res.output)).arrayBuffer())).width, 32);
  const bad = await post("/v2/ssd-1b", { ...body, scheduler: "DPM fast" });
  assert.equal(bad.status, 400);
  assert.equal((await fetch(`${served.server.url}/v2/requests/nope/status`)).status, 404);
  assert.equal((await fetch(`${served.server.url}/v2/requests/nope`)).status, 404);
});
