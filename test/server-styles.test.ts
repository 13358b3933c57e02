/**
 * A1111 prompt styles (`ssd1b serve --styles-file FILE.csv`): the CSV reader (quotes, "" escapes,
 * newlines in fields, BOM, CRLF) and its errors with line numbers, A1111's merge rule, GET
 * /sdapi/v1/prompt-styles, and txt2img / img2img `styles` whose image equals the styled prompt typed
 * in, with the styled text in the infotext and info; unknown names and a server without the file are
 * 400s; serve refuses a malformed or oversized file at start.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { NO_FIXTURES } from "./helpers/fixtures.js";
import { CLI } from "./helpers/cli.js";
import { serveTinyModel } from "./helpers/served-model.js";
import { startLocalServer } from "./helpers/local-server.js";
import { decodePng, encodePng } from "../src/image/png.js";
import { PromptStyles, STYLES_FILE_LIMITS, StylesFileError, applyStyles, loadStylesFile, mergeStylePrompt, parseCsv, parseStyles } from "../src/server/prompt-styles.js";

const STYLES_CSV = [
  "\uFEFFname,prompt,negative_prompt",
  "Cinematic,\"cinematic still of {prompt}, shallow depth of field\",\"cartoon, \"\"flat\"\" colors\"",
  "# a comment row: skipped, as A1111 skips names starting with #",
  "Watercolor,watercolor painting,\"photo,",
  "blurry\"",
  "",
  "Plain,,",
].join("\r\n");

const served = serveTinyModel("server-styles-", {
  skip: NO_FIXTURES, queueSize: 8,
  setup: (tmp) => {
    writeFileSync(join(tmp, "styles.csv"), STYLES_CSV);
    return { server: { styles: loadStylesFile(join(tmp, "styles.csv")) } };
  },
});

const fieldsOf = (text: string) => parseCsv(text).map((r) => [r.line, ...r.fields]);

test("styles CSV: quoted fields with commas, \"\" escapes and newlines; BOM, CRLF, lone CR, blank lines; spaces after a comma skipped", () => {
  assert.deepEqual(fieldsOf('\uFEFFa,b\r\n"x, y","say ""hi""",\r\n\r\n"two\r\nlines",z\n'), [
    [1, "a", "b"], [2, "x, y", 'say "hi"', ""], [4, "two\r\nlines", "z"],
  ]);
  // the row after a field spanning lines knows its own line; a lone CR ends a line too
  assert.deepEqual(fieldsOf('n,p\n"1\n2\n3",q\rlast, "quoted after a space",\n'), [
    [1, "n", "p"], [2, "1\n2\n3", "q"], [5, "last", "quoted after a space", ""],
  ]);
  // a quote inside an unquoted field is text (Python's csv reads it so); no trailing newline needed
  assert.deepEqual(fieldsOf('a b"c,  d'), [[1, 'a b"c', "d"]]);
  assert.deepEqual(fieldsOf("   \n\n"), []);
  assert.throws(() => parseCsv("a\nb\n\nc", 2), (e) => e instanceof StylesFileError && e.message === "line 4: more than 2 rows");
});

function errorOf(text: string, limits = STYLES_FILE_LIMITS): string {
  try {
    parseStyles(text, limits);
  } catch (e) {
    assert.ok(e instanceof StylesFileError, String(e));
    return e.message;
  }
  return assert.fail(`no error for ${JSON.stringify(text)}`);
}

test("styles CSV: malformed text is an error naming the line", () => {
  assert.match(errorOf('name,prompt\nok,fine\nbad,"never closed\nmore'), /^line 3: the quoted field 2 opened here is never closed/);
  assert.match(errorOf('name,prompt\n"a"b,c'), /^line 2: text after the closing quote of field 1/);
  assert.match(errorOf('name,prompt,negative_prompt\n"multi\nline",x,y\nshort,x'), /^line 4: 2 field\(s\), the header has 3/);
  assert.match(errorOf("name,prompt\nA,x\nB,y\nA,z"), /^line 4: the style "A" is already on line 2/);
  assert.match(errorOf("name,prompt,negative prompt\nA,x,y"), /^line 1: unknown column "negative prompt" \(known: name, prompt, negative_prompt, text, description\)/);
  assert.match(errorOf("name,negative_prompt\nA,x"), /^line 1: the header needs the columns name and prompt/);
  assert.match(errorOf("name,prompt\n,x"), /^line 2: the style has no name/);
  assert.match(errorOf(""), /no header line/);
  const limits = { ...STYLES_FILE_LIMITS, maxStyles: 2, maxPromptChars: 5 };
  assert.match(errorOf("name,prompt\n#c,\nA,x\nB,y\nC,z", limits), /^line 5: more than 2 styles/);
  assert.match(errorOf("name,prompt,negative_prompt\nA,1,123456", limits), /^line 2: the negative_prompt of "A" is 6 characters \(at most 5/);
});

test("styles file: A1111's columns (the old `text`, a `description`), comment rows, file order", () => {
  assert.deepEqual(parseStyles("name,text\nOld,old style"), [{ name: "Old", prompt: "old style", negative_prompt: "" }]);
  assert.deepEqual(parseStyles("name,prompt,negative_prompt,description\n#x,,,\nB,b,nb,for people\nA,a,na,\"\""), [
    { name: "B", prompt: "b", negative_prompt: "nb" }, { name: "A", prompt: "a", negative_prompt: "na" },
  ]);
  const lib = new PromptStyles(parseStyles(STYLES_CSV));
  assert.deepEqual(lib.names(), ["Cinematic", "Watercolor", "Plain"]);
  assert.deepEqual(lib.get("Cinematic"), { name: "Cinematic", prompt: "cinematic still of {prompt}, shallow depth of field", negative_prompt: 'cartoon, "flat" colors' });
  assert.equal(lib.get("Watercolor")?.negative_prompt, "photo,\r\nblurry");
});

test("A1111's merge rule: {prompt} is replaced everywhere untrimmed; else trimmed parts joined with \", \", empty ones left out; styles apply in order", () => {
  assert.equal(mergeStylePrompt("art of {prompt}, 4k", " a cat "), "art of  a cat , 4k");
  assert.equal(mergeStylePrompt("{prompt} and {prompt}", "x"), "x and x");
  assert.equal(mergeStylePrompt("{prompt}, $& $1", "a $& b"), "a $& b, $& $1");
  assert.equal(mergeStylePrompt("  4k, sharp  ", "  a cat \n"), "a cat, 4k, sharp");
  assert.equal(mergeStylePrompt("4k", "   "), "4k");
  assert.equal(mergeStylePrompt("   ", "a cat"), "a cat");
  assert.equal(mergeStylePrompt("", ""), "");
  // Python's strip(): U+001F is whitespace there, U+FEFF is not (JavaScript's trim() says the opposite)
  assert.equal(mergeStylePrompt("s", "\x1fa\uFEFF"), "a\uFEFF, s");
  // the first style named wraps the prompt first
  assert.equal(applyStyles("cat", ["{prompt}, by A", "B, {prompt}", "C"]), "B, cat, by A, C");
  assert.equal(applyStyles("cat", ["C", "{prompt}, by A"]), "cat, C, by A");
  assert.equal(applyStyles("", ["a", "b"]), "a, b");
  // a style doubling the prompt each time stops at the cap instead of growing without bound
  assert.equal(applyStyles("x".repeat(100), Array(40).fill("{prompt}{prompt}"), 10_000), undefined);
  assert.equal(applyStyles("abc", ["{prompt}, d"], 5), undefined);
  assert.equal(applyStyles("abc", ["{prompt}, d"], 6), "abc, d");
});

test("--styles-file: size checked before reading, UTF-8 only, a missing file named", () => {
  const dir = served.tmp;
  writeFileSync(join(dir, "big.csv"), "name,prompt\n" + "A,x\n".repeat(10));
  assert.throws(() => loadStylesFile(join(dir, "big.csv"), { ...STYLES_FILE_LIMITS, maxBytes: 20 }), /--styles-file .*big\.csv: 52 bytes, more than the 20 a styles file may have/);
  writeFileSync(join(dir, "latin1.csv"), Buffer.from("name,prompt\nCaf\xe9,x", "latin1"));
  assert.throws(() => loadStylesFile(join(dir, "latin1.csv")), /latin1\.csv: not UTF-8 text/);
  assert.throws(() => loadStylesFile(join(dir, "nowhere.csv")), /--styles-file .*nowhere\.csv: no such file/);
  writeFileSync(join(dir, "bad.csv"), "name,prompt\nA,\"x");
  assert.throws(() => loadStylesFile(join(dir, "bad.csv")), /--styles-file .*bad\.csv: line 2: the quoted field 2 opened here is never closed/);
});

async function post(url: string, path: string, body: unknown): Promise<Response> {
  return fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

async function generate(path: string, body: Record<string, unknown>): Promise<{ images: Buffer[]; info: any; parameters: any }> {
  const r = await post(served.server.url, path, body);
  assert.equal(r.status, 200, await r.clone().text());
  const a = await r.json() as { images: string[]; info: string; parameters: unknown };
  return { images: a.images.map((s) => Buffer.from(s, "base64")), info: JSON.parse(a.info), parameters: a.parameters };
}

const base = { steps: 2, width: 32, height: 32, sampler_name: "Euler", cfg_scale: 5, seed: 11 };

test("GET /sdapi/v1/prompt-styles: the file's styles as A1111 lists them; none without --styles-file", { skip: NO_FIXTURES }, async () => {
  assert.deepEqual(await (await fetch(served.server.url + "/sdapi/v1/prompt-styles")).json(), [
    { name: "Cinematic", prompt: "cinematic still of {prompt}, shallow depth of field", negative_prompt: 'cartoon, "flat" colors' },
    { name: "Watercolor", prompt: "watercolor painting", negative_prompt: "photo,\r\nblurry" },
    { name: "Plain", prompt: "", negative_prompt: "" },
  ]);
  const flags = await (await fetch(served.server.url + "/sdapi/v1/cmd-flags")).json() as { styles_file: string[] };
  assert.deepEqual(flags.styles_file, [join(served.tmp, "styles.csv")]);
  const bare = await startLocalServer(served.pipe);
  try {
    assert.deepEqual(await (await fetch(bare.url + "/sdapi/v1/prompt-styles")).json(), []);
    // no styles file: an empty list is fine, a name is a 400 naming the flag
    assert.equal((await post(bare.url, "/sdapi/v1/txt2img", { ...base, steps: 1, prompt: "x", styles: [] })).status, 200);
    const r = await post(bare.url, "/sdapi/v1/txt2img", { ...base, prompt: "x", styles: ["Cinematic"] });
    assert.equal(r.status, 400);
    const e = (await r.json() as { error: { message: string; param: string; code: string } }).error;
    assert.deepEqual([e.param, e.code], ["styles", "no_styles_file"]);
    assert.match(e.message, /cannot apply the styles "Cinematic" \(restart `ssd1b serve` with --styles-file FILE\.csv/);
  } finally {
    await bare.close();
  }
});

test("txt2img styles: the image of the styled prompt typed in, the styled text in infotext / info, the request in parameters", { skip: NO_FIXTURES }, async () => {
  const styled = await generate("/sdapi/v1/txt2img", { ...base, prompt: "a red fox", negative_prompt: "low quality", styles: ["Cinematic", "Watercolor"], batch_size: 2 });
  const prompt = "cinematic still of a red fox, shallow depth of field, watercolor painting";
  const negative = 'low quality, cartoon, "flat" colors, photo,\r\nblurry';
  const typed = await generate("/sdapi/v1/txt2img", { ...base, prompt, negative_prompt: negative, batch_size: 2 });
  for (let j = 0; j < 2; j++) assert.deepEqual(decodePng(styled.images[j]).data, decodePng(typed.images[j]).data, `image ${j}`);
  // a request without the styles is another image (the styles changed the conditioning)
  const plain = await generate("/sdapi/v1/txt2img", { ...base, prompt: "a red fox", negative_prompt: "low quality" });
  assert.notDeepEqual(decodePng(plain.images[0]).data, decodePng(styled.images[0]).data);

  assert.equal(styled.info.prompt, prompt);
  assert.deepEqual(styled.info.all_prompts, [prompt, prompt]);
  assert.equal(styled.info.negative_prompt, negative);
  assert.deepEqual(styled.info.styles, ["Cinematic", "Watercolor"]);
  assert.ok(styled.info.infotexts[1].startsWith(`${prompt}\nNegative prompt: ${negative}\nSteps: 2, `), styled.info.infotexts[1]);
  assert.equal(decodePng(styled.images[1]).text.parameters, styled.info.infotexts[1]);
  assert.deepEqual(styled.info.infotexts, typed.info.infotexts);
  // as A1111's `parameters` (the request): sent back, the styles apply once again, not twice
  assert.equal(styled.parameters.prompt, "a red fox");
  assert.equal(styled.parameters.negative_prompt, "low quality");
  assert.deepEqual(styled.parameters.styles, ["Cinematic", "Watercolor"]);
  assert.deepEqual(typed.info.styles, []);
});

test("styles on img2img and on the hires prompt; an empty style and an empty prompt", { skip: NO_FIXTURES }, async () => {
  const init = encodePng({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3).fill(128) }).toString("base64");
  const i2i = await generate("/sdapi/v1/img2img", { ...base, prompt: "a boat", styles: ["Cinematic"], init_images: [init], denoising_strength: 0.5, steps: 2 });
  assert.equal(i2i.info.prompt, "cinematic still of a boat, shallow depth of field");
  assert.match(i2i.info.infotexts[0], /^cinematic still of a boat, shallow depth of field\nNegative prompt: cartoon, "flat" colors\n/);
  const typed = await generate("/sdapi/v1/img2img", { ...base, prompt: i2i.info.prompt, negative_prompt: 'cartoon, "flat" colors', init_images: [init], denoising_strength: 0.5, steps: 2 });
  assert.deepEqual(decodePng(i2i.images[0]).data, decodePng(typed.images[0]).data);

  const hires = await generate("/sdapi/v1/txt2img", { ...base, steps: 1, width: 16, height: 16, prompt: "a hill", styles: ["Watercolor"], enable_hr: true, hr_scale: 2, hr_prompt: "a green hill", denoising_strength: 1 });
  assert.equal(hires.info.prompt, "a hill, watercolor painting");
  assert.equal(hires.info.extra_generation_params["Hires prompt"], "a green hill, watercolor painting");
  assert.equal(hires.info.extra_generation_params["Hires negative prompt"], undefined);
  assert.match(hires.info.infotexts[0], /, Hires prompt: "a green hill, watercolor painting"(,|$)/);

  const empty = await generate("/sdapi/v1/txt2img", { ...base, steps: 1, width: 16, height: 16, prompt: "", styles: ["Plain", "Watercolor"] });
  assert.equal(empty.info.prompt, "watercolor painting");
  assert.equal(empty.info.negative_prompt, "photo,\r\nblurry");
});

test("styles: an unknown name is a 400 naming it and the known ones; a styled prompt past the limit is a 400", { skip: NO_FIXTURES }, async () => {
  for (const styles of [["Cinematic", "Noir"], ["noir", "cinematic"]]) {
    const r = await post(served.server.url, "/sdapi/v1/txt2img", { ...base, prompt: "x", styles });
    assert.equal(r.status, 400);
    const e = (await r.json() as { error: { message: string; param: string; code: string } }).error;
    assert.deepEqual([e.param, e.code], ["styles", "unknown_style"]);
    const unknown = styles.filter((s) => s !== "Cinematic");
    assert.equal(e.message, `unknown style${unknown.length > 1 ? "s" : ""} ${unknown.map((s) => JSON.stringify(s)).join(", ")} (known: "Cinematic", "Watercolor", "Plain")`);
  }
  const r = await post(served.server.url, "/sdapi/v1/txt2img", { ...base, prompt: "y".repeat(9990), styles: ["Watercolor"] });
  assert.equal(r.status, 400);
  const e = (await r.json() as { error: { message: string; param: string } }).error;
  assert.equal(e.param, "styles");
  assert.match(e.message, /the prompt with the styles "Watercolor" is longer than 10000 characters/);
  const typeError = await post(served.server.url, "/sdapi/v1/txt2img", { ...base, prompt: "x", styles: "Cinematic" });
  assert.equal(typeError.status, 400);
});

test("ssd1b serve --styles-file: a malformed or oversized file is refused at start, before any model or queue; --help names the flag", { skip: NO_FIXTURES }, () => {
  const dir = served.tmp;
  writeFileSync(join(dir, "broken.csv"), 'name,prompt\nA,"fine"\nB,"oops"x\n');
  writeFileSync(join(dir, "huge.csv"), Buffer.alloc(STYLES_FILE_LIMITS.maxBytes + 1, "a"));
  for (const [file, re] of [["broken.csv", /--styles-file .*broken\.csv: line 3: text after the closing quote of field 2/], ["huge.csv", new RegExp(`huge\\.csv: ${STYLES_FILE_LIMITS.maxBytes + 1} bytes, more than the ${STYLES_FILE_LIMITS.maxBytes}`)]] as const) {
    // nothing listens on port 1: had the file passed, serve would fail on Redis instead (exit 1)
    const r = spawnSync(process.execPath, [CLI, "serve", "--queue", "redis://127.0.0.1:1", "--styles-file", join(dir, file)], { encoding: "utf8", timeout: 30000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, re);
  }
  const help = spawnSync(process.execPath, [CLI, "serve", "--help"], { encoding: "utf8", timeout: 30000 });
  assert.match(help.stdout, /--styles-file FILE\.csv +A1111's styles\.csv/);
});
