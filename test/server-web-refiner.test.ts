/**
 * The web page's refiner picker in headless Chromium, on a server that serves a base and a refiner:
 * shown with the served models, sent as A1111's refiner_checkpoint / refiner_switch_at, named in the
 * result's parameters, and filled back from them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { tinyRefinerIn } from "./helpers/tiny-refiner.js";
import { buildCatalog } from "../src/server/model-catalog.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";

const served = serveTinyModel("server-web-refiner-", {
  skip: BROWSER_SKIP, browser: true,
  setup: (tmp) => {
    const catalog = buildCatalog([tinyModelIn(tmp, "tiny-ssd"), tinyRefinerIn(tmp)]);
    return { queue: { switching: { models: catalog, load: async (m) => ({ pipe: await StableDiffusionXLPipeline.fromPretrained(m.source) }) } } };
  },
});

test("web page: the refiner picker sends refiner_checkpoint and refiner_switch_at; the parameters name the refiner and fill the picker back", { skip: BROWSER_SKIP, timeout: 300_000 }, async () => {
  const sent: { url: string; body: any }[] = [];
  const { page, consoleErrors } = await openReadyPage(served.browser, served.server.url + "/", { width: 1280, height: 900 }, (p) => {
    p.on("request", (r) => { if (r.method() === "POST" && /\/(sdapi\/v1\/txt2img|v1\/jobs)$/.test(r.url())) sent.push({ url: new URL(r.url()).pathname, body: r.postDataJSON() }); });
  });
  assert.ok(await page.isVisible("#refiner-row"));
  assert.deepEqual(await page.$$eval("#refiner option", (el) => el.map((o) => (o as HTMLOptionElement).value)), ["", "tiny-ssd", "tiny-refiner"]);
  await page.fill("#prompt", "a lighthouse");
  await page.fill("#steps", "6");
  await page.fill("#seed", "4");
  await page.selectOption("#refiner", "tiny-refiner");
  await page.fill("#refiner-switch-at", "0.3");
  await page.click("#generate");
  await page.waitForSelector("#gallery .card pre");
  const req = sent.at(-1)!;
  assert.equal(req.url, "/sdapi/v1/txt2img");
  assert.deepEqual([req.body.refiner_checkpoint, req.body.refiner_switch_at], ["tiny-refiner", 0.3]);
  assert.match(await page.textContent("#gallery .card pre") ?? "", /Refiner: tiny-refiner, Refiner switch at: 0.3/);
  // "send to img2img" style refill: the card's parameters put the refiner back after it was cleared
  await page.selectOption("#refiner", "");
  await page.fill("#refiner-switch-at", "0.8");
  await page.evaluate(async () => {
    const h = await (await fetch("/v1/history?limit=10")).json();
    const item = h.items.find((i: { fields: Record<string, string> }) => i.fields.Refiner === "tiny-refiner");
    (window as unknown as { fillFromFields: (f: Record<string, string>) => void }).fillFromFields(item.fields);
  });
  assert.equal(await page.inputValue("#refiner"), "tiny-refiner");
  assert.equal(await page.inputValue("#refiner-switch-at"), "0.3");
  assert.deepEqual(consoleErrors, []);
});
