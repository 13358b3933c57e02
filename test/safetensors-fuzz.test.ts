/**
 * Fuzzing the safetensors header parser: mutated valid headers (offsets, shapes, dtypes, types,
 * nesting, metadata, truncation, bytes) must either be rejected with a SafetensorsError or be valid
 * by an independent checker, with the same tensors. FUZZ_SCALE=20 FUZZ_SEED=n for a longer run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseHeader, readHeader, SafetensorsError, MAX_HEADER_BYTES } from "../src/safetensors/index.js";
import { Prng, fuzzCases, fuzzSeed } from "./helpers/prng.js";
import { oracle } from "./helpers/safetensors-oracle.js";

const DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"];
const SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const NAMES = ["w", "unet.conv.weight", "", "__proto__", "constructor", "é", "a\"b", "x".repeat(200), "0", "toString"];
const ODD = [-8, -1, 0, 0.5, 1.5, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e300, -0, "0", null, true, [], {}, "@@INF@@", "@@NINF@@"];

type Tensor = { dtype: unknown; shape: unknown; data_offsets: unknown; [k: string]: unknown };

function validHeader(r: Prng): { obj: Record<string, unknown>; dataLength: number } {
  const obj: Record<string, unknown> = Object.create(null); // so that "__proto__" is a key like any other
  if (r.chance(0.5)) obj.__metadata__ = { format: "pt", ...(r.chance(0.3) ? { note: "é ✓ \u0000" } : {}) };
  const n = r.int(6);
  const names = new Set<string>();
  while (names.size < n) names.add(r.chance(0.3) ? r.pick(NAMES) : `t${r.int(1000)}`);
  const order = [...names].sort(() => r.next() - 0.5); // data order differs from key order
  let at = 0;
  const tensors: Record<string, Tensor> = Object.create(null);
  for (const name of order) {
    const dtype = r.pick(DTYPES);
    const shape = Array.from({ length: r.int(5) }, () => r.int(5));
    const bytes = shape.reduce((a, b) => a * b, 1) * SIZE[dtype];
    tensors[name] = { dtype, shape, data_offsets: [at, at + bytes] };
    at += bytes;
  }
  for (const name of names) obj[name] = tensors[name];
  return { obj, dataLength: at };
}

const tensorsOf = (obj: Record<string, unknown>) => Object.keys(obj).filter((k) => k !== "__metadata__");

const offsets = (t: Tensor): number[] => (Array.isArray(t.data_offsets) && t.data_offsets.length === 2 ? t.data_offsets as number[] : [0, 0]);

/** One structural mutation, in place. */
function mutate(r: Prng, obj: Record<string, unknown>): void {
  const names = tensorsOf(obj);
  const objects = names.filter((k) => typeof obj[k] === "object" && obj[k] !== null && !Array.isArray(obj[k]));
  const t = (objects.length ? obj[r.pick(objects)] : undefined) as Tensor | undefined;
  const other = (objects.length ? obj[r.pick(objects)] : undefined) as Tensor | undefined;
  switch (r.int(12)) {
    case 0: if (t) { const o = [...offsets(t)] as unknown[]; o[r.int(2)] = r.pick(ODD); t.data_offsets = o; } break;
    case 1: if (t) { const [b, e] = offsets(t); t.data_offsets = r.pick([[e, b], [-8, 0], [b - 1, e - 1], [b + 1, e + 1], [b, e + 1], [b], [b, e, e], "0,4", null]); } break;
    case 2: if (t && other) t.data_offsets = other.data_offsets; break; // overlap
    case 3: if (t && Array.isArray(t.shape)) { const s = t.shape as unknown[]; if (s.length && r.chance(0.7)) s[r.int(s.length)] = r.pick([...ODD, -2, 3, 2 ** 31]); else s.push(r.pick([1, 2, 0, -1, 2 ** 40])); } break;
    case 4: if (t) t.shape = r.pick(["@@DEEP@@", [[2]], "2", null, 4, Array(65).fill(1), Array(r.int(200)).fill(1), [2 ** 31, 2 ** 31, 2 ** 31]]); break;
    case 5: if (t) t.dtype = r.pick(["F8", "f32", "U16", "", 4, null, ["F32"], "F32 "]); break;
    case 6: if (t) { if (r.chance(0.5)) t.extra = 1; else delete t[r.pick(["dtype", "shape", "data_offsets"])]; } break;
    case 7: if (names.length) obj[r.pick(names)] = r.pick([[], 1, "x", null, true, [1, 2], { dtype: "F32" }]); break;
    case 8: obj.__metadata__ = r.pick([[], "pt", 1, null, { a: 1 }, { a: { b: "c" } }, { a: null }, { a: ["x"] }, { dtype: "F32", shape: [], data_offsets: [0, 0] }]); break;
    case 9: obj[`new${r.int(10)}`] = { dtype: "F32", shape: [1], data_offsets: r.pick([[0, 4], [-4, 0], [1e9, 1e9 + 4]]) }; break;
    case 10: if (t) { const [b] = offsets(t); t.shape = [0]; t.data_offsets = [b, b]; } break; // an empty tensor: still valid where it sits
    default: if (t && other && t !== other) { const tmp = t.data_offsets; t.data_offsets = other.data_offsets; other.data_offsets = tmp; } break; // swap: valid iff same size
  }
}

const enc = new TextEncoder();

/** Text-level mutations: placeholders for what JSON.stringify cannot write, then byte damage. */
function serialize(r: Prng, obj: Record<string, unknown>): Uint8Array {
  let text = JSON.stringify(obj)
    .replaceAll('"@@INF@@"', "1e400").replaceAll('"@@NINF@@"', "-1e400")
    .replaceAll('"@@DEEP@@"', () => { const d = r.chance(0.05) ? 20_000 : 2 + r.int(40); return "[".repeat(d) + "2" + "]".repeat(d); });
  if (r.chance(0.05)) text = r.pick([`[${text}]`, ` ${text} `, `\ufeff${text}`, `${text}x`, text.replace("{", '{"w":1,'), text.replace(/^\{/, '{"__metadata__":{},')]);
  let bytes = enc.encode(text);
  if (r.chance(0.15)) {
    const b = Uint8Array.from(bytes);
    const i = r.int(Math.max(1, b.length));
    switch (r.int(4)) {
      case 0: bytes = b.subarray(0, i); break; // truncated
      case 1: b[i] = r.int(256); bytes = b; break;
      case 2: bytes = Uint8Array.from([...b.subarray(0, i), ...r.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0x22], [0x5b], [0x7d]]), ...b.subarray(i)]); break;
      default: b[i] ^= 1 << r.int(8); bytes = b;
    }
  }
  return bytes;
}

test("safetensors fuzz: 100k mutated headers, no crash, nothing invalid accepted, bounded memory", () => {
  const seed = fuzzSeed(1515);
  const r = new Prng(seed);
  const cases = fuzzCases(100_000);
  const rss0 = process.memoryUsage().rss;
  let accepted = 0, rejected = 0;
  const t0 = Date.now();
  for (let c = 0; c < cases; c++) {
    const { obj, dataLength: len } = validHeader(r);
    const rounds = r.chance(0.15) ? 0 : 1 + r.int(3);
    for (let k = 0; k < rounds; k++) mutate(r, obj);
    const bytes = serialize(r, obj);
    const dataLength = r.chance(0.1) ? Math.max(0, len + r.pick([-1, 1, -4, 8])) : len;
    const expected = oracle(bytes, dataLength);
    let got: ReturnType<typeof parseHeader> | undefined;
    try {
      got = parseHeader(bytes, dataLength, "fuzz.safetensors");
    } catch (e) {
      if (!(e instanceof SafetensorsError)) assert.fail(`seed ${seed} case ${c}: ${(e as Error)?.constructor?.name}: ${(e as Error).message}\n${new TextDecoder().decode(bytes).slice(0, 300)}`);
      assert.match(e.message, /^fuzz\.safetensors: /);
    }
    const what = () => `seed ${seed} case ${c} (data ${dataLength} bytes): ${new TextDecoder().decode(bytes).slice(0, 400)}`;
    if (got) {
      accepted++;
      assert.ok(expected, `accepted an invalid header, ${what()}`);
      assert.deepEqual(new Map(got.tensors.map((t) => [t.name, [t.begin, t.end]])), expected, what());
    } else {
      rejected++;
      assert.equal(expected, undefined, `rejected a valid header, ${what()}`);
    }
  }
  const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
  console.log(`safetensors fuzz: ${cases} cases (seed ${seed}) in ${Date.now() - t0} ms: ${accepted} accepted, ${rejected} rejected; rss +${grown.toFixed(0)} MiB`);
  assert.ok(accepted > cases / 20 && rejected > cases / 2, `too few of one kind: ${accepted} accepted, ${rejected} rejected`);
  assert.ok(grown < 256, `rss grew ${grown.toFixed(0)} MiB`);
});

test("safetensors fuzz: files with damaged length fields and truncation are refused with a SafetensorsError", () => {
  const dir = mkdtempSync(join(tmpdir(), "st-fuzz-"));
  const r = new Prng(fuzzSeed(77));
  try {
    const f = join(dir, "f.safetensors");
    for (let c = 0; c < fuzzCases(300); c++) {
      const { obj, dataLength } = validHeader(r);
      const header = enc.encode(JSON.stringify(obj));
      const file = new Uint8Array(8 + header.length + dataLength);
      const view = new DataView(file.buffer);
      const len = r.pick([BigInt(header.length), 0n, 1n, 7n, BigInt(header.length + 1), BigInt(header.length - 1), BigInt(MAX_HEADER_BYTES + 1), 2n ** 63n, 2n ** 64n - 1n, BigInt(file.length)]);
      view.setBigUint64(0, len, true);
      file.set(header, 8);
      const cut = r.chance(0.3) ? r.int(file.length + 1) : file.length;
      writeFileSync(f, file.subarray(0, cut));
      let ok = false;
      try {
        readHeader(f);
        ok = true;
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `case ${c}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
        assert.ok((e as Error).message.startsWith(f), (e as Error).message);
      }
      assert.equal(ok, len === BigInt(header.length) && cut === file.length, `case ${c}: length ${len}, cut ${cut} of ${file.length}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The header bytes of a file with these tensors (JSON given as text, so it can be anything). */
const headerOf = (json: string) => enc.encode(json);
const refusedHeader = (json: string, dataLength: number, re: RegExp) =>
  assert.throws(() => parseHeader(headerOf(json), dataLength, "m.safetensors"), (e: Error) => e instanceof SafetensorsError && /^m\.safetensors: /.test(e.message) && re.test(e.message));

test("safetensors regressions: negative, reversed, overlapping and gapped offsets; bad shapes and metadata", () => {
  const t = (offsets: string, shape = "[2]", dtype = "F32") => `{"dtype":"${dtype}","shape":${shape},"data_offsets":${offsets}}`;
  refusedHeader(`{"w":${t("[-8,0]")}}`, 8, /data_offsets must be \[begin, end\] non-negative integers, got \[-8,0\]/); // would read header bytes as weights
  refusedHeader(`{"w":${t("[8,0]")}}`, 8, /end before they begin/);
  refusedHeader(`{"w":${t("[0.5,8.5]")}}`, 9, /non-negative integers/);
  refusedHeader(`{"w":${t("[0,1e400]")}}`, 8, /non-negative integers/);
  refusedHeader(`{"a":${t("[0,8]")},"b":${t("[4,12]")}}`, 12, /tensor "b" \[4, 12\] overlaps the tensor before it \(which ends at 8\)/);
  refusedHeader(`{"a":${t("[0,8]")},"b":${t("[0,8]")}}`, 8, /overlaps/);
  refusedHeader(`{"a":${t("[0,8]")},"b":${t("[12,20]")}}`, 20, /gap in the data: bytes 8\.\.12/);
  refusedHeader(`{"a":${t("[0,8]")}}`, 9, /1 bytes after the last tensor/);
  refusedHeader(`{"a":${t("[0,8]")}}`, 7, /truncated: tensor "a" ends at data byte 8/);
  refusedHeader(`{"w":${t("[0,8]", "[-2,-1]")}}`, 8, /shape must be a list of non-negative integers/);
  refusedHeader(`{"w":${t("[0,8]", "[3]")}}`, 8, /has 8 bytes, but shape \[3\] F32 needs 12/);
  refusedHeader(`{"w":${t("[0,8]", "[4294967296,4294967296,4294967296]")}}`, 8, /needs 316912650057057350374175801344/);
  refusedHeader(`{"w":${t("[0,8]", "[2]", "F8")}}`, 8, /unknown dtype "F8"/);
  refusedHeader(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, 8, /exactly dtype, shape and data_offsets/);
  refusedHeader(`{"__metadata__":["pt"]}`, 0, /__metadata__ must be an object/);
  refusedHeader(`{"__metadata__":{"n":1}}`, 0, /__metadata__ value "n" is not a string/);
  refusedHeader(`[]`, 0, /does not start with "{"/);
  refusedHeader(` {}`, 0, /does not start with "{"/);
  refusedHeader(`{} []`, 0, /not JSON/);
  refusedHeader(`{"w":`, 0, /not JSON/);
  assert.throws(() => parseHeader(Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d), 0, "m"), /not valid UTF-8/);
  // valid: empty tensors anywhere in the tiling, metadata, any key order
  const ok = parseHeader(headerOf(`{"b":${t("[8,16]")},"e":${t("[8,8]", "[0]")},"__metadata__":{"format":"pt"},"a":${t("[0,8]")}}`), 16, "m");
  assert.deepEqual(ok.tensors.map((x) => [x.name, x.begin, x.end]), [["b", 8, 16], ["e", 8, 8], ["a", 0, 8]]);
  assert.deepEqual(ok.metadata, { format: "pt" });
});

test("safetensors regressions: a 20,000-deep shape and a 100 MB header are refused in milliseconds", () => {
  const deep = `{"w":{"dtype":"F32","shape":${"[".repeat(20_000)}${"]".repeat(20_000)},"data_offsets":[0,4]}}`;
  let t = performance.now();
  refusedHeader(deep, 4, /JSON nested deeper than 3 levels/);
  assert.ok(performance.now() - t < 100);
  const rss = process.memoryUsage().rss;
  const big = Buffer.alloc(100_000_000, 0x20);
  big.write(`{"w":{"dtype":"U8","shape":[${"1,".repeat(10_000_000)}1],"data_offsets":[0,1]}}`);
  t = performance.now();
  assert.throws(() => parseHeader(big, 1, "m"), /a JSON array with more than 64 elements/);
  const keys = Buffer.alloc(100_000_000, 0x20);
  keys.write(`{"__metadata__":{${Array.from({ length: 300_000 }, (_, i) => `"k${i}":""`).join(",")}}}`);
  assert.throws(() => parseHeader(keys, 0, "m"), /a JSON object with more than 200000 members/);
  const ms = performance.now() - t, mib = (process.memoryUsage().rss - rss) / 2 ** 20;
  console.log(`100 MB headers refused in ${ms.toFixed(0)} ms, rss +${mib.toFixed(0)} MiB (the header bytes are 2 x 95 MiB)`);
  assert.ok(ms < 5000 && mib < 1024, `${ms} ms, +${mib} MiB`);
});

test("safetensors regressions: a header length over the limit or past the end is refused before allocating", () => {
  const dir = mkdtempSync(join(tmpdir(), "st-len-"));
  try {
    const f = join(dir, "h.safetensors");
    const b = Buffer.alloc(64);
    for (const len of [2n ** 64n - 1n, BigInt(MAX_HEADER_BYTES) + 1n, 57n, 0n]) {
      b.writeBigUInt64LE(len, 0);
      writeFileSync(f, b);
      const rss = process.memoryUsage().rss;
      assert.throws(() => readHeader(f), new RegExp(`corrupt or truncated safetensors header \\(header length ${len}, limit ${MAX_HEADER_BYTES}, file size 64\\)`));
      assert.ok(process.memoryUsage().rss - rss < 32 << 20);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
