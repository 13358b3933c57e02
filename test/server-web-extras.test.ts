/**
 * The web page's variation seed, tiling and clip skip controls in headless Chromium: sent as the
 * native job's fields (the image equals the library's with the same options), restored by "Reuse
 * these settings" and by reading the PNG's parameters, sent as A1111 fields on the A1111 paths, where
 * a clip skip is refused with a message (no request); PAG and FreeU go as the same fields on both.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { levelDiff } from "./helpers/fixtures.js";
import { FREEU_SDXL } from "../src/pipelines/freeu.js";

const SKIP = BROWSER_SKIP;
const served = serveTinyModel("server-web-extras-", { skip: SKIP, browser: true, queueSize: 8 });

/** The page, with the generation requests it sends (path and JSON body) recorded. */
async function openCapturing() {
  const sent: { url: string; body: any }[] = [];
  const { page, consoleErrors: errors } = await openReadyPage(served.browser, served.server.url + "/", undefined, (page) => {
    page.on("request", (r) => { if (r.method() === "POST" && /\/(sdapi\/v1\/(txt2img|img2img)|v1\/jobs)$/.test(r.url())) sent.push({ url: new URL(r.url()).pathname, body: r.postDataJSON() }); });
  });
  return { page, errors, sent };
}

test("web page: variation seed, tiling and clip skip reach the job, come back from Reuse and from a PNG; A1111 paths", { skip: SKIP, timeout: 180000 }, async () => {
  const { page, errors, sent } = await openCapturing();
  await page.fill("#prompt", "a tiled lighthouse");
  await page.fill("#negative", "fog");
  await page.fill("#steps", "2");
  await page.fill("#seed", "5");
  await page.selectOption("#scheduler", "Euler");
  await page.fill("#variation-seed", "9");
  await page.fill("#variation-strength", "0.5");
  await page.check("#tiling");
  await page.fill("#clip-skip", "1");
  await page.click("#generate");
  await page.waitForSelector("#gallery .card img");
  const req = sent.at(-1)!;
  assert.equal(req.url, "/v1/jobs");
  assert.deepEqual([req.body.variation_seed, req.body.variation_strength, req.body.tiling, req.body.clip_skip], [9, 0.5, true, 1]);
  const url = await page.getAttribute("#gallery .card img", "src");
  const png = Buffer.from(await (await fetch(new URL(url!, served.server.url))).arrayBuffer());
  const size = await page.evaluate(() => { const i = document.querySelector("#gallery .card img") as HTMLImageElement; return [i.naturalWidth, i.naturalHeight]; });
  const lib = await served.pipe.generate({
    prompt: "a tiled lighthouse", negativePrompt: "fog", numInferenceSteps: 2, guidanceScale: 5, seed: 5, scheduler: "Euler", width: size[0], height: size[1],
    variationSeed: 9, variationStrength: 0.5, tiling: true, clipSkip: 1,
  });
  assert.ok(levelDiff(png, lib.images.data) <= 1, "the library's image with the same options");
  const info = await page.textContent("#gallery .card pre") ?? "";
  assert.match(info, /Variation seed: 9, Variation seed strength: 0.5, Clip skip: 3, Tiling: True/);

  // Reuse these settings brings them back
  await page.fill("#variation-seed", "");
  await page.fill("#variation-strength", "0");
  await page.uncheck("#tiling");
  await page.fill("#clip-skip", "0");
  await page.click("#gallery .card .reuse");
  assert.deepEqual([await page.inputValue("#variation-seed"), await page.inputValue("#variation-strength"), await page.isChecked("#tiling"), await page.inputValue("#clip-skip")], ["9", "0.5", true, "1"]);

  // so does the PNG's parameters text
  await page.fill("#variation-seed", "");
  await page.uncheck("#tiling");
  await page.fill("#clip-skip", "0");
  await page.setInputFiles("#png-info-file", { name: "result.png", mimeType: "image/png", buffer: png });
  await page.waitForFunction(() => /parameters read from result\.png/.test(document.getElementById("progress-text")!.textContent ?? ""));
  assert.deepEqual([await page.inputValue("#variation-seed"), await page.inputValue("#variation-strength"), await page.isChecked("#tiling"), await page.inputValue("#clip-skip")], ["9", "0.5", true, "1"]);

  // an A1111 path (a schedule type): clip skip is refused there with a message and nothing is sent
  const before = sent.length;
  await page.selectOption("#schedule-type", "Karras");
  await page.click("#generate");
  await page.waitForFunction(() => /CLIP skip goes with plain text-to-image only/.test(document.getElementById("status")!.textContent ?? ""));
  assert.equal(sent.length, before);
  // without it the variation seed and tiling go as A1111's subseed / subseed_strength / tiling
  await page.fill("#clip-skip", "0");
  await page.click("#generate");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 2);
  const a = sent.at(-1)!;
  assert.equal(a.url, "/sdapi/v1/txt2img");
  assert.deepEqual([a.body.subseed, a.body.subseed_strength, a.body.tiling, a.body.clip_skip], [9, 0.5, true, undefined]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("web page: PAG scale, PAG layers and FreeU reach the job on both APIs, come back from Reuse and from a PNG", { skip: SKIP, timeout: 180000 }, async () => {
  const { page, errors, sent } = await openCapturing();
  await page.fill("#prompt", "a guided lighthouse");
  await page.fill("#steps", "2");
  await page.fill("#seed", "6");
  await page.selectOption("#scheduler", "Euler");
  await page.fill("#pag-scale", "2");
  await page.fill("#pag-layers", "up_blocks.0, down_blocks.1");
  await page.check("#freeu");
  await page.click("#generate");
  await page.waitForSelector("#gallery .card img");
  const req = sent.at(-1)!;
  assert.equal(req.url, "/v1/jobs");
  assert.deepEqual([req.body.pag_scale, req.body.pag_applied_layers, req.body.freeu], [2, ["up_blocks.0", "down_blocks.1"], true]);
  const url = await page.getAttribute("#gallery .card img", "src");
  const png = Buffer.from(await (await fetch(new URL(url!, served.server.url))).arrayBuffer());
  const size = await page.evaluate(() => { const i = document.querySelector("#gallery .card img") as HTMLImageElement; return [i.naturalWidth, i.naturalHeight]; });
  const call = { prompt: "a guided lighthouse", numInferenceSteps: 2, guidanceScale: 5, seed: 6, scheduler: "Euler", width: size[0], height: size[1], pagScale: 2, pagAppliedLayers: ["up_blocks.0", "down_blocks.1"], freeu: FREEU_SDXL };
  assert.ok(levelDiff(png, (await served.pipe.generate(call)).images.data) <= 1, "the library's image with PAG and FreeU");
  assert.match(await page.textContent("#gallery .card pre") ?? "", /freeu_enabled: True, .*PAG scale: 2, PAG layers: up_blocks\.0 down_blocks\.1/);

  const cleared = async () => { await page.fill("#pag-scale", "0"); await page.fill("#pag-layers", ""); await page.uncheck("#freeu"); };
  const form = async () => [await page.inputValue("#pag-scale"), await page.inputValue("#pag-layers"), await page.isChecked("#freeu")];
  await cleared();
  await page.click("#gallery .card .reuse");
  assert.deepEqual(await form(), ["2", "up_blocks.0, down_blocks.1", true]);
  await cleared();
  await page.setInputFiles("#png-info-file", { name: "result.png", mimeType: "image/png", buffer: png });
  await page.waitForFunction(() => /parameters read from result\.png/.test(document.getElementById("progress-text")!.textContent ?? ""));
  assert.deepEqual(await form(), ["2", "up_blocks.0, down_blocks.1", true]);

  // an A1111 path (a schedule type) sends the same fields, and the server's A1111 route runs them
  await page.selectOption("#schedule-type", "Karras");
  await page.click("#generate");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 2);
  const a = sent.at(-1)!;
  assert.equal(a.url, "/sdapi/v1/txt2img");
  assert.deepEqual([a.body.pag_scale, a.body.pag_applied_layers, a.body.freeu], [2, ["up_blocks.0", "down_blocks.1"], true]);
  const src = await page.getAttribute("#gallery .card img", "src");
  const karras = Buffer.from(await (await fetch(new URL(src!, served.server.url))).arrayBuffer());
  assert.ok(levelDiff(karras, (await served.pipe.generate({ ...call, scheduler: "Euler Karras" })).images.data) <= 1);
  assert.deepEqual(errors, []);
  await page.close();
});
