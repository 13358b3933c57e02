/**
 * The web page's image-to-image / inpainting mode in Debian's headless Chromium (playwright-core):
 * pick the fixture's init image, paint its rect mask with a square brush by mouse, submit, and check
 * that the request carried exactly that mask (white where painted) and that the result shown is the
 * diffusers fixture's image (strength1_euler) inside the mask, the original outside (A1111's overlay); then a round-brush stroke, eraser, invert, outpaint
 * margins and a dropped file, each checked in the request it sends.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Page } from "playwright-core";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { levelDiff } from "./helpers/fixtures.js";
import { inpaintFixtureCase, type InpaintFixtureCase } from "./helpers/inpaint-case.js";
import { serveTinyModel, TEST_OUTPUT } from "./helpers/served-model.js";
import { decodePng, type RgbImage } from "../src/image/png.js";

const SKIP = BROWSER_SKIP;
const OUT = TEST_OUTPUT;

const served = serveTinyModel("server-web-inpaint-", { skip: SKIP, browser: true, queueSize: 4 });
let fx: InpaintFixtureCase;
before(() => { if (!SKIP) fx = inpaintFixtureCase("strength1_euler"); });

interface Sent { init_images: string[]; mask?: string; denoising_strength: number; mask_blur?: number; inpainting_fill?: number; inpaint_full_res?: boolean; [k: string]: unknown }

/** The body of the next /sdapi/v1/img2img request the page sends. */
function nextRequest(page: Page): Promise<Sent> {
  return page.waitForRequest((r) => r.url().endsWith("/sdapi/v1/img2img") && r.method() === "POST").then((r) => JSON.parse(r.postData()!) as Sent);
}

const png = (b64: string) => decodePng(Buffer.from(b64, "base64"));
const white = (m: RgbImage, x: number, y: number) => m.data[3 * (y * m.width + x)] === 255;

/** Mouse events at image pixel (x, y) of the canvas (shown scaled): the pixel's centre. */
async function at(page: Page, x: number, y: number): Promise<[number, number]> {
  await page.locator("#canvas").scrollIntoViewIfNeeded();
  const box = (await page.locator("#canvas").boundingBox())!;
  const [w, h] = await page.$eval("#canvas", (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
  return [box.x + (x + 0.5) * box.width / w, box.y + (y + 0.5) * box.height / h];
}

async function submitAndWait(page: Page, cards: number): Promise<Sent> {
  const sent = nextRequest(page);
  await page.click("#generate");
  const body = await sent;
  await page.waitForFunction((n) => document.querySelectorAll("#gallery .card").length >= n, cards);
  return body;
}

test("web page inpainting: paint the mask by mouse, send it to /sdapi/v1/img2img, get the fixture's image", { skip: SKIP, timeout: 180_000 }, async () => {
  const { page, consoleErrors: errors } = await openReadyPage(served.browser, served.server.url + "/", { width: 1280, height: 900 });
  assert.ok(!(await page.isVisible("#image-panel")), "text to image first");
  await page.check("#mode-img");
  assert.ok(await page.isVisible("#image-panel"));
  assert.ok(!(await page.isVisible("#size")), "the image sets the size");
  await page.setInputFiles("#init-file", { name: "init.png", mimeType: "image/png", buffer: fx.initPng });
  await page.waitForSelector("#canvas:not(.hidden)");

  await page.fill("#prompt", fx.prompt);
  await page.fill("#negative", fx.negativePrompt ?? "");
  await page.fill("#steps", String(fx.steps));
  await page.fill("#guidance", String(fx.guidanceScale));
  await page.fill("#seed", String(fx.seed));
  await page.selectOption("#scheduler", "Euler");
  await page.$eval("#strength", (e, v) => { (e as HTMLInputElement).value = v; e.dispatchEvent(new Event("input")); }, String(fx.strength));
  assert.equal(await page.textContent("#strength-value"), "1.00");
  await page.fill("#mask-blur", "0");
  await page.selectOption("#fill", "1");

  // the fixture's rect mask, x 10..25, y 8..23: one square 16-pixel dab at (18, 16) ... a stroke to itself
  await page.selectOption("#brush-shape", "square");
  await page.$eval("#brush", (e) => { (e as HTMLInputElement).value = "16"; e.dispatchEvent(new Event("input")); });
  await page.mouse.move(...(await at(page, 18, 16)));
  await page.mouse.down();
  await page.mouse.move(...(await at(page, 18, 16)), { steps: 2 });
  await page.mouse.up();
  await page.screenshot({ path: join(OUT, "server-web-inpaint-mask.png"), fullPage: true });

  const body = await submitAndWait(page, 1);
  const mask = png(body.mask!);
  assert.deepEqual([mask.width, mask.height], [fx.width, fx.height]);
  assert.deepEqual(Array.from(mask.data), Array.from(fx.mask.data), "the painted mask is the fixture's rect");
  assert.deepEqual(Array.from(png(body.init_images[0]).data), Array.from(fx.init.data), "the init image as loaded");
  assert.equal(body.denoising_strength, 1);
  assert.equal(body.mask_blur, 0);
  assert.equal(body.inpainting_fill, 1);
  assert.equal(body.inpaint_full_res, false);
  const src = await page.$eval("#gallery .card img", (i) => (i as HTMLImageElement).src);
  const result = Buffer.from(src.replace(/^data:image\/png;base64,/, ""), "base64");
  assert.ok(levelDiff(result, fx.a1111Images) <= 1, `the page's result vs the diffusers fixture: ${levelDiff(result, fx.a1111Images)} levels`);
  assert.match(await page.textContent("#gallery .card pre") ?? "", /Denoising strength: 1, Masked content: original/);
  assert.match(await page.textContent("#progress-text") ?? "", /^done in [\d.]+ s · seed 0$/);

  // a round stroke along row 4, then the eraser over its middle, then clear + invert
  await page.selectOption("#brush-shape", "round");
  await page.$eval("#brush", (e) => { (e as HTMLInputElement).value = "3"; e.dispatchEvent(new Event("input")); });
  await page.click("#clear-mask");
  await page.mouse.move(...(await at(page, 2, 4)));
  await page.mouse.down();
  await page.mouse.move(...(await at(page, 16, 4)), { steps: 5 });
  await page.mouse.move(...(await at(page, 28, 4)), { steps: 5 });
  await page.mouse.up();
  await page.check("#eraser");
  await page.mouse.move(...(await at(page, 15, 4)));
  await page.mouse.down();
  await page.mouse.move(...(await at(page, 16, 4)), { steps: 2 });
  await page.mouse.up();
  await page.uncheck("#eraser");
  await page.fill("#steps", "1");
  const stroke = png((await submitAndWait(page, 2)).mask!);
  for (const x of [2, 6, 10, 22, 26, 28]) assert.ok(white(stroke, x, 4), `painted at (${x}, 4)`);
  assert.ok(!white(stroke, 15, 4) && !white(stroke, 16, 4), "erased in the middle");
  for (const [x, y] of [[2, 10], [16, 20], [30, 30]]) assert.ok(!white(stroke, x, y), `not painted at (${x}, ${y})`);

  await page.click("#clear-mask");
  await page.click("#invert-mask");
  const inverted = png((await submitAndWait(page, 3)).mask!);
  assert.ok(inverted.data.every((v) => v === 255), "clear + invert: all white");

  // outpainting: 8 pixels on the right, nothing painted: the new columns white, the image's edge stretched into them
  await page.click("#invert-mask");
  await page.fill("#pad-right", "8");
  await page.dispatchEvent("#pad-right", "input");
  const out = await submitAndWait(page, 4);
  const [init, m] = [png(out.init_images[0]), png(out.mask!)];
  assert.deepEqual([init.width, init.height, m.width, m.height], [40, 32, 40, 32]);
  for (let y = 0; y < 32; y++) for (let x = 0; x < 40; x++) assert.equal(white(m, x, y), x >= 32, `mask at (${x}, ${y})`);
  for (let y = 0; y < 32; y++) for (let k = 0; k < 3; k++) assert.equal(init.data[3 * (y * 40 + 36) + k], fx.init.data[3 * (y * 32 + 31) + k], "edge colour");
  await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>("#gallery .card img")).every((i) => i.complete && i.naturalWidth > 0));
  assert.equal(await page.$eval("#gallery .card img", (i) => (i as HTMLImageElement).naturalWidth), 40);
  await page.screenshot({ path: join(OUT, "server-web-inpaint.png"), fullPage: true });

  // a dropped file replaces the image; without a mask it is plain img2img
  await page.fill("#pad-right", "0");
  await page.dispatchEvent("#pad-right", "input");
  await page.evaluate(async (b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
    document.getElementById("drop")!.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, fx.initPng.toString("base64"));
  await page.waitForFunction(() => (document.getElementById("canvas") as HTMLCanvasElement).width === 32);
  const plain = await submitAndWait(page, 5);
  assert.equal(plain.mask, undefined, "nothing painted: no mask");

  // "Edit this image": the newest result becomes the image to paint on
  await page.fill("#pad-right", "8");
  await page.dispatchEvent("#pad-right", "input");
  await page.click("#mode-txt");
  await page.click("#gallery .card:nth-child(2) .edit");
  await page.waitForFunction(() => (document.getElementById("canvas") as HTMLCanvasElement).width === 40 && (document.getElementById("mode-img") as HTMLInputElement).checked);
  assert.equal(await page.inputValue("#pad-right"), "0", "the margins start over");

  // a server error is shown (an all-black mask cannot happen from the page: a bad strength can)
  await page.$eval("#strength", (e) => { (e as HTMLInputElement).min = "0"; (e as HTMLInputElement).value = "0"; });
  await page.click("#generate");
  await page.waitForFunction(() => /denoising_strength/.test(document.getElementById("status")!.textContent ?? ""));
  // a phone: the image mode fits the screen too
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  await page.screenshot({ path: join(OUT, "server-web-inpaint-phone.png"), fullPage: true });
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
});
