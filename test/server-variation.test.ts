/**
 * A1111's variation seeds through the server: subseed / subseed_strength on txt2img reach the
 * library's variationSeed / variationStrength, with A1111's seeds (all_seeds all equal to seed,
 * all_subseeds subseed + j) and infotext fields. Euler draws no step noise, so at strength 1 an
 * image is exactly the image of seed = its variation seed. And `tiling` (circular padding) and
 * seed_resize_from_w / _h (the seed noise drawn at another size).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { NO_FIXTURES, levelDiff } from "./helpers/fixtures.js";
import { decodePng } from "../src/image/png.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { seedResizedNoise } from "../src/random/seed-resize.js";
import { TorchGenerator } from "../src/random/index.js";
import { createScheduler } from "../src/schedulers/index.js";

const served = serveTinyModel("server-variation-", { skip: NO_FIXTURES, queueSize: 8 });

interface Answer { images: string[]; info: string }

async function txt2img(body: Record<string, unknown>): Promise<{ images: Buffer[]; info: any }> {
  const r = await fetch(served.server.url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
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
  const lib = await served.pipe.generate({ prompt: base.prompt, numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, scheduler: "Euler", seed: 5, variationSeed: 9, variationStrength: 0.5 });
  assert.ok(levelDiff(half.images[0], lib.images.data) <= 1, "strength 0.5 vs the library");
  assert.ok(pngDiff(half.images[0], plain.images[0]) > 1, "strength 0.5 differs from the seed's image");
  const drawn = await txt2img({ ...base, steps: 1, width: 16, height: 16, seed: 5, subseed: -1, subseed_strength: 0.3, batch_size: 2 });
  assert.ok(Number.isSafeInteger(drawn.info.subseed) && drawn.info.subseed >= 0);
  assert.deepEqual(drawn.info.all_subseeds, [drawn.info.subseed, drawn.info.subseed + 1]);
});

test("A1111 variation fields out of range, and a lone or too small seed_resize_from_*, are a 400 naming the field", { skip: NO_FIXTURES }, async () => {
  for (const [extra, param] of [[{ subseed_strength: 1.5 }, "subseed_strength"], [{ subseed: "x" }, "subseed"], [{ seed_resize_from_w: 64 }, "seed_resize_from_h"], [{ seed_resize_from_w: 4, seed_resize_from_h: 16 }, "seed_resize_from_w"]] as const) {
    const r = await fetch(served.server.url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...base, steps: 1, ...extra }) });
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal((await r.json() as { error: { param: string } }).error.param, param);
  }
});

test("A1111 tiling: true is the library's tiled image, with A1111's \"Tiling: True\"", { skip: NO_FIXTURES }, async () => {
  const tiled = await txt2img({ ...base, seed: 21, tiling: true });
  assert.match(tiled.info.infotexts[0], /Model: tiny-ssd, Tiling: True(,|$)/);
  const lib = await served.pipe.generate({ prompt: base.prompt, numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, scheduler: "Euler", seed: 21, tiling: true });
  assert.ok(levelDiff(tiled.images[0], lib.images.data) <= 1, "tiled vs the library");
  const plain = await txt2img({ ...base, seed: 21, tiling: false });
  assert.doesNotMatch(plain.info.infotexts[0], /Tiling/);
  assert.ok(pngDiff(tiled.images[0], plain.images[0]) > 1, "tiling changes the image");
});

test("resize seed from: the seed's noise at the other size, centred (cut when larger, surrounded when smaller)", () => {
  const shape = [2, 2, 6, 8], per = 2 * 6 * 8;
  const full = new TorchGenerator(1).randn(shape);
  const at = (x: Float32Array, i: number, c: number, y: number, xx: number, h: number, w: number) => x[((i * 2 + c) * h + y) * w + xx];
  // smaller (4 x 6): rows 1..4, columns 1..6 hold randn(seed) at 4 x 6, the rest the full-size noise
  const small = seedResizedNoise(full, shape, [5, 6], { height: 4, width: 6 });
  for (let i = 0; i < 2; i++) {
    const ref = new TorchGenerator(5 + i).randn([2, 4, 6]);
    for (let c = 0; c < 2; c++) for (let y = 0; y < 6; y++) for (let x = 0; x < 8; x++) {
      const inside = y >= 1 && y < 5 && x >= 1 && x < 7;
      assert.equal(at(small, i, c, y, x, 6, 8), inside ? ref[(c * 4 + y - 1) * 6 + x - 1] : full[i * per + (c * 6 + y) * 8 + x]);
    }
  }
  // larger by an odd amount (9 x 8): A1111's (6 - 9) // 2 = -2 takes rows 2..6 into rows 0..4; row 5 keeps the full-size noise
  const big = seedResizedNoise(full, shape, [5, 6], { height: 9, width: 8 });
  const ref = new TorchGenerator(5).randn([2, 9, 8]);
  for (let y = 0; y < 6; y++) for (let x = 0; x < 8; x++) assert.equal(at(big, 0, 1, y, x, 6, 8), y < 5 ? ref[(9 + y + 2) * 8 + x] : full[(6 + y) * 8 + x]);
  assert.equal(seedResizedNoise(full, shape, [5, 6], { height: 6, width: 8 }), full);
  // with variation seeds the other-size noise is slerped (at strength 1: the variation seed's), the surround is not
  const v = seedResizedNoise(full, shape, [5, 6], { height: 4, width: 6 }, { seeds: [9, 10], strength: 1 });
  const vref = new TorchGenerator(10).randn([2, 4, 6]);
  assert.ok(Math.abs(at(v, 1, 0, 2, 3, 6, 8) - vref[(0 * 4 + 1) * 6 + 2]) < 1e-5);
  assert.equal(at(v, 1, 0, 0, 0, 6, 8), full[per]);
});

test("A1111 seed_resize_from_w / _h: the library's seedResizeFrom, \"Seed resize from\" in the infotext; the same size changes nothing", { skip: NO_FIXTURES }, async () => {
  const resized = await txt2img({ ...base, seed: 8, seed_resize_from_w: 48, seed_resize_from_h: 16 });
  assert.match(resized.info.infotexts[0], /Model: tiny-ssd, Seed resize from: 48x16(,|$)/);
  assert.deepEqual([resized.info.seed_resize_from_w, resized.info.seed_resize_from_h], [48, 16]);
  const lib = await served.pipe.generate({ prompt: base.prompt, numInferenceSteps: 3, guidanceScale: 5, width: 32, height: 32, scheduler: "Euler", seeds: [8], seedResizeFrom: { width: 48, height: 16 } });
  assert.ok(levelDiff(resized.images[0], lib.images.data) <= 1, "vs the library");
  const plain = await txt2img({ ...base, seed: 8 });
  assert.ok(pngDiff(resized.images[0], plain.images[0]) > 1, "another noise");
  const same = await txt2img({ ...base, seed: 8, seed_resize_from_w: 32, seed_resize_from_h: 32 });
  assert.deepEqual(decodePng(same.images[0]).data, decodePng(plain.images[0]).data);
});

test("A1111 UniPC settings (uni_pc_variant / _order / _lower_order_final): diffusers' UniPC options, from override_settings or options", { skip: NO_FIXTURES }, async () => {
  const uni = { ...base, sampler_name: "UniPC", steps: 4, seed: 3 };
  const plain = await txt2img(uni);
  const bh1 = await txt2img({ ...uni, override_settings: { uni_pc_variant: "bh1", uni_pc_order: 3 } });
  const lib = await served.pipe.generate({ prompt: base.prompt, numInferenceSteps: 4, guidanceScale: 5, width: 32, height: 32, seed: 3, scheduler: createScheduler("UniPC", served.pipe.schedulerConfig, { solver_type: "bh1", solver_order: 3 }) });
  assert.ok(levelDiff(bh1.images[0], lib.images.data) <= 1, "override_settings vs the library");
  assert.ok(pngDiff(bh1.images[0], plain.images[0]) > 1, "bh1 order 3 is another image");
  // other samplers do not read them (as in A1111)
  const euler = await txt2img({ ...base, seed: 3, override_settings: { uni_pc_variant: "bh1" } });
  assert.deepEqual(decodePng(euler.images[0]).data, decodePng((await txt2img({ ...base, seed: 3 })).images[0]).data);
  // POST options keeps them for later requests
  const set = await fetch(served.server.url + "/sdapi/v1/options", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ uni_pc_variant: "bh1", uni_pc_order: 3 }) });
  assert.equal(set.status, 200);
  assert.deepEqual(decodePng((await txt2img(uni)).images[0]).data, decodePng(bh1.images[0]).data);
  await fetch(served.server.url + "/sdapi/v1/options", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ uni_pc_variant: "bh2", uni_pc_order: 2 }) });
  for (const [key, value] of [["uni_pc_variant", "vary_coeff"], ["uni_pc_order", 7], ["uni_pc_skip_type", "logSNR"]] as const) {
    const r = await fetch(served.server.url + "/sdapi/v1/txt2img", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...uni, steps: 1, override_settings: { [key]: value } }) });
    assert.equal(r.status, 400, key);
    assert.equal((await r.json() as { error: { param: string } }).error.param, `override_settings.${key}`);
  }
});

test("native /v1/jobs: variation_seed / variation_strength and tiling are the A1111 fields' features, echoed in params", { skip: NO_FIXTURES }, async () => {
  const job = async (body: Record<string, unknown>) => {
    const r = await fetch(served.server.url + "/v1/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: base.prompt, steps: 3, width: 32, height: 32, scheduler: "Euler", guidance_scale: 5, ...body }) });
    assert.equal(r.status, 202, await r.clone().text());
    const { id } = await r.json() as { id: string };
    for (;;) {
      const j = await (await fetch(`${served.server.url}/v1/jobs/${id}`)).json() as any;
      if (j.status === "done") return { params: j.params, png: Buffer.from(await (await fetch(j.result.images[0].url)).arrayBuffer()) };
      assert.ok(j.status === "queued" || j.status === "running", JSON.stringify(j));
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  const varied = await job({ seed: 5, variation_seed: 9, variation_strength: 1 });
  assert.ok(pngDiff(varied.png, (await txt2img({ ...base, seed: 9 })).images[0]) <= 1, "strength 1 with Euler: the variation seed's image");
  assert.equal(varied.params.variation_seed, 9);
  assert.equal(varied.params.variation_strength, 1);
  assert.match(decodePng(varied.png).text.parameters, /Variation seed: 9, Variation seed strength: 1/);
  const tiled = await job({ seed: 6, tiling: true });
  assert.deepEqual(decodePng(tiled.png).data, decodePng((await txt2img({ ...base, seed: 6, tiling: true })).images[0]).data);
  assert.equal(tiled.params.tiling, true);
});
