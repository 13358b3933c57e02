/**
 * A small HTTP toolkit on node:http: routes by method and path pattern ("/v1/jobs/:id"), JSON
 * bodies read within a size limit (malformed JSON is a 400), JSON answers, and every thrown
 * error sent as `{error: {...}}` with its status while the server goes on.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { HttpError, invalid, toHttpError } from "./errors.js";
import { EXPOSED_HEADERS, type AccessPolicy } from "./access.js";
import { isMultipartType } from "./multipart.js";

export interface Ctx<S = unknown> {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  state: S;
}

export type Handler<S> = (ctx: Ctx<S>) => Promise<void> | void;

interface Route<S> {
  method: string;
  /** Takes multipart/form-data bodies (file uploads) besides JSON. */
  multipart: boolean;
  /** Takes JSON sent as text/plain or without a Content-Type from non-browser clients (see on()). */
  plainJson: boolean;
  pattern: RegExp;
  keys: string[];
  handler: Handler<S>;
}

export class Router<S> {
  private readonly routes: Route<S>[] = [];

  constructor(private readonly state: S, private readonly log: (line: string) => void = () => {}, private readonly access?: AccessPolicy) {}

  /**
   * `multipart`: the route reads multipart/form-data bodies itself (see multipart.ts). `plainJson`: a
   * JSON body labelled text/plain or not labelled at all is read too, from a request without an Origin
   * header only (ComfyUI's clients: SillyTavern posts its workflow as a bare string, which fetch labels
   * text/plain); a browser names the page behind every cross-origin POST, so no page can use this.
   */
  on(method: string, path: string, handler: Handler<S>, opts: { multipart?: boolean; plainJson?: boolean } = {}): this {
    const keys: string[] = [];
    const source = path.split("/").map((part) => {
      if (part.startsWith(":")) { keys.push(part.slice(1)); return "([^/]+)"; }
      if (part === "*") { keys.push("rest"); return "(.*)"; }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }).join("/");
    this.routes.push({ method, multipart: opts.multipart ?? false, plainJson: opts.plainJson ?? false, pattern: new RegExp(`^${source}$`), keys, handler });
    return this;
  }

  private takesMultipart(method: string | undefined, path: string): boolean {
    return this.routes.some((r) => r.multipart && r.method === method && r.pattern.test(path));
  }

  private takesPlainJson(req: IncomingMessage, path: string): boolean {
    return isPlainJson(req) && this.routes.some((r) => r.plainJson && r.method === req.method && r.pattern.test(path));
  }

  /** The request listener for http.createServer. */
  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      sendError(res, invalid("bad request URL", "invalid_url"));
      return;
    }
    try {
      if (this.access) {
        const cors = this.access.check(req);
        const preflight = this.access.preflight(req, cors);
        if (preflight) {
          req.resume();
          res.writeHead(204, preflight).end();
          return;
        }
        if (cors["Access-Control-Allow-Origin"]) for (const [k, v] of Object.entries({ ...cors, "Access-Control-Expose-Headers": EXPOSED_HEADERS })) res.setHeader(k, v);
      }
      // a body is JSON or nothing: a form or text/plain body is what a cross-site page can send without asking
      // (file uploads are multipart, on the routes that take them: a cross-site page cannot reach those either,
      // since a browser sends Origin with every cross-site POST and the access check above refuses it)
      const type = req.headers["content-type"];
      if (hasBody(req) && !isJsonType(type) && !(isMultipartType(type) && this.takesMultipart(req.method, url.pathname)) && !this.takesPlainJson(req, url.pathname)) throw notJson(req);
      let allowed: string[] = [];
      for (const r of this.routes) {
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        if (r.method !== req.method && !(r.method === "GET" && req.method === "HEAD")) { allowed.push(r.method); continue; }
        const params: Record<string, string> = {};
        r.keys.forEach((k, i) => { params[k] = decodeParam(m[i + 1]); });
        await r.handler({ req, res, url, params, state: this.state });
        return;
      }
      allowed = [...new Set(allowed)];
      if (allowed.length) {
        throw new HttpError(405, `${req.method} is not allowed on ${url.pathname} (use ${allowed.join(", ")})`, "invalid_request_error", "method_not_allowed", undefined, { Allow: allowed.join(", ") });
      }
      throw new HttpError(404, `no such endpoint: ${req.method} ${url.pathname}`, "not_found_error", "not_found");
    } catch (e) {
      const err = toHttpError(e);
      if (err.status >= 500) this.log(`error: ${req.method} ${url.pathname}: ${(e as Error)?.stack ?? e}`);
      sendError(res, err);
    }
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store", ...headers });
  res.end(text);
}

export function sendBytes(res: ServerResponse, status: number, data: Buffer | string, type: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(data), ...headers });
  res.end(data);
}

export function sendError(res: ServerResponse, e: HttpError): void {
  if (res.headersSent) { res.destroy(); return; }
  sendJson(res, e.status, e.toJSON(), e.headers);
}

/** A path segment decoded; a malformed %-escape is the client's 400, not a 500. */
function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalid(`malformed %-escape in the URL path: ${JSON.stringify(s.slice(0, 100))}`, "invalid_url");
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return (length !== undefined && length !== "0") || req.headers["transfer-encoding"] !== undefined;
}

/** application/json, or a +json type, with any parameters (charset). */
export function isJsonType(type: string | undefined): boolean {
  return type !== undefined && /^\s*application\/([\w.-]+\+)?json\s*(;|$)/i.test(type);
}

/** A body a plainJson route reads as JSON: text/plain or unlabelled, from a client that sent no Origin. */
function isPlainJson(req: IncomingMessage): boolean {
  const type = req.headers["content-type"];
  return req.headers.origin === undefined && (type === undefined || /^\s*text\/plain\s*(;|$)/i.test(type));
}

/** 415, after draining the body so that the connection can go on. */
function notJson(req: IncomingMessage): HttpError {
  req.resume();
  const type = req.headers["content-type"];
  return new HttpError(415, `send the request body as JSON with Content-Type: application/json (got ${type ? JSON.stringify(type) : "no Content-Type"}; curl: -H 'Content-Type: application/json')`,
    "invalid_request_error", "unsupported_media_type");
}

/** The body as bytes: 413 past maxBytes (from Content-Length before reading, or while reading), 400 when cut off. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) {
    req.resume();
    throw new HttpError(413, `the request body is ${declared} bytes, above the limit of ${maxBytes}`, "invalid_request_error", "body_too_large", undefined, { Connection: "close" });
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0, over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return; // drained, not kept
      size += chunk.length;
      if (size > maxBytes) {
        over = true;
        chunks.length = 0;
        reject(new HttpError(413, `the request body is above the limit of ${maxBytes} bytes`, "invalid_request_error", "body_too_large", undefined, { Connection: "close" }));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
    req.on("close", () => reject(new HttpError(400, "the request body was cut off", "invalid_request_error", "incomplete_body")));
  });
}

/**
 * The body as JSON: 415 unless its Content-Type is JSON (or, with `plain`, the route's text/plain
 * exception above), 413 past maxBytes, 400 for an empty or malformed body.
 */
export async function readJson(req: IncomingMessage, maxBytes: number, opts: { plain?: boolean } = {}): Promise<unknown> {
  if (!isJsonType(req.headers["content-type"]) && !(opts.plain && isPlainJson(req))) throw notJson(req);
  const text = (await readBody(req, maxBytes)).toString("utf8");
  if (text.trim() === "") throw invalid("the request body is empty; send a JSON object", "invalid_json");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw invalid(`malformed JSON in the request body: ${(e as Error).message}`, "invalid_json");
  }
}

/** The server's own address for absolute URLs (from the Host header). */
export function baseUrl(req: IncomingMessage): string {
  const host = req.headers.host && /^[A-Za-z0-9.[\]:-]+$/.test(req.headers.host) ? req.headers.host : "127.0.0.1";
  return `http://${host}`;
}
