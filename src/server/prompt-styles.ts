/**
 * A1111 prompt styles (`ssd1b serve --styles-file FILE.csv`): the styles.csv A1111 reads and writes
 * (header `name,prompt,negative_prompt`; old files call the prompt column `text`, some tools add a
 * `description` for people), and A1111's rule for putting styles onto a prompt (modules/styles.py).
 *
 * The CSV reader is our own, not a library: the file is one dialect (comma, double quotes, a quote
 * doubled inside a quoted field, CR / LF / CRLF line ends, spaces after a comma skipped as A1111's
 * reader does with skipinitialspace), read once at start, and a few dozen lines of our own check
 * every limit and name the line of every error, which a general CSV library would not.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { DEFAULT_LIMITS } from "./validation.js";

export class StylesFileError extends Error {}

export interface PromptStyle {
  name: string;
  prompt: string;
  negative_prompt: string;
}

/** Bounds on a styles file: A1111's own files are a few KiB; the cap is checked before reading. */
export const STYLES_FILE_LIMITS = { maxBytes: 2 << 20, maxStyles: 5000, maxNameChars: 255, maxPromptChars: DEFAULT_LIMITS.maxPromptChars };

export interface CsvRow {
  /** The line the row starts on (1-based; a quoted field may span lines). */
  line: number;
  fields: string[];
}

const lineEnds = (s: string) => s.match(/\r\n|\r|\n/g)?.length ?? 0;
const isEnd = (c: string | undefined) => c === undefined || c === "," || c === "\n" || c === "\r";

/** The rows of CSV text (a BOM skipped); blank lines are no rows. At most maxRows rows, else an error naming the line. */
export function parseCsv(text: string, maxRows = Infinity): CsvRow[] {
  const rows: CsvRow[] = [];
  let i = text.startsWith("\uFEFF") ? 1 : 0, line = 1;
  const fail = (at: number, why: string): never => { throw new StylesFileError(`line ${at}: ${why}`); };
  while (i < text.length) {
    const start = line, fields: string[] = [];
    let quotedAny = false;
    for (;;) {
      while (text[i] === " ") i++;
      if (text[i] === '"') {
        quotedAny = true;
        const open = line;
        let field = "";
        for (i++; ; ) {
          const q = text.indexOf('"', i);
          if (q < 0) fail(open, `the quoted field ${fields.length + 1} opened here is never closed`);
          field += text.slice(i, q);
          line += lineEnds(text.slice(i, q));
          i = q + 1;
          if (text[i] !== '"') break;
          field += '"'; // "" inside quotes is one quote
          i++;
        }
        if (!isEnd(text[i])) fail(line, `text after the closing quote of field ${fields.length + 1} (a quote inside a quoted field is written "")`);
        fields.push(field);
      } else {
        const from = i;
        while (!isEnd(text[i])) i++;
        fields.push(text.slice(from, i));
      }
      if (text[i] !== ",") break;
      i++;
    }
    if (text[i] === "\r" && text[i + 1] === "\n") i += 2;
    else if (i < text.length) i++;
    line++;
    if (!quotedAny && fields.length === 1 && fields[0] === "") continue;
    if (rows.length === maxRows) fail(start, `more than ${maxRows} rows`);
    rows.push({ line: start, fields });
  }
  return rows;
}

/** The columns A1111's files have: `text` is the old name of `prompt`; `description` is for people only. */
const COLUMNS = ["name", "prompt", "negative_prompt", "text", "description"] as const;

/** The styles of a styles.csv's text, in file order; rows whose name starts with "#" are comments, as in A1111. */
export function parseStyles(text: string, limits = STYLES_FILE_LIMITS): PromptStyle[] {
  // comment rows count as rows too: room for as many of them as styles
  const [header, ...rows] = parseCsv(text, 2 * limits.maxStyles + 1);
  if (!header) throw new StylesFileError("no header line (name,prompt,negative_prompt)");
  const names = header.fields.map((h) => h.trim());
  const at = (column: string) => names.indexOf(column);
  for (const [k, h] of names.entries()) {
    if (!(COLUMNS as readonly string[]).includes(h)) throw new StylesFileError(`line ${header.line}: unknown column ${JSON.stringify(h)} (known: ${COLUMNS.join(", ")})`);
    if (names.indexOf(h) !== k) throw new StylesFileError(`line ${header.line}: the column ${JSON.stringify(h)} appears twice`);
  }
  if (at("name") < 0 || (at("prompt") < 0 && at("text") < 0)) throw new StylesFileError(`line ${header.line}: the header needs the columns name and prompt, got ${names.join(",")}`);
  if (at("prompt") >= 0 && at("text") >= 0) throw new StylesFileError(`line ${header.line}: both prompt and text (its old name) columns; keep one`);
  const promptAt = at("prompt") >= 0 ? at("prompt") : at("text"), negativeAt = at("negative_prompt");
  const styles: PromptStyle[] = [], firstLine = new Map<string, number>();
  for (const { line, fields } of rows) {
    const name = fields[at("name")] ?? "";
    if (name.startsWith("#")) continue;
    const fail = (why: string): never => { throw new StylesFileError(`line ${line}: ${why}`); };
    if (fields.length !== names.length) fail(`${fields.length} field(s), the header has ${names.length} (a field holding a comma must be in double quotes)`);
    if (name.trim() === "") fail("the style has no name");
    if (name.length > limits.maxNameChars) fail(`the name is ${name.length} characters (at most ${limits.maxNameChars})`);
    if (firstLine.has(name)) fail(`the style ${JSON.stringify(name)} is already on line ${firstLine.get(name)}`);
    const style = { name, prompt: fields[promptAt], negative_prompt: negativeAt >= 0 ? fields[negativeAt] : "" };
    for (const key of ["prompt", "negative_prompt"] as const) {
      if (style[key].length > limits.maxPromptChars) fail(`the ${key} of ${JSON.stringify(name)} is ${style[key].length} characters (at most ${limits.maxPromptChars}, the longest prompt)`);
    }
    if (styles.length === limits.maxStyles) fail(`more than ${limits.maxStyles} styles`);
    firstLine.set(name, line);
    styles.push(style);
  }
  return styles;
}

/** A1111 styles by name, as read from one file. */
export class PromptStyles {
  private readonly byName: Map<string, PromptStyle>;

  constructor(readonly styles: readonly PromptStyle[], readonly path?: string) {
    this.byName = new Map(styles.map((s) => [s.name, s]));
  }

  get(name: string): PromptStyle | undefined { return this.byName.get(name); }

  names(): string[] { return this.styles.map((s) => s.name); }
}

/**
 * --styles-file FILE: its size checked before anything is read, then decoded as UTF-8 (a BOM
 * skipped, as A1111 reads it) and parsed; any problem is an error naming the flag, the file and the line.
 */
export function loadStylesFile(path: string, limits = STYLES_FILE_LIMITS): PromptStyles {
  const fail = (why: string): never => { throw new StylesFileError(`--styles-file ${path}: ${why}`); };
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    return fail((e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message);
  }
  let bytes: Buffer;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) fail("not a file");
    if (stat.size > limits.maxBytes) fail(`${stat.size} bytes, more than the ${limits.maxBytes} a styles file may have`);
    // read at most one byte past the cap: a file that grew since fstat is refused, not read whole
    bytes = Buffer.alloc(limits.maxBytes + 1);
    let n = 0;
    for (let got; n < bytes.length && (got = readSync(fd, bytes, n, bytes.length - n, null)) > 0; ) n += got;
    if (n > limits.maxBytes) fail(`more than the ${limits.maxBytes} bytes a styles file may have`);
    bytes = bytes.subarray(0, n);
  } finally {
    closeSync(fd);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("not UTF-8 text (A1111 writes styles.csv as UTF-8)");
  }
  try {
    return new PromptStyles(parseStyles(text, limits), path);
  } catch (e) {
    if (e instanceof StylesFileError) fail(e.message);
    throw e;
  }
}

/** Python's str.strip() whitespace (A1111 strips with it): JavaScript's trim() differs on U+FEFF, U+0085 and U+001C..U+001F. */
const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, "g");
const pyStrip = (s: string) => s.replace(PY_STRIP, "");

/**
 * One style onto a prompt, as A1111 merges them: a style text holding {prompt} gets the prompt in
 * each place (neither is trimmed); otherwise both are trimmed and joined with ", ", an empty one left out.
 */
export function mergeStylePrompt(style: string, prompt: string): string {
  const parts = style.split("{prompt}");
  if (parts.length > 1) return parts.join(prompt);
  return [pyStrip(prompt), pyStrip(style)].filter((s) => s !== "").join(", ");
}

/**
 * Styles onto a prompt in the order given (each wraps what the ones before made), or undefined as
 * soon as the text would pass maxChars: a style with several {prompt} doubles it each time.
 */
export function applyStyles(prompt: string, styleTexts: readonly string[], maxChars = Infinity): string | undefined {
  let text = prompt;
  for (const style of styleTexts) {
    // the length a {prompt} style makes, known before it is made
    const places = style.split("{prompt}").length - 1;
    if (places > 0 && style.length + places * (text.length - "{prompt}".length) > maxChars) return undefined;
    text = mergeStylePrompt(style, text);
    if (text.length > maxChars) return undefined;
  }
  return text;
}
