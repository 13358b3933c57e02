/**
 * The web page's ControlNet panel in Debian's headless Chromium (playwright-core): pick a net from
 * /controlnet/model_list, drop a control image, switch to canny and preview it through
 * /controlnet/detect (equal to the server's canny at the output size), generate, and check the job
 * request carried the ControlNet unit; the result equals the same unit sent straight to /v1/jobs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { serveTinyModel, TEST_OUTPUT } from "./helpers/served-model.js";
import { boxPhoto, synthComponentFolder } from "./helpers/controlnet-folder.js";
import { fixture } from "./helpers/fixtures.js";
import { ControlNetLibrary } from "../src/server/controlnet-library.js";
import { cannyModule } from "../src/server/controlnet-units.js";
import { decodePng, encodePng } from "../src/image/png.js";

const SKIP = BROWSER_SKIP;
const OUT = TEST_OUTPUT;

const served = serveTinyModel("server-cn-web-", {
  skip: SKIP, browser: true, queueSize: 4,
  setup: (tmp) => {
    synthComponentFolder(join(tmp, "controlnets", "canny-a"), fixture("controlnet", "tiny-ssd", "controlnet", "config.json"));
    const controlnets = new ControlNetLibrary(join(tmp, "controlnets"));
    return { queue: { controlnets }, server: { controlnets } };
  },
});

test("web page ControlNet panel: pick a net, drop an image, preview canny, generate with it", { skip: SKIP, timeout: 120000 }, async () => {
  const jobs: Record<string, any>[] = [];
  const { page, consoleErrors } = await openReadyPage(served.browser, served.server.url + "/", { width: 1280, height: 1000 }, (page) => {
    page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/v1/jobs")) jobs.push(r.postDataJSON()); });
  });
  assert.ok(await page.isVisible("#cn-panel"), "the panel shows with --controlnet-dir");
  await page.click("#cn-panel summary");
  assert.deepEqual(await page.$$eval("#cn-model option", (os) => os.map((o) => (o as HTMLOptionElement).value)), ["", "canny-a"]);
  await page.selectOption("#cn-model", "canny-a");

  const b64 = encodePng(boxPhoto()).toString("base64");
  const dt = await page.evaluateHandle((data) => {
    const t = new DataTransfer();
    t.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], "photo.png", { type: "image/png" }));
    return t;
  }, b64);
  await page.dispatchEvent("#cn-drop", "drop", { dataTransfer: dt });
  await page.waitForSelector("#cn-image:not(.hidden)");

  await page.selectOption("#cn-module", "canny");
  await page.fill("#cn-low", "90");
  await page.fill("#cn-high", "180");
  await page.click("#cn-preview-button");
  await page.waitForSelector("#cn-preview:not(.hidden)");
  const src = await page.getAttribute("#cn-preview", "src");
  const preview = decodePng(Buffer.from(src!.replace(/^data:image\/png;base64,/, ""), "base64"));
  // the output is 32x32 (the tiny model's default): canny runs with the short side at 32
  const want = cannyModule(boxPhoto(), 90, 180, 32);
  assert.deepEqual([preview.width, preview.height], [want.width, want.height]);
  assert.ok(Buffer.from(preview.data).equals(Buffer.from(want.data)), "the preview is the server's canny at the output size");

  await page.fill("#cn-scale", "0.8");
  await page.fill("#cn-end", "0.9");
  await page.fill("#prompt", "a box");
  await page.fill("#steps", "2");
  await page.fill("#seed", "7");
  await page.click("#generate");
  await page.waitForSelector("#gallery .card img");
  await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>("#gallery .card img")).every((i) => i.complete && i.naturalWidth === 32));
  await page.screenshot({ path: join(OUT, "server-web-controlnet.png"), fullPage: true });

  assert.equal(jobs.length, 1);
  const body = jobs[0];
  assert.deepEqual(body.controlnets, [{ name: "canny-a", image: b64, module: "canny", scale: 0.8, start: 0, end: 0.9, pixel_perfect: true, threshold_a: 90, threshold_b: 180 }]);
  // the page's image equals the same request made without the page
  const href = await page.getAttribute("#gallery .card a.download", "href");
  const fromPage = Buffer.from(await (await fetch(new URL(href!, served.server.url))).arrayBuffer());
  const direct = await (await fetch(served.server.url + "/v1/images/generations", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({
    prompt: "a box", negative_prompt: body.negative_prompt, steps: 2, guidance_scale: body.guidance_scale, seed: 7, size: "32x32", controlnets: body.controlnets,
  }) })).json() as { data: { b64_json: string }[] };
  assert.ok(Buffer.from(decodePng(fromPage).data).equals(Buffer.from(decodePng(Buffer.from(direct.data[0].b64_json, "base64")).data)));
  assert.deepEqual(consoleErrors, []);
  await page.close();
});
