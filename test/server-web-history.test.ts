/**
 * The web page people keep open, in headless Chromium: the history of the server's stored images
 * (survives a reload, paged, reuse / send to img2img, hostile offset/limit refused), the queue view
 * with another client's jobs, TAESD full-size previews, the lightbox, and a cancel shown as "cancelled".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { type Page } from "playwright-core";
import { BROWSER_SKIP, openReadyPage } from "./helpers/browser.js";
import { serveTinyModel, TEST_OUTPUT } from "./helpers/served-model.js";

const SKIP = BROWSER_SKIP;
const OUT = TEST_OUTPUT;

const served = serveTinyModel("server-web-history-", { skip: SKIP, browser: true, taesd: true, queueSize: 8 });

async function api(path: string, body?: unknown, method = body === undefined ? "GET" : "POST"): Promise<{ status: number; json: any }> {
  const res = await fetch(served.server.url + path, { method, headers: { "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function openPage(width = 1280): Promise<{ page: Page; errors: string[] }> {
  const { page, consoleErrors: errors } = await openReadyPage(served.browser, served.server.url + "/", { width, height: 900 });
  return { page, errors };
}

const historyPrompts = (page: Page) => page.$$eval("#history .card pre", (ps) => ps.map((p) => (p.textContent ?? "").split("\n")[0]));

test("history route: newest first, paged, with each image's parameters; hostile offset/limit refused", { skip: SKIP, timeout: 120000 }, async () => {
  for (const [i, prompt] of ["first apple", "second pear", "third plum"].entries()) {
    const r = await api("/sdapi/v1/txt2img", { prompt, steps: 2, seed: 100 + i, width: 32, height: 32 });
    assert.equal(r.status, 200);
  }
  const all = await api("/v1/history?limit=100");
  assert.equal(all.status, 200);
  assert.ok(all.json.total >= 3);
  const top = all.json.items.slice(0, 3);
  assert.deepEqual(top.map((it: any) => it.fields.Prompt), ["third plum", "second pear", "first apple"]);
  assert.equal(top[0].fields.Seed, "102");
  assert.equal(top[0].fields.Steps, "2");
  assert.equal(top[0].width, 32);
  assert.match(top[0].parameters, /^third plum\nSteps: 2, Sampler: /);
  assert.match(top[0].url, /^\/files\/[A-Za-z0-9]+-0\.png$/);
  assert.equal((await fetch(served.server.url + top[0].url)).status, 200);

  // a batch: newest job first, its images in order
  assert.equal((await api("/sdapi/v1/txt2img", { prompt: "a batch", steps: 2, seed: 9, width: 32, height: 32, batch_size: 2 })).status, 200);
  const batch = (await api("/v1/history?limit=2")).json.items;
  assert.deepEqual(batch.map((it: any) => [it.fields.Prompt, it.fields.Seed, it.name.slice(-6)]), [["a batch", "9", "-0.png"], ["a batch", "10", "-1.png"]]);
  const page2 = await api("/v1/history?offset=3&limit=1");
  for (const it of batch) served.server.state.files.delete(it.name); // the page test below counts the three
  assert.deepEqual([page2.json.offset, page2.json.limit, page2.json.items.length], [3, 1, 1]);
  assert.equal(page2.json.items[0].name, top[1].name);
  const past = await api("/v1/history?offset=1000000");
  assert.equal(past.status, 200);
  assert.deepEqual(past.json.items, []);

  for (const q of ["offset=-1", "limit=0", "limit=101", "limit=1e2", "offset=0x10", "offset=1.5", "limit=%2e%2e%2f", "offset=../../etc/passwd",
    "offset=1&offset=2", "limit=99999999999999999999", "offset=%00", "limit= 5", "offset=+1"]) {
    const r = await api("/v1/history?" + q);
    assert.equal(r.status, 400, q);
    assert.match(r.json.error.message, /must be an integer in \[/, q);
  }
  // the file route keeps refusing what is no stored name
  for (const name of ["..%2f..%2fetc%2fpasswd", "%2e%2e%2fx", ".hidden"]) assert.equal((await fetch(served.server.url + "/files/" + name)).status, 404, name);
});

test("web page: the history survives a reload, pages, reuses settings, sends to img2img; the lightbox", { skip: SKIP, timeout: 120000 }, async () => {
  const { page, errors } = await openPage();
  await page.waitForSelector("#history .card");
  const shown = await historyPrompts(page);
  assert.deepEqual(shown.slice(0, 3), ["third plum", "second pear", "first apple"]);

  // a job made on this page goes on top of the history
  await page.fill("#prompt", "made on the page");
  await page.fill("#steps", "2");
  await page.fill("#seed", "77");
  await page.click("#generate");
  await page.waitForSelector("#gallery .card img");
  await page.waitForFunction(() => (document.querySelector("#history .card pre")?.textContent ?? "").startsWith("made on the page"));

  // a reload keeps it (it is the server's)
  await page.reload();
  await page.waitForSelector('body[data-ready="1"]');
  assert.equal(await page.locator("#gallery .card").count(), 0, "the session's gallery starts empty");
  assert.deepEqual((await historyPrompts(page)).slice(0, 4), ["made on the page", "third plum", "second pear", "first apple"]);
  assert.match(await page.textContent("#history-count") ?? "", /^\d+ images$/);

  // paged: two at a time, "Show more" fetches the next ones
  await page.evaluate(() => {
    const w = window as unknown as { hist: { offset: number; limit: number; names: object }; loadHistory: (r: boolean) => Promise<void> };
    document.getElementById("history")!.textContent = "";
    w.hist = { offset: 0, limit: 2, names: {} };
    return w.loadHistory(true);
  });
  assert.deepEqual(await historyPrompts(page), ["made on the page", "third plum"]);
  assert.ok(await page.isVisible("#history-more"));
  await page.click("#history-more");
  await page.waitForFunction(() => document.querySelectorAll("#history .card").length === 4);
  assert.deepEqual(await historyPrompts(page), ["made on the page", "third plum", "second pear", "first apple"]);

  // reuse: the PNG's parameters fill the form
  await page.fill("#prompt", "");
  await page.locator("#history .card", { hasText: "third plum" }).locator(".reuse").click();
  assert.equal(await page.inputValue("#prompt"), "third plum");
  assert.equal(await page.inputValue("#seed"), "102");
  assert.equal(await page.inputValue("#steps"), "2");

  // click to enlarge; Escape closes
  const thumb = page.locator("#history .card img").first();
  await thumb.click();
  await page.waitForFunction(() => (document.getElementById("lightbox") as HTMLDialogElement).open);
  assert.equal(await page.getAttribute("#lightbox-img", "src"), served.server.url + await thumb.getAttribute("src"));
  await page.waitForFunction(() => (document.getElementById("lightbox-img") as HTMLImageElement).getBoundingClientRect().width > 300);
  const box = await page.locator("#lightbox-img").boundingBox();
  assert.ok(box && box.width > 300, `shown large (${box?.width}px)`);
  await page.screenshot({ path: join(OUT, "server-web-lightbox.png") });
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => !(document.getElementById("lightbox") as HTMLDialogElement).open);

  // send to img2img / inpaint
  await page.locator("#history .card", { hasText: "second pear" }).locator(".edit").click();
  await page.waitForFunction(() => !document.getElementById("canvas")!.classList.contains("hidden"));
  assert.ok(await page.isChecked("#mode-img"));
  assert.equal(await page.evaluate(() => (document.getElementById("canvas") as HTMLCanvasElement).width), 32);
  await page.screenshot({ path: join(OUT, "server-web-history.png"), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
});

test("web page: the queue view shows another client's jobs; TAESD full-size previews; a cancel shows 'cancelled'", { skip: SKIP, timeout: 180000 }, async () => {
  const { page, errors } = await openPage(390);
  // a second client: one long job running, one waiting behind it
  const long = await api("/v1/jobs", { prompt: "another client's long job", steps: 1000, width: 32, height: 32, seed: 5 });
  const waiting = await api("/v1/jobs", { prompt: "another client's waiting job", steps: 2, width: 32, height: 32, seed: 6 });
  assert.equal(long.status, 202);
  await page.waitForSelector(`#queue li[data-id="${long.json.id}"][data-status="running"]`);
  await page.waitForSelector(`#queue li[data-id="${waiting.json.id}"][data-status="queued"]`);
  assert.equal(await page.textContent(`#queue li[data-id="${waiting.json.id}"] .state`), "queued #1");
  assert.equal(await page.textContent(`#queue li[data-id="${long.json.id}"] .prompt`), "another client's long job");
  await page.waitForFunction((id) => /^running \d+\/1000$/.test(document.querySelector(`#queue li[data-id="${id}"] .state`)?.textContent ?? ""), long.json.id);
  const q = await api("/v1/queue");
  assert.deepEqual(q.json.jobs.map((j: any) => [j.prompt, j.status, j.position]), [["another client's long job", "running", null], ["another client's waiting job", "queued", 0]]);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
  await page.screenshot({ path: join(OUT, "server-web-queue-phone.png"), fullPage: true });

  // the other client cancels its long job: it leaves the view, the waiting one runs and lands in the history
  await api(`/v1/jobs/${long.json.id}`, undefined, "DELETE");
  await page.waitForFunction(() => (document.querySelector("#history .card pre")?.textContent ?? "").startsWith("another client's waiting job"));
  await page.waitForFunction(() => document.querySelectorAll("#queue li").length === 0);
  assert.ok(await page.isVisible("#queue-empty"));

  // this page's own long job: TAESD previews at the image's full size, then cancel
  await page.evaluate(() => {
    const w = window as unknown as { previewWidths: number[] };
    w.previewWidths = [];
    document.getElementById("preview")!.addEventListener("load", (e) => w.previewWidths.push((e.target as HTMLImageElement).naturalWidth));
  });
  await page.fill("#prompt", "cancel me");
  await page.fill("#steps", "1000");
  await page.click("#generate");
  await page.waitForFunction(() => (window as unknown as { previewWidths: number[] }).previewWidths.includes(32));
  await page.waitForSelector("#queue li.mine");
  await page.click("#cancel");
  await page.waitForFunction(() => document.getElementById("progress-text")!.textContent === "cancelled");
  assert.equal(await page.textContent("#status"), "", "no error shown");
  assert.ok(await page.locator("#progress-text.cancelled").isVisible());
  assert.ok(!(await page.isVisible("#cancel")));
  assert.ok(!(await page.isDisabled("#generate")));
  assert.deepEqual(errors, []);
  await page.close();
});
