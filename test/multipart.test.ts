/**
 * The multipart/form-data parser: what undici's FormData (the openai SDK's transport) and browsers
 * send parses; hostile bodies (bad boundaries, truncation, huge headers, too many parts, random
 * bytes, pathological repetitions of the delimiter) are a clear 400, fast, never a hang or a throw
 * of anything else.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { boundaryOf, headerParams, parseMultipart, FormParts, DEFAULT_MULTIPART_LIMITS } from "../src/server/multipart.js";
import { HttpError } from "../src/server/errors.js";
import { Prng, fuzzCases, fuzzSeed } from "./helpers/prng.js";

const B = "----formdata-test-1234";
const TYPE = `multipart/form-data; boundary=${B}`;
const body = (...parts: string[]) => Buffer.from(parts.map((p) => `--${B}\r\n${p}\r\n`).join("") + `--${B}--\r\n`, "latin1");

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof HttpError && e.status === 400 && message.test(e.message), String(message));
}

test("multipart: undici's FormData encoding (what the openai SDK sends) parses into fields and files", async () => {
  const form = new FormData();
  form.append("prompt", "a cat in a hat, \"quoted\" ü");
  form.append("n", "2");
  const png = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10, 0, 13, 10, 45, 45, 0, 255]);
  form.append("image", new File([png], "in put \"1\".png", { type: "image/png" }));
  form.append("mask[]", new File([new Uint8Array(0)], "", { type: "image/png" }));
  const req = new Request("http://x/", { method: "POST", body: form });
  const bytes = Buffer.from(await req.arrayBuffer());
  const parts = new FormParts(parseMultipart(bytes, req.headers.get("content-type")!));
  assert.equal(parts.text("prompt"), "a cat in a hat, \"quoted\" ü");
  assert.equal(parts.text("n"), "2");
  assert.deepEqual(new Uint8Array(parts.file("image")!), png);
  const image = parts.one("image")!;
  assert.equal(image.contentType, "image/png");
  assert.equal(image.filename, "in put %221%22.png");
  assert.equal(parts.file("mask")!.length, 0, "name[] is the SDK's array form");
  refused(() => parts.file("prompt"), /must be a file upload/);
  refused(() => parts.text("image"), /must be a text field/);
  refused(() => new FormParts(parts.parts).only(["prompt"]), /unknown form field "n"/);
});

test("multipart: boundaries and parameters are read strictly", () => {
  assert.equal(boundaryOf('multipart/form-data; boundary="a b=c"'), "a b=c");
  assert.equal(boundaryOf("Multipart/Form-Data;boundary=xyz;charset=utf-8"), "xyz");
  refused(() => boundaryOf("multipart/form-data"), /no boundary/);
  refused(() => boundaryOf("multipart/form-data; boundary="), /1 to 70/);
  refused(() => boundaryOf(`multipart/form-data; boundary=${"x".repeat(71)}`), /1 to 70/);
  refused(() => boundaryOf('multipart/form-data; boundary="ends in space "'), /1 to 70/);
  refused(() => boundaryOf("multipart/form-data; boundary=a; boundary=b"), /given twice/);
  refused(() => boundaryOf("multipart/form-data; boundary=\"unterminated"), /cannot read/);
  assert.throws(() => boundaryOf("application/json"), (e: unknown) => e instanceof HttpError && e.status === 400 && e.code === "unsupported_media_type");
  assert.deepEqual([...headerParams('form-data; name="a\\"b"; filename=x.png').params], [["name", 'a"b'], ["filename", "x.png"]]);
});

test("multipart: malformed bodies are 400s that say why", () => {
  const ok = 'Content-Disposition: form-data; name="a"\r\n\r\nvalue';
  assert.equal(new FormParts(parseMultipart(body(ok), TYPE)).text("a"), "value");
  assert.equal(parseMultipart(Buffer.from(`preamble\r\n--${B}\r\n${ok}\r\n--${B}--`), TYPE).length, 1, "a preamble is skipped");
  assert.equal(parseMultipart(Buffer.from(`--${B}--`), TYPE).length, 0, "no parts");
  const cases: [Buffer, RegExp][] = [
    [Buffer.from(""), /does not hold the boundary/],
    [Buffer.from("just some text"), /does not hold the boundary/],
    [Buffer.from(`--${B}\r\n${ok}`), /not ended by a boundary/],
    [Buffer.from(`--${B}\r\n${ok}\r\n--${B}`), /ends without the closing boundary/],
    [Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="a"\r\nvalue`), /not ended by an empty line/],
    [Buffer.from(`--${B}junk\r\n${ok}\r\n--${B}--`), /followed by other characters/],
    [body("\r\nvalue"), /no headers/],
    [body('Content-Type: text/plain\r\n\r\nv'), /no Content-Disposition/],
    [body('Content-Disposition: attachment; name="a"\r\n\r\nv'), /must be form-data/],
    [body("Content-Disposition: form-data\r\n\r\nv"), /has no name/],
    [body('Content-Disposition: form-data; name=""\r\n\r\nv'), /has no name/],
    [body('Content-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"\r\n\r\nv'), /two Content-Disposition/],
    [body('Content-Disposition: form-data; name="a"\r\nno colon here\r\n\r\nv'), /not "Name: value"/],
    [body('Content-Disposition: form-data; name="a"\r\nContent-Transfer-Encoding: base64\r\n\r\nv'), /Content-Transfer-Encoding/],
    [body(`Content-Disposition: form-data; name="a"; x="${"y".repeat(3000)}"\r\n\r\nv`), /headers are over 2048 bytes/],
    [body(`Content-Disposition: form-data; name="a"\r\n\r\n${"v".repeat((64 << 10) + 1)}`), /over 65536 bytes/],
    [body(...Array.from({ length: 33 }, (_, i) => `Content-Disposition: form-data; name="f${i}"\r\n\r\nv`)), /more than 32 parts/],
  ];
  for (const [b, message] of cases) refused(() => parseMultipart(b, TYPE), message);
  // a header section that never ends, as long as the body: refused at the header limit, not scanned further
  refused(() => parseMultipart(Buffer.concat([Buffer.from(`--${B}\r\n`), Buffer.alloc(1 << 20, 0x61)]), TYPE), /headers are over/);
  // the same field twice is one value too many
  refused(() => new FormParts(parseMultipart(body(ok, ok), TYPE)).text("a"), /given 2 times/);
});

test("multipart: random and adversarial bodies never throw anything but a 400 and stay linear", () => {
  const prng = new Prng(fuzzSeed(7));
  const rand = () => prng.next();
  const good = body('Content-Disposition: form-data; name="prompt"\r\n\r\nhello', 'Content-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--not-the-boundary');
  for (let i = 0; i < fuzzCases(3000); i++) {
    const b = Buffer.from(good);
    // flip, cut or splice bytes
    const edits = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < edits; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
    try {
      parseMultipart(cut, TYPE);
    } catch (e) {
      assert.ok(e instanceof HttpError && e.status === 400, `a mutated body (seed ${prng.seed}, case ${i}) threw ${e}`);
    }
  }
  // the delimiter's prefix repeated: each scan is one indexOf, so this is fast
  const evil = Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n\r\n` + `\r\n--${B.slice(0, -1)}`.repeat(200_000));
  const t0 = performance.now();
  refused(() => parseMultipart(evil, TYPE), /not ended by a boundary/);
  assert.ok(performance.now() - t0 < 2000, `a ${evil.length}-byte adversarial body took ${(performance.now() - t0).toFixed(0)} ms`);
  assert.equal(DEFAULT_MULTIPART_LIMITS.maxParts, 32);
});
