/**
 * Clip skip through the server: the native API's clip_skip is diffusers' (both text encoders); A1111's
 * CLIP_stop_at_last_layers / SD.Next's clip_skip count from the last layer and apply to CLIP-L only
 * with sdxl_clip_l_skip, as A1111 does for SDXL (without it: "Clip skip: N" in the infotext, the
 * image unchanged). Each image is compared with the library's at the same seed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { NO_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { decodePng } from "../src/image/png.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { postJson, txt2imgFirst } from "./helpers/a1111-client.js";

const served = serveTinyModel("server-clip-skip-", { skip: NO_FIXTURES, queueSize: 8 });

const post = (path: string, body: unknown) => postJson(served.server.url, path, body);

const txt2img = (body: Record<string, unknown>) => txt2imgFirst(served.server.url, body);

function pngDiff(a: Buffer, b: Buffer): number {
  const x = decodePng(a).data, y = decodePng(b).data;
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
}

const base = { prompt: "a lighthouse", negative_prompt: "fog", steps: 2, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5, seed: 4 };
const library = (clipSkip?: number | { textEncoder: number }) => served.pipe.generate({
  prompt: base.prompt, negativePrompt: base.negative_prompt, numInferenceSteps: 2, guidanceScale: 5, width: 32, height: 32, seeds: [4], scheduler: "Euler", clipSkip,
});

test("native clip_skip: diffusers' clip skip of both encoders, \"Clip skip: k + 2\" in the parameters", { skip: NO_FIXTURES }, async () => {
  const submit = await post("/v1/jobs", { prompt: base.prompt, negative_prompt: base.negative_prompt, steps: 2, guidance_scale: 5, seed: 4, width: 32, height: 32, scheduler: "Euler", clip_skip: 1 });
  assert.equal(submit.status, 202, await submit.clone().text());
  const { id } = await submit.json() as { id: string };
  let job: any;
  for (;;) {
    job = await (await fetch(`${served.server.url}/v1/jobs/${id}`)).json();
    if (job.status !== "queued" && job.status !== "running") break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.equal(job.status, "done", JSON.stringify(job));
  const png = Buffer.from(await (await fetch(job.result.images[0].url)).arrayBuffer());
  const skipped = await library(1), plain = await library();
  assert.ok(levelDiff(png, skipped.images.data) <= 1, "the library's clipSkip 1");
  assert.ok(levelDiff(png, plain.images.data) > 1, "another image than no clip skip");
  assert.match(decodePng(png).text.parameters, /, Clip skip: 3(,|$)/);
  const tooMany = await post("/v1/jobs", { prompt: "x", clip_skip: 99 });
  assert.equal(tooMany.status, 400);
  assert.match((await tooMany.json() as { error: { message: string } }).error.message, /clip_skip must be in \[0, \d+\]/);
});

test("A1111 CLIP_stop_at_last_layers: as A1111 on SDXL; with sdxl_clip_l_skip CLIP-L's hidden_states[-N]", { skip: NO_FIXTURES }, async () => {
  const plain = await txt2img(base);
  // without sdxl_clip_l_skip A1111 leaves SDXL's prompt encoding alone and writes the setting down
  const two = await txt2img({ ...base, override_settings: { CLIP_stop_at_last_layers: 3 } });
  assert.deepEqual(decodePng(two.image).data, decodePng(plain.image).data);
  assert.match(two.info.infotexts[0], /, Clip skip: 3(,|$)/);
  assert.equal(two.info.clip_skip, 3);
  assert.doesNotMatch(plain.info.infotexts[0], /Clip skip/);
  assert.equal(plain.info.clip_skip, 1);
  // sdxl_clip_l_skip: N = 1 is CLIP-L's last layer (not normed), N = 3 one below its penultimate
  for (const [n, skip] of [[1, -1], [3, 1]] as const) {
    const out = await txt2img({ ...base, override_settings: { CLIP_stop_at_last_layers: n, sdxl_clip_l_skip: true } });
    assert.ok(levelDiff(out.image, (await library({ textEncoder: skip })).images.data) <= 1, `N ${n}`);
    assert.ok(pngDiff(out.image, plain.image) > 1, `N ${n} changes the image`);
  }
  // N = 2 is SDXL's own penultimate layer: the plain image
  const pen = await txt2img({ ...base, override_settings: { CLIP_stop_at_last_layers: 2, sdxl_clip_l_skip: true } });
  assert.deepEqual(decodePng(pen.image).data, decodePng(plain.image).data);
  // SD.Next's clip_skip field (SillyTavern sends it) is the same setting; POST options keeps both for later requests
  const field = await txt2img({ ...base, clip_skip: 3, override_settings: { sdxl_clip_l_skip: true } });
  assert.ok(levelDiff(field.image, (await library({ textEncoder: 1 })).images.data) <= 1);
  assert.equal((await post("/sdapi/v1/options", { CLIP_stop_at_last_layers: 3, sdxl_clip_l_skip: true })).status, 200);
  try {
    const opts = await (await fetch(served.server.url + "/sdapi/v1/options")).json() as Record<string, unknown>;
    assert.equal(opts.CLIP_stop_at_last_layers, 3);
    assert.equal(opts.sdxl_clip_l_skip, true);
    assert.deepEqual(decodePng((await txt2img(base)).image).data, decodePng(field.image).data);
  } finally {
    await post("/sdapi/v1/options", { CLIP_stop_at_last_layers: 1, sdxl_clip_l_skip: false });
  }
  // override_settings_restore_afterwards false keeps the request's settings as the server's
  await txt2img({ ...base, override_settings: { CLIP_stop_at_last_layers: 3, sdxl_clip_l_skip: true }, override_settings_restore_afterwards: false });
  try {
    assert.deepEqual(decodePng((await txt2img(base)).image).data, decodePng(field.image).data);
  } finally {
    await post("/sdapi/v1/options", { CLIP_stop_at_last_layers: 1, sdxl_clip_l_skip: false });
  }
  assert.deepEqual(decodePng((await txt2img(base)).image).data, decodePng(plain.image).data);
  // bad values: a 400 naming the setting
  for (const [body, param] of [
    [{ override_settings: { CLIP_stop_at_last_layers: 0 } }, "override_settings.CLIP_stop_at_last_layers"],
    [{ override_settings: { CLIP_stop_at_last_layers: 13 } }, "override_settings.CLIP_stop_at_last_layers"],
    [{ override_settings: { sdxl_clip_l_skip: "yes" } }, "override_settings.sdxl_clip_l_skip"],
    [{ clip_skip: 2.5 }, "clip_skip"],
    [{ override_settings: { CLIP_stop_at_last_layers: 12, sdxl_clip_l_skip: true } }, "CLIP_stop_at_last_layers"],
  ] as const) {
    const r = await post("/sdapi/v1/txt2img", { ...base, ...body });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal((await r.json() as { error: { param: string } }).error.param, param, JSON.stringify(body));
  }
});
