/**
 * A multipart/form-data request (the OpenAI SDK's uploads) read into its files and a Fields of its
 * text fields, so that the JSON routes' checks (ranges, types, the field named in every 400) apply
 * unchanged: a text field whose name is listed as numeric becomes a number when it reads as one
 * (else it stays a string and the check says "must be an integer"), "true" / "false" as booleans.
 */
import type { IncomingMessage } from "node:http";
import { invalid } from "./errors.js";
import { readBody } from "./http.js";
import { FormParts, isMultipartType, parseMultipart } from "./multipart.js";
import { Fields } from "./validation.js";

export interface FormSchema {
  files: readonly string[];
  numbers: readonly string[];
  booleans?: readonly string[];
  strings: readonly string[];
}

export interface FormRequest {
  files: Map<string, Buffer>;
  fields: Fields;
}

const NUMBER = /^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

export async function readForm(req: IncomingMessage, maxBytes: number, schema: FormSchema): Promise<FormRequest> {
  const type = req.headers["content-type"];
  if (!isMultipartType(type)) {
    req.resume();
    throw invalid(`send this request as multipart/form-data (the image as a file part), got ${type ? JSON.stringify(type) : "no Content-Type"}`, "unsupported_media_type");
  }
  const form = new FormParts(parseMultipart(await readBody(req, maxBytes), type)).only([...schema.files, ...schema.numbers, ...(schema.booleans ?? []), ...schema.strings].flatMap((n) => [n, `${n}[]`]));
  const files = new Map<string, Buffer>();
  for (const name of schema.files) {
    const data = form.file(name);
    if (data !== undefined) files.set(name, data);
  }
  const body: Record<string, unknown> = {};
  for (const name of schema.strings) body[name] = form.text(name);
  for (const name of schema.numbers) {
    const v = form.text(name);
    body[name] = v !== undefined && NUMBER.test(v) ? Number(v) : v;
  }
  for (const name of schema.booleans ?? []) {
    const v = form.text(name);
    body[name] = v === "true" ? true : v === "false" ? false : v;
  }
  return { files, fields: new Fields(body) };
}
