/**
 * A1111's variation seeds through the server: subseed / subseed_strength on txt2img reach the
 * library's variationSeed / variationStrength, with A1111's seeds (all_seeds all equal to seed,
 * all_subseeds subseed + j) and infotext fields. Euler draws no step noise, so at strength 1 an
 * image is exactly the image of seed = its variation seed. And `tiling`: the library's circular padding.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, HAVE_FIXTURES, fixture, levelDiff } from "./helpers/fixtures.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { decodePng } from "../src/image/png.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";

const tmp = mkdtempSync(join(tmpdir(), "server-variation-"));
let pipe: StableDiffusionXLPipeline;
let server: RunningServer;

before(async () => {
  if (!HAVE_FIXTURES) return;
  const modelDir = join(tmp, "tiny-ssd");
  cpSync(fixture("pipeline", "tiny-ssd"), modelDir, { recursive: true });
  synthModel(modelDir, "fp32");
  pipe = await StableDiffusionXLPipeline.fromPretrained(modelDir);
  const files = new FileStore();
  server = await startServer({ queue: new LocalQueue(pipe, 8, files), files, host: "127.0.0.1", port: 0 });
});

after(async () => {
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

interface Answer { images: string[]; info: string }

async function txt2img(body: Record<string, unknown>): Promise<{ images: Buffer[]; info: any }> {
  const r = await fetch(server.url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.clone().text());
  const a = await r.json() as Answer;
  return { images: a.images.map((s) => Buffer.from(s, "base64")), info: JSON.parse(a.info) };
}

function pngDiff(a: Buffer, b: Buffer): number {
  const x = decodePng(a).data, y = decodePng(b).data;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

const base = { prompt: "a lighthouse", steps: 3, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5 };

test("A1111 subseed_strength 1 with Euler: image j equals the request with seed = subseed + j; seeds and infotexts as A1111's", { skip: NO_FIXTURES }, async () => {
  const out = await txt2img({ ...base, seed: 5, subseed: 9, subseed_strength: 1, batch_size: 2, n_iter: 2 });
  // A1111: with subseed_strength > 0 every image keeps the seed, the variation seed counts up
  assert.deepEqual(out.info.all_seeds, [5, 5, 5, 5]);
  assert.deepEqual(out.info.all_subseeds, [9, 10, 11, 12]);
  assert.equal(out.info.subseed, 9);
  assert.equal(out.info.subseed_strength, 1);
  for (let j = 0; j < 4; j++) {
    assert.match(out.info.infotexts[j], new RegExp(`Seed: 5, Size: 32x32, Model: tiny-ssd, Variation seed: ${9 + j}, Variation seed strength: 1(,|$)`));
    assert.equal(decodePng(out.images[j]).text.parameters, out.info.infotexts[j]);
    const solo = await txt2img({ ...base, seed: 9 + j });
    assert.ok(pngDiff(out.images[j], solo.images[0]) <= 1, `image ${j} vs seed ${9 + j}`);
  }
});

test("A1111 subseed_strength 0 is no variation; 0.5 is the library's slerp; subseed -1 draws one", { skip: NO_FIXTURES }, async () => {
  const plain = await txt2img({ ...base, seed: 5, batch_size: 2 });
  const zero = await txt2img({ ...base, seed: 5, batch_size: 2, subseed: 9, subseed_strength: 0 });
  assert.deepEqual(zero.info.all_seeds, [5, 6]);
  assert.equal(zero.info.subseed_strength, 0);
  for (let j = 0; j < 2; j++) {
    assert.deepEqual(decodePng(zero.images[j]).data, decodePng(plain.images[j]).data);
    assert.doesNotMatch(zero.info.infotexts[j], /Variation seed/);
  }
  const half = await txt2img({ ...base, seed: 5, subseed: 9, subseed_strength: 0.5 });
  assert.match(half.info.infotexts[0], /Variation seed: 9, Variation seed strength: 0\.5/);
  const lib = await pipe.generate({ prompt: base.prompt, numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, scheduler: "Euler", seed: 5, variationSeed: 9, variationStrength: 0.5 });
  assert.ok(levelDiff(half.images[0], lib.images.data) <= 1, "strength 0.5 vs the library");
  assert.ok(pngDiff(half.images[0], plain.images[0]) > 1, "strength 0.5 differs from the seed's image");
  const drawn = await txt2img({ ...base, steps: 1, width: 16, height: 16, seed: 5, subseed: -1, subseed_strength: 0.3, batch_size: 2 });
  assert.ok(Number.isSafeInteger(drawn.info.subseed) && drawn.info.subseed >= 0);
  assert.deepEqual(drawn.info.all_subseeds, [drawn.info.subseed, drawn.info.subseed + 1]);
});

test("A1111 variation fields out of range, and seed_resize_from_*, are a 400 naming the field", { skip: NO_FIXTURES }, async () => {
  for (const [extra, param] of [[{ subseed_strength: 1.5 }, "subseed_strength"], [{ subseed: "x" }, "subseed"], [{ seed_resize_from_w: 64 }, "seed_resize_from_w"]] as const) {
    const r = await fetch(server.url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...base, steps: 1, ...extra }) });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal((await r.json() as { error: { param: string } }).error.param, param);
  }
});

test("A1111 tiling: true is the library's tiled image, with A1111's \"Tiling: True\"", { skip: NO_FIXTURES }, async () => {
  const tiled = await txt2img({ ...base, seed: 21, tiling: true });
  assert.match(tiled.info.infotexts[0], /Model: tiny-ssd, Tiling: True(,|$)/);
  const lib = await pipe.generate({ prompt: base.prompt, numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, scheduler: "Euler", seed: 21, tiling: true });
  assert.ok(levelDiff(tiled.images[0], lib.images.data) <= 1, "tiled vs the library");
  const plain = await txt2img({ ...base, seed: 21, tiling: false });
  assert.doesNotMatch(plain.info.infotexts[0], /Tiling/);
  assert.ok(pngDiff(tiled.images[0], plain.images[0]) > 1, "tiling changes the image");
});
