/** Debian's headless Chromium through playwright-core, for the web-page tests. */
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { NO_FIXTURES } from "./fixtures.js";

export const CHROMIUM = "/usr/bin/chromium";
/** `{ skip }` for browser tests: the fixtures and chromium are needed. */
export const BROWSER_SKIP: string | false = NO_FIXTURES || (existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install -y chromium)`);

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: 60000,
  });
}

/**
 * A page on `url` once the web page says it is ready, collecting console errors and page errors;
 * `beforeGoto` adds listeners (requests to watch) before the page loads.
 */
export async function openReadyPage(browser: Browser, url: string, viewport = { width: 1280, height: 900 }, beforeGoto?: (page: Page) => void): Promise<{ page: Page; consoleErrors: string[] }> {
  const page = await browser.newPage({ viewport });
  const consoleErrors: string[] = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.setDefaultTimeout(60000);
  beforeGoto?.(page);
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]');
  return { page, consoleErrors };
}
