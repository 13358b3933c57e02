/**
 * What the web page polls to stay current while people keep it open:
 *
 *   GET /v1/history?offset=0&limit=24  the stored images (the file store behind /files/), newest first, each
 *                                      with its parameters text read from its PNG:
 *                                      { total, offset, limit, items: [{ name, url, created, width, height, parameters, fields }] }
 *   GET /v1/queue                      the running and queued jobs of every client of this server:
 *                                      { mode, jobs: [{ id, status, position, prompt, step, total_steps, progress, eta_seconds, created }] }
 *
 * History takes no names from the request (only two bounded integers), so it cannot reach outside the store.
 * With Redis, /v1/queue reads BullMQ's active and waiting jobs, so it shows the jobs of every front end.
 */
import { invalid } from "./errors.js";
import { sendJson, type Router } from "./http.js";
import type { AppState } from "./generation.js";
import type { StoredFile } from "./file-store.js";
import { readPngMeta, type PngMeta } from "./png-meta.js";
import { parseInfotext } from "./png-info.js";

export const HISTORY_MAX_LIMIT = 100;
const HISTORY_DEFAULT_LIMIT = 24;

/** A query integer in [0, max]: plain decimal digits only (no signs, exponents, hex or repeats). */
function queryInt(params: URLSearchParams, key: string, fallback: number, min: number, max: number): number {
  const all = params.getAll(key);
  if (all.length === 0) return fallback;
  const v = all[0];
  if (all.length > 1 || !/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) {
    throw invalid(`${key} must be an integer in [${min}, ${max}]`, "invalid_value", key);
  }
  return Number(v);
}

// the parameters of a stored file never change (a put replaces the object), so parse each once
const metaCache = new WeakMap<StoredFile, PngMeta | null>();
function metaOf(file: StoredFile): PngMeta | undefined {
  let m = metaCache.get(file);
  if (m === undefined) { m = file.type === "image/png" ? readPngMeta(file.data) ?? null : null; metaCache.set(file, m); }
  return m ?? undefined;
}

/** Newest job first, but a job's images (<job>-0.png, <job>-1.png, ...) in their own order. */
function newestFirst(files: [string, StoredFile][]): [string, StoredFile][] {
  const groups: [string, StoredFile][][] = [];
  const job = (name: string) => name.replace(/-\d+\.png$/, "");
  for (const f of files) {
    const last = groups.at(-1);
    if (last && job(last[0][0]) === job(f[0])) last.unshift(f); else groups.push([f]);
  }
  return groups.flat();
}

export function webRoutes(router: Router<AppState>): void {
  router.on("GET", "/v1/history", (ctx) => {
    const q = ctx.url.searchParams;
    const offset = queryInt(q, "offset", 0, 0, 1_000_000_000);
    const limit = queryInt(q, "limit", HISTORY_DEFAULT_LIMIT, 1, HISTORY_MAX_LIMIT);
    const files = newestFirst(ctx.state.files.list());
    const items = files.slice(offset, offset + limit).map(([name, file]) => {
      const meta = metaOf(file);
      const parameters = meta?.text.parameters ?? "";
      return {
        name, url: `/files/${name}`, created: new Date(file.created ?? file.at).toISOString(),
        width: meta?.width ?? null, height: meta?.height ?? null,
        parameters, fields: parameters ? parseInfotext(parameters) : {},
      };
    });
    sendJson(ctx.res, 200, { total: files.length, offset, limit, items }, { "Cache-Control": "no-store" });
  });

  router.on("GET", "/v1/queue", async (ctx) => {
    const { queue } = ctx.state;
    let position = 0;
    const jobs = (await queue.listActive()).map((j) => ({
      id: j.id, status: j.status,
      // place in line among the queued ones (0 = next); null for a running job
      position: j.status === "queued" ? position++ : null,
      prompt: j.prompt, step: j.step, total_steps: j.totalSteps,
      progress: j.totalSteps ? Math.round((1000 * j.step) / j.totalSteps) / 1000 : 0, eta_seconds: Math.round(j.etaSeconds * 10) / 10,
      created: new Date(j.createdAt).toISOString(),
    }));
    sendJson(ctx.res, 200, { mode: queue.mode, jobs }, { "Cache-Control": "no-store" });
  });
}
