/**
 * The one error shape every API of the server answers with (OpenAI's):
 * `{ "error": { "message", "type", "code", "param" } }`, with the HTTP status it goes out under.
 */
import { PipelineInputError } from "../pipelines/errors.js";
import { ImageFormatError } from "../image/png.js";
import { LoraError } from "../loaders/lora.js";
import { LoraTagError } from "../prompts/lora-tags.js";
import { LoraLibraryError } from "./lora-library.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string,
    readonly param?: string,
    /** Extra response headers (Retry-After, x-should-retry). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): { error: { message: string; type: string; code: string; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param ?? null } };
  }
}

/** 400: the request itself is wrong (type, range, missing field). */
export const invalid = (message: string, code = "invalid_value", param?: string) =>
  new HttpError(400, message, "invalid_request_error", code, param);

export const notFound = (message: string) => new HttpError(404, message, "not_found_error", "not_found");

/** 429 with Retry-After: the queue is full; come back later. */
export const queueFull = (max: number, retryAfterSeconds: number) =>
  new HttpError(429, `the queue is full (${max} jobs waiting); retry in about ${retryAfterSeconds} s`, "rate_limit_error", "queue_full",
    undefined, { "Retry-After": String(retryAfterSeconds) });

/** Why a job stopped before its end. */
export type CancelReason = "interrupted" | "cancelled" | "disconnected";

/**
 * 409 for a job stopped on purpose (DELETE /v1/jobs/:id, the client gone; "interrupted" is what older
 * front ends and workers send for POST /sdapi/v1/interrupt, which now answers 200 with the images so far);
 * x-should-retry: false tells the OpenAI SDK (which retries 409) not to send it again.
 */
export function cancelledError(reason: CancelReason): HttpError {
  const message = reason === "interrupted" ? "the job was interrupted (POST /sdapi/v1/interrupt)"
    : reason === "cancelled" ? "the job was cancelled (DELETE /v1/jobs/:id)"
    : "the job was cancelled: its client disconnected";
  return new HttpError(409, message, "job_cancelled_error", `job_${reason}`, undefined, { "x-should-retry": "false" });
}

export const CANCEL_REASONS: readonly CancelReason[] = ["interrupted", "cancelled", "disconnected"];

/** Any error thrown while serving a request or running a job, as an HttpError. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof PipelineInputError || e instanceof ImageFormatError) return invalid((e as Error).message);
  if (e instanceof LoraError || e instanceof LoraTagError || e instanceof LoraLibraryError) return invalid((e as Error).message, "invalid_lora", "loras");
  const message = e instanceof Error ? e.message : String(e);
  return new HttpError(500, `internal error: ${message}`, "server_error", "internal_error");
}

/** An HttpError carried as text (BullMQ's failedReason) and back. */
const WIRE = "ssd1b-error:";
export function errorToWire(e: HttpError): string {
  return WIRE + JSON.stringify({ status: e.status, message: e.message, type: e.type, code: e.code, param: e.param, headers: e.headers });
}
export function errorFromWire(text: string): HttpError {
  if (text.startsWith(WIRE)) {
    try {
      const o = JSON.parse(text.slice(WIRE.length)) as { status: number; message: string; type: string; code: string; param?: string; headers?: Record<string, string> };
      return new HttpError(o.status, o.message, o.type, o.code, o.param, o.headers ?? {});
    } catch { /* fall through */ }
  }
  return new HttpError(500, `internal error: ${text}`, "server_error", "internal_error");
}
