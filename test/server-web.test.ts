/**
 * The web page at `/` in Debian's headless Chromium (playwright-core): fill the form, generate,
 * watch the progress bar move and the latent preview show, see the images land in the gallery,
 * reuse their settings; screenshots (desktop and phone) go to test-output/.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { serveTinyModel, TEST_OUTPUT } from "./helpers/served-model.js";
import { decodePng } from "../src/image/png.js";

const SKIP = BROWSER_SKIP;
const OUT = TEST_OUTPUT;

const served = serveTinyModel("server-web-", { skip: SKIP, browser: true, queueSize: 4 });

test("web page: fill the form, generate, watch progress and previews, get the images, reuse the settings", { skip: SKIP, timeout: 120000 }, async () => {
  const { page, consoleErrors } = await openReadyPage(served.browser, served.server.url + "/", { width: 1280, height: 900 });
  assert.match(await page.textContent("#model") ?? "", /tiny-ssd/);

  // the size presets: the model's default, the SDXL buckets, custom
  const sizes = await page.$$eval("#size option", (os) => os.map((o) => (o as HTMLOptionElement).value));
  for (const s of ["1024x1024", "1152x896", "896x1152", "1216x832", "832x1216", "1344x768", "768x1344", "1536x640", "640x1536", "custom"]) assert.ok(sizes.includes(s), s);
  assert.equal(await page.inputValue("#size"), "32x32", "the tiny model's default size is selected");

  await page.fill("#prompt", "a red cube on a wooden table");
  await page.fill("#negative", "blurry");
  await page.fill("#steps", "120");
  await page.fill("#guidance", "6");
  await page.click("#dice");
  assert.match(await page.inputValue("#seed"), /^\d+$/, "the dice draws a seed");
  await page.fill("#seed", "1234");
  await page.selectOption("#size", "custom");
  assert.ok(await page.isVisible("#width"));
  await page.fill("#width", "32");
  await page.fill("#height", "24");
  await page.selectOption("#scheduler", "Euler a");
  await page.fill("#count", "2");

  // record what the progress bar and its text show
  await page.evaluate(() => {
    const w = window as unknown as { seen: { pct: string[]; text: string[]; preview: number } };
    w.seen = { pct: [], text: [], preview: 0 };
    new MutationObserver(() => w.seen.pct.push(document.getElementById("progress")!.getAttribute("aria-valuenow")!))
      .observe(document.getElementById("progress")!, { attributes: true, attributeFilter: ["aria-valuenow"] });
    new MutationObserver(() => w.seen.text.push(document.getElementById("progress-text")!.textContent!))
      .observe(document.getElementById("progress-text")!, { childList: true, characterData: true, subtree: true });
    new MutationObserver(() => { if ((document.getElementById("preview") as HTMLImageElement).src.startsWith("data:image/png")) w.seen.preview++; })
      .observe(document.getElementById("preview")!, { attributes: true, attributeFilter: ["src"] });
  });
  await page.click("#generate");
  await page.waitForFunction(() => {
    const t = document.getElementById("progress-text")!.textContent ?? "";
    return /^step ([1-9]\d*)\/120/.test(t) && !t.startsWith("step 120/");
  });
  assert.ok(await page.isVisible("#cancel"), "a cancel button while it runs");
  await page.screenshot({ path: join(OUT, "server-web-running.png"), fullPage: true });
  await page.waitForSelector("#gallery .card img:nth-child(2)");
  await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>("#gallery .card img")).every((i) => i.complete && i.naturalWidth === 32));

  const seen = await page.evaluate(() => (window as unknown as { seen: { pct: string[]; text: string[]; preview: number } }).seen);
  const pcts = seen.pct.map(Number);
  assert.ok(pcts.some((p) => p > 0 && p < 100), `the bar moved through the middle: ${pcts.slice(0, 20)}`);
  assert.ok(new Set(pcts.filter((p) => p > 0 && p < 100)).size >= 2, "more than one step shown");
  assert.ok(seen.text.some((t) => /^step \d+\/120 · [\d.]+ s left$/.test(t)), `time left shown: ${seen.text.slice(0, 5)}`);
  assert.ok(seen.preview >= 1, "live latent previews");
  assert.equal(pcts.at(-1), 100);
  assert.match(await page.textContent("#progress-text") ?? "", /^done in [\d.]+ s · seed 1234$/);
  assert.ok(!(await page.isVisible("#cancel")));

  const params = await page.textContent("#gallery .card pre");
  assert.equal(params, "a red cube on a wooden table\nNegative prompt: blurry\nSteps: 120, Sampler: Euler a, CFG scale: 6, Seed: 1234, Size: 32x24, Model: tiny-ssd");
  const links = await page.$$eval("#gallery .card a.download", (as) => as.map((a) => ({ href: (a as HTMLAnchorElement).href, name: (a as HTMLAnchorElement).download })));
  assert.equal(links.length, 2);
  assert.equal(links[0].name, "ssd1b-1234-0.png");
  const png = Buffer.from(await (await fetch(links[1].href)).arrayBuffer());
  assert.equal(decodePng(png).height, 24);
  await page.screenshot({ path: join(OUT, "server-web.png"), fullPage: true });

  // reuse these settings
  await page.fill("#prompt", "something else");
  await page.fill("#seed", "");
  await page.selectOption("#size", "1024x1024");
  await page.click("#gallery .card .reuse");
  assert.equal(await page.inputValue("#prompt"), "a red cube on a wooden table");
  assert.equal(await page.inputValue("#negative"), "blurry");
  assert.equal(await page.inputValue("#seed"), "1234");
  assert.equal(await page.inputValue("#steps"), "120");
  assert.equal(await page.inputValue("#size"), "custom");
  assert.equal(await page.inputValue("#height"), "24");
  assert.equal(await page.inputValue("#scheduler"), "Euler a");
  assert.equal(await page.inputValue("#count"), "2");

  // a bad request shows the server's message
  await page.fill("#steps", "0");
  await page.evaluate(() => (document.getElementById("steps") as HTMLInputElement).removeAttribute("min"));
  await page.click("#generate");
  await page.waitForFunction(() => /steps must be in/.test(document.getElementById("status")!.textContent ?? ""));

  // a phone: one column, nothing wider than the screen
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  const [formBox, galleryBox] = [await page.locator("#form").boundingBox(), await page.locator("#gallery").boundingBox()];
  assert.ok(formBox && galleryBox && galleryBox.y >= formBox.y + formBox.height - 1, "the gallery goes below the form");
  await page.screenshot({ path: join(OUT, "server-web-phone.png"), fullPage: true });
  assert.deepEqual(consoleErrors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
});
