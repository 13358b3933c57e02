/**
 * A small, strict multipart/form-data parser (RFC 7578 over RFC 2046) for the OpenAI image edit and
 * variation uploads. Written here rather than taken from a dependency: the uploads are a few fields
 * and one or two images, the whole body is read within the server's size limit first, and every
 * step is one linear Buffer.indexOf scan, so no body can make it stall or grow without bound.
 *
 * Refused with a 400 that says why: a bad or missing boundary, a body that does not start with the
 * first delimiter, a part without `Content-Disposition: form-data; name="..."`, header sections over
 * the limit or not ended by an empty line, more parts than the limit, and a missing close delimiter.
 */
import { invalid } from "./errors.js";

export interface MultipartLimits {
  /** The most parts (fields and files). */
  maxParts: number;
  /** The most bytes in one part's header section. */
  maxHeaderBytes: number;
  /** The most bytes of a non-file field's value. */
  maxFieldBytes: number;
}

export const DEFAULT_MULTIPART_LIMITS: MultipartLimits = { maxParts: 32, maxHeaderBytes: 2048, maxFieldBytes: 64 << 10 };

export interface Part {
  name: string;
  /** Set for file parts (possibly ""). */
  filename?: string;
  /** The part's Content-Type, lower-cased without parameters (absent: text/plain). */
  contentType?: string;
  data: Buffer;
}

const HEADER_END = Buffer.from("\r\n\r\n");
/** RFC 2046 bchars: 1 to 70 of these, not ending in a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

const bad = (why: string) => invalid(`malformed multipart/form-data body: ${why}`, "invalid_multipart");

/** Whether a Content-Type is multipart/form-data (any parameters). */
export function isMultipartType(type: string | undefined): boolean {
  return type !== undefined && /^\s*multipart\/form-data\s*(;|$)/i.test(type);
}

/**
 * A header value's `; key=value` parameters (token or quoted-string values, keys lower-cased).
 * Browsers escape `"` in names as %22 and keep backslashes; a quoted-pair is taken as its character.
 */
export function headerParams(value: string): { first: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const semi = value.indexOf(";");
  const first = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  let rest = semi < 0 ? "" : value.slice(semi + 1);
  const re = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))\s*(?:;|$)/;
  while (rest.trim() !== "") {
    const m = re.exec(rest);
    if (!m) throw bad(`cannot read the header parameters ${JSON.stringify(value.slice(0, 200))}`);
    const key = m[1].toLowerCase();
    if (params.has(key)) throw bad(`the parameter ${key} is given twice`);
    params.set(key, m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3]);
    rest = rest.slice(m[0].length);
  }
  return { first, params };
}

/** The boundary of a multipart/form-data Content-Type. */
export function boundaryOf(contentType: string | undefined): string {
  if (!isMultipartType(contentType)) throw invalid("send the body as multipart/form-data", "unsupported_media_type");
  const b = headerParams(contentType!).params.get("boundary");
  if (b === undefined) throw bad("the Content-Type has no boundary parameter");
  if (!BOUNDARY.test(b)) throw bad("the boundary must be 1 to 70 characters of RFC 2046's set, not ending in a space");
  return b;
}

/** One part's header section (the bytes between the delimiter line and the empty line). */
function readHeaders(text: string): { name: string; filename?: string; contentType?: string } {
  let disposition: string | undefined, type: string | undefined;
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw bad(`a part header line is not "Name: value": ${JSON.stringify(line.slice(0, 100))}`);
    const key = line.slice(0, colon).trim().toLowerCase(), value = line.slice(colon + 1).trim();
    if (key === "content-disposition") {
      if (disposition !== undefined) throw bad("a part has two Content-Disposition headers");
      disposition = value;
    } else if (key === "content-type") {
      if (type !== undefined) throw bad("a part has two Content-Type headers");
      type = value;
    } else if (key === "content-transfer-encoding" && !/^(binary|8bit|7bit)$/i.test(value)) {
      throw bad(`Content-Transfer-Encoding ${JSON.stringify(value)} is not supported (RFC 7578 deprecates it)`);
    }
  }
  if (disposition === undefined) throw bad("a part has no Content-Disposition header");
  const d = headerParams(disposition);
  if (d.first !== "form-data") throw bad(`a part's Content-Disposition must be form-data, got ${JSON.stringify(d.first)}`);
  const name = d.params.get("name");
  if (name === undefined || name === "") throw bad("a part's Content-Disposition has no name");
  return { name, filename: d.params.get("filename"), contentType: type === undefined ? undefined : headerParams(type).first };
}

/** The parts of a whole multipart/form-data body. */
export function parseMultipart(body: Buffer, contentType: string | undefined, limits: MultipartLimits = DEFAULT_MULTIPART_LIMITS): Part[] {
  const boundary = boundaryOf(contentType);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  // the first delimiter has no CRLF before it when the body starts with it (no preamble)
  let pos: number;
  if (body.subarray(0, delimiter.length - 2).equals(delimiter.subarray(2))) pos = delimiter.length - 2;
  else {
    const at = body.indexOf(delimiter);
    if (at < 0) throw bad("the body does not hold the boundary given in the Content-Type");
    pos = at + delimiter.length;
  }
  const parts: Part[] = [];
  for (;;) {
    // after a delimiter: "--" closes the body; else optional whitespace (transport padding), then CRLF
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts;
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (!(body[pos] === 0x0d && body[pos + 1] === 0x0a)) throw bad(pos >= body.length ? "the body ends without the closing boundary (cut off?)" : "a boundary line is followed by other characters");
    pos += 2;
    if (parts.length >= limits.maxParts) throw bad(`more than ${limits.maxParts} parts`);
    // an empty header section is the empty line right away
    const headerEnd = body[pos] === 0x0d && body[pos + 1] === 0x0a ? pos : body.indexOf(HEADER_END, pos);
    const headerBytes = headerEnd < 0 ? body.length - pos : headerEnd - pos;
    if (headerBytes > limits.maxHeaderBytes) throw bad(`a part's headers are over ${limits.maxHeaderBytes} bytes`);
    if (headerEnd < 0) throw bad("a part's headers are not ended by an empty line (cut off?)");
    if (headerEnd === pos) throw bad("a part has no headers (Content-Disposition is required)");
    const headers = readHeaders(body.subarray(pos, headerEnd).toString("utf8"));
    const dataStart = headerEnd + HEADER_END.length;
    const next = body.indexOf(delimiter, dataStart);
    if (next < 0) throw bad(`the part ${JSON.stringify(headers.name)} is not ended by a boundary (cut off?)`);
    const data = body.subarray(dataStart, next);
    if (!isFile(headers) && data.length > limits.maxFieldBytes) throw bad(`the field ${JSON.stringify(headers.name)} is over ${limits.maxFieldBytes} bytes`);
    parts.push({ ...headers, data });
    pos = next + delimiter.length;
  }
}

/** A file part: one with a filename, or (undici leaves out an empty filename) a Content-Type other than text. */
export function isFile(p: { filename?: string; contentType?: string }): boolean {
  return p.filename !== undefined || (p.contentType !== undefined && p.contentType !== "text/plain");
}

/** Form fields by name (checked: known names only, each once, text fields as UTF-8). */
export class FormParts {
  constructor(readonly parts: Part[]) {}

  /** Refuses fields not in `known` (a typo is a 400, not a silent default). */
  only(known: readonly string[]): this {
    for (const p of this.parts) if (!known.includes(p.name)) throw invalid(`unknown form field ${JSON.stringify(p.name)} (known: ${known.join(", ")})`, "unknown_field", p.name);
    return this;
  }

  /** All parts named `name` or `name[]` (the openai SDK sends arrays as name[]). */
  all(name: string): Part[] { return this.parts.filter((p) => p.name === name || p.name === `${name}[]`); }

  one(name: string): Part | undefined {
    const ps = this.all(name);
    if (ps.length > 1) throw invalid(`${name} is given ${ps.length} times; send one`, "invalid_value", name);
    return ps[0];
  }

  file(name: string): Buffer | undefined {
    const p = this.one(name);
    if (p && !isFile(p)) throw invalid(`${name} must be a file upload (a part with a filename)`, "invalid_type", name);
    return p?.data;
  }

  text(name: string): string | undefined {
    const p = this.one(name);
    if (!p) return undefined;
    if (isFile(p)) throw invalid(`${name} must be a text field, not a file`, "invalid_type", name);
    const s = p.data.toString("utf8");
    if (s.includes("\uFFFD") && !Buffer.from(s, "utf8").equals(p.data)) throw invalid(`${name} is not valid UTF-8`, "invalid_value", name);
    return s;
  }
}
