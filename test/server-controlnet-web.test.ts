/**
 * The web page's ControlNet panel in Debian's headless Chromium (playwright-core): pick a net from
 * /controlnet/model_list, drop a control image, switch to canny and preview it through
 * /controlnet/detect (equal to the server's canny at the output size), generate, and check the job
 * request carried the ControlNet unit; the result equals the same unit sent straight to /v1/jobs.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser } from "playwright-core";
import { BROWSER_SKIP, launchBrowser, openReadyPage } from "./helpers/browser.js";
import { PROJECT_ROOT, fixture } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { synthModel } from "../src/cli/commands/synth.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";
import { startServer, type RunningServer } from "../src/server/app.js";
import { FileStore } from "../src/server/file-store.js";
import { LocalQueue } from "../src/server/local-queue.js";
import { ControlNetLibrary } from "../src/server/controlnet-library.js";
import { cannyModule } from "../src/server/controlnet-units.js";
import { decodePng, encodePng, type RgbImage } from "../src/image/png.js";

const SKIP = BROWSER_SKIP;
const OUT = join(PROJECT_ROOT, "test-output");

const tmp = mkdtempSync(join(tmpdir(), "server-cn-web-"));
let pipe: StableDiffusionXLPipeline | undefined;
let server: RunningServer | undefined;
let browser: Browser | undefined;

const photo = (): RgbImage => {
  const img: RgbImage = { width: 32, height: 24, data: new Uint8Array(32 * 24 * 3) };
  for (let y = 0; y < 24; y++) for (let x = 0; x < 32; x++) for (let c = 0; c < 3; c++) img.data[(y * 32 + x) * 3 + c] = (x > 8 && x < 24 && y > 6 && y < 18) ? 220 : 30 + c * 10;
  return img;
};

before(async () => {
  if (SKIP) return;
  const netDir = join(tmp, "controlnets", "canny-a");
  mkdirSync(netDir, { recursive: true });
  copyFileSync(fixture("controlnet", "tiny-ssd", "controlnet", "config.json"), join(netDir, "config.json"));
  synthModel(netDir, "fp32");
  pipe = await StableDiffusionXLPipeline.fromPretrained(tinyModelIn(tmp));
  const files = new FileStore();
  const controlnets = new ControlNetLibrary(join(tmp, "controlnets"));
  server = await startServer({ queue: new LocalQueue(pipe, 4, files, { controlnets }), files, controlnets, host: "127.0.0.1", port: 0 });
  browser = await launchBrowser();
  mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  await server?.close();
  await pipe?.release();
  rmSync(tmp, { recursive: true, force: true });
});

test("web page ControlNet panel: pick a net, drop an image, preview canny, generate with it", { skip: SKIP, timeout: 120000 }, async () => {
  const jobs: Record<string, any>[] = [];
  const { page, consoleErrors } = await openReadyPage(browser!, server!.url + "/", { width: 1280, height: 1000 }, (page) => {
    page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/v1/jobs")) jobs.push(r.postDataJSON()); });
  });
  assert.ok(await page.isVisible("#cn-panel"), "the panel shows with --controlnet-dir");
  await page.click("#cn-panel summary");
  assert.deepEqual(await page.$$eval("#cn-model option", (os) => os.map((o) => (o as HTMLOptionElement).value)), ["", "canny-a"]);
  await page.selectOption("#cn-model", "canny-a");

  const b64 = encodePng(photo()).toString("base64");
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
  const want = cannyModule(photo(), 90, 180, 32);
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
  const fromPage = Buffer.from(await (await fetch(new URL(href!, server!.url))).arrayBuffer());
  const direct = await (await fetch(server!.url + "/v1/images/generations", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({
    prompt: "a box", negative_prompt: body.negative_prompt, steps: 2, guidance_scale: body.guidance_scale, seed: 7, size: "32x32", controlnets: body.controlnets,
  }) })).json() as { data: { b64_json: string }[] };
  assert.ok(Buffer.from(decodePng(fromPage).data).equals(Buffer.from(decodePng(Buffer.from(direct.data[0].b64_json, "base64")).data)));
  assert.deepEqual(consoleErrors, []);
  await page.close();
});
