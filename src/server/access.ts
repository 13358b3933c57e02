/**
 * Who may talk to the server from a browser. Three checks, before any route runs:
 *
 * - Host allow-list (DNS rebinding): a page on attacker.example whose name later resolves to
 *   127.0.0.1 sends `Host: attacker.example`; only loopback names, the address the server binds to,
 *   the machine's own addresses when it binds a wildcard, and `--host-allow` names are accepted.
 * - Origin (cross-site requests): a browser names the page behind every cross-origin request and
 *   every POST/DELETE; a request whose Origin is neither this server itself, a `--host-allow` name nor
 *   a `--cors-allow-origins` entry is refused, so a page the user visits cannot queue or cancel jobs.
 * - CORS (as AUTOMATIC1111's --cors-allow-origins): off unless origins are listed; then listed
 *   origins get Access-Control-Allow-Origin and their preflight OPTIONS is answered.
 *
 * Non-browser clients (curl, the openai SDK, A1111 scripts) send no Origin and a loopback Host.
 */
import { networkInterfaces } from "node:os";
import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.js";

export interface AccessOptions {
  /** The address the server listens on (its name is allowed unless it is a wildcard). */
  host?: string;
  /** --host-allow: more Host names ("*": any Host). */
  hostAllow?: string[];
  /** --cors-allow-origins: origins ("https://app.example:8080", "*": any) that get CORS headers. */
  corsAllowOrigins?: string[];
}

const LOOPBACK = ["localhost", "127.0.0.1", "[::1]"];
const WILDCARDS = new Set(["", "0.0.0.0", "::", "[::]"]);

/** A host name as URL.hostname writes it (lower case, IPv6 in brackets). */
function hostName(name: string): string {
  const n = name.trim().toLowerCase();
  if (n.includes(":") && !n.startsWith("[")) return `[${n}]`;
  return n;
}

/** "scheme://host[:port]" as browsers send it in Origin (no trailing slash, default port left out). */
function normalizeOrigin(origin: string): string {
  if (origin === "*") return origin;
  try {
    return new URL(origin).origin;
  } catch {
    throw new Error(`--cors-allow-origins: ${JSON.stringify(origin)} is not an origin like https://app.example:8080`);
  }
}

export class AccessPolicy {
  private readonly anyHost: boolean;
  private readonly hosts = new Set<string>();
  /** --host-allow names: trusted as Origin hosts too (a reverse proxy's public name). */
  private readonly extraHosts = new Set<string>();
  private readonly corsOrigins: Set<string>;

  constructor(opts: AccessOptions = {}) {
    for (const h of LOOPBACK) this.hosts.add(h);
    const bind = hostName(opts.host ?? "127.0.0.1");
    if (!WILDCARDS.has(bind)) this.hosts.add(bind);
    else {
      // listening on every interface: the machine's own addresses are how the LAN reaches it, and an
      // address (unlike a name) cannot be rebound to point elsewhere
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) this.hosts.add(hostName(a.address.replace(/%.*$/, "")));
    }
    const extra = (opts.hostAllow ?? []).map((h) => h.trim()).filter(Boolean);
    this.anyHost = extra.includes("*");
    for (const h of extra) if (h !== "*") { this.hosts.add(hostName(h)); this.extraHosts.add(hostName(h)); }
    this.corsOrigins = new Set((opts.corsAllowOrigins ?? []).map((o) => o.trim()).filter(Boolean).map(normalizeOrigin));
  }

  get cors(): boolean { return this.corsOrigins.size > 0; }

  /**
   * Checks Host and Origin; returns the CORS headers this request's answer carries (none unless its
   * Origin is listed). Throws a 403 HttpError for a refused Host or Origin.
   */
  check(req: IncomingMessage): Record<string, string> {
    const host = req.headers.host;
    if (host !== undefined && !this.anyHost) {
      let name: string;
      try {
        name = new URL(`http://${host}`).hostname;
      } catch {
        throw forbidden(`bad Host header ${JSON.stringify(host)}`, "invalid_host");
      }
      if (!this.hosts.has(name)) {
        throw forbidden(`Host ${JSON.stringify(host)} is not allowed (a DNS-rebinding guard); start the server with --host-allow ${name.replace(/^\[|\]$/g, "")} to accept it`, "host_not_allowed");
      }
    }
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    if (this.corsOrigins.has("*") || this.corsOrigins.has(origin)) return { "Access-Control-Allow-Origin": origin, Vary: "Origin" };
    let o: URL | undefined;
    try { o = new URL(origin); } catch { /* "null" and other opaque origins */ }
    const sameOrigin = o !== undefined && host !== undefined && o.host === host.toLowerCase() && (o.protocol === "http:" || o.protocol === "https:");
    if (sameOrigin || (o !== undefined && this.extraHosts.has(o.hostname))) return {};
    throw forbidden(`cross-origin request from ${origin} refused; start the server with --cors-allow-origins ${origin} to allow that page`, "origin_not_allowed");
  }

  /** The answer to a CORS preflight (OPTIONS with Access-Control-Request-Method) from a listed origin. */
  preflight(req: IncomingMessage, cors: Record<string, string>): Record<string, string> | undefined {
    if (req.method !== "OPTIONS" || !cors["Access-Control-Allow-Origin"] || !req.headers["access-control-request-method"]) return undefined;
    return {
      ...cors,
      "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
      "Access-Control-Allow-Headers": String(req.headers["access-control-request-headers"] ?? "Content-Type, Authorization"),
      "Access-Control-Max-Age": "600",
    };
  }
}

const forbidden = (message: string, code: string) => new HttpError(403, message, "permission_error", code);

/** Headers a listed origin may read besides the CORS-safelisted ones. */
export const EXPOSED_HEADERS = "X-Job-Id, X-Seed, Retry-After, Location";
