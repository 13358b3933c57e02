/**
 * The web page's A1111 settings in headless Chromium: model / VAE / schedule type / hires fix pickers
 * sent as A1111 txt2img fields (the result is the hires size, its parameters say so), an interrupt
 * shown as cancelled with the image so far, "send to img2img" carrying the schedule type, and a PNG
 * dropped on the page filling the form from /sdapi/v1/png-info.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { serveTinyModel, TEST_OUTPUT } from "./helpers/served-model.js";

const SKIP = BROWSER_SKIP;
const OUT = TEST_OUTPUT;

const served = serveTinyModel("server-web-pickers-", { skip: SKIP, browser: true, queueSize: 8 });

const values = (sel: string) => (el: Element[]) => el.map((o) => (o as HTMLOptionElement).value);

test("web page: model, VAE, schedule type and hires fix as A1111 fields; interrupt shows cancelled; send to img2img; drop a PNG to read it", { skip: SKIP, timeout: 180000 }, async () => {
  const sent: { url: string; body: any }[] = [];
  const { page, consoleErrors: errors } = await openReadyPage(served.browser, served.server.url + "/", { width: 1280, height: 900 }, (page) => {
    page.on("request", (r) => { if (r.method() === "POST" && /\/(sdapi\/v1\/(txt2img|img2img)|v1\/jobs)$/.test(r.url())) sent.push({ url: new URL(r.url()).pathname, body: r.postDataJSON() }); });
  });

  // the lists come from the A1111 routes
  assert.deepEqual(await page.$$eval("#sd-model option", values("")), ["tiny-ssd"]);
  assert.equal(await page.inputValue("#sd-model"), "tiny-ssd");
  assert.deepEqual(await page.$$eval("#sd-vae option", values("")), [""]);
  const schedules = await page.$$eval("#schedule-type option", values(""));
  assert.ok(schedules[0] === "" && schedules.includes("Karras"), String(schedules));
  const upscalers = await page.$$eval("#hr-upscaler option", values(""));
  assert.ok(upscalers.includes("Latent") && upscalers.includes("Latent (nearest)") && upscalers.includes("Lanczos"), String(upscalers));
  assert.ok(await page.isHidden("#hires-panel"));

  // plain settings still go to /v1/jobs
  await page.fill("#prompt", "plain");
  await page.fill("#steps", "2");
  await page.click("#generate");
  await page.waitForSelector("#gallery .card");
  assert.equal(sent.at(-1)!.url, "/v1/jobs");

  // hires fix + schedule type: A1111 txt2img
  await page.fill("#prompt", "a hires cube");
  await page.fill("#seed", "42");
  await page.selectOption("#scheduler", "Euler");
  await page.selectOption("#schedule-type", "Karras");
  await page.check("#enable-hr");
  assert.ok(await page.isVisible("#hires-panel"));
  await page.fill("#hr-scale", "2");
  await page.selectOption("#hr-upscaler", "Latent (nearest)");
  await page.fill("#hr-steps", "2");
  await page.fill("#hr-strength", "0.5");
  await page.click("#generate");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 2);
  const req = sent.at(-1)!;
  assert.equal(req.url, "/sdapi/v1/txt2img");
  assert.deepEqual(
    [req.body.prompt, req.body.seed, req.body.steps, req.body.sampler_name, req.body.scheduler, req.body.enable_hr, req.body.hr_scale, req.body.hr_upscaler, req.body.hr_second_pass_steps, req.body.denoising_strength, req.body.width, req.body.override_settings],
    ["a hires cube", 42, 2, "Euler", "Karras", true, 2, "Latent (nearest)", 2, 0.5, 32, { sd_model_checkpoint: "tiny-ssd" }]);
  await page.waitForFunction(() => (document.querySelector("#gallery .card img") as HTMLImageElement | null)?.naturalWidth === 64);
  const info = await page.textContent("#gallery .card pre") ?? "";
  assert.match(info, /Sampler: Euler Karras/);
  assert.match(info, /Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent \(nearest\)/);
  assert.match(await page.textContent("#progress-text") ?? "", /^done in [\d.]+ s · seed 42$/);
  await page.waitForFunction(() => document.querySelectorAll("#queue li").length === 0);
  await page.screenshot({ path: join(OUT, "server-web-pickers.png"), fullPage: true });

  // an interrupt on the A1111 route: the image so far, shown as cancelled (not an error)
  await page.uncheck("#enable-hr");
  await page.fill("#steps", "1000");
  await page.click("#generate");
  await page.waitForFunction(() => /^step [1-9]\d*\/1000/.test(document.getElementById("progress-text")!.textContent ?? ""));
  await page.click("#cancel");
  await page.waitForFunction(() => document.getElementById("progress-text")!.textContent === "cancelled · kept the image so far");
  assert.equal(await page.textContent("#status"), "");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 3);

  // send the hires result to img2img: the request carries the schedule type
  await page.locator("#gallery .card", { hasText: "a hires cube" }).last().locator(".edit").click();
  await page.waitForFunction(() => (document.getElementById("canvas") as HTMLCanvasElement).width === 64);
  await page.fill("#steps", "4");
  await page.click("#generate");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 4);
  assert.equal(sent.at(-1)!.url, "/sdapi/v1/img2img");
  assert.equal(sent.at(-1)!.body.scheduler, "Karras");
  assert.equal(sent.at(-1)!.body.enable_hr, undefined);

  // drop a PNG made here on the page: the form takes its parameters
  const hiresUrl = await page.evaluate(async () => {
    const h = await (await fetch("/v1/history?limit=100")).json();
    return h.items.find((i: { fields: Record<string, string> }) => i.fields.Prompt === "a hires cube" && i.fields["Hires upscale"]).url as string;
  });
  await page.fill("#prompt", "");
  await page.fill("#seed", "");
  await page.selectOption("#schedule-type", "");
  const dt = await page.evaluateHandle(async (url) => {
    const blob = await (await fetch(url)).blob();
    const d = new DataTransfer();
    d.items.add(new File([blob], "dropped.png", { type: "image/png" }));
    return d;
  }, hiresUrl);
  await page.dispatchEvent("header", "dragover", { dataTransfer: dt });
  assert.ok(await page.evaluate(() => document.body.classList.contains("png-over")));
  await page.dispatchEvent("header", "drop", { dataTransfer: dt });
  await page.waitForFunction(() => (document.getElementById("prompt") as HTMLTextAreaElement).value === "a hires cube");
  assert.equal(await page.inputValue("#seed"), "42");
  assert.equal(await page.inputValue("#steps"), "2");
  assert.equal(await page.inputValue("#scheduler"), "Euler");
  assert.equal(await page.inputValue("#schedule-type"), "Karras");
  assert.ok(await page.isChecked("#enable-hr"));
  assert.equal(await page.inputValue("#hr-upscaler"), "Latent (nearest)");
  assert.equal(await page.inputValue("#hr-strength"), "0.5");
  assert.match(await page.textContent("#progress-text") ?? "", /parameters read from dropped\.png/);

  // phone width: nothing wider than the screen
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  await page.screenshot({ path: join(OUT, "server-web-pickers-phone.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});
