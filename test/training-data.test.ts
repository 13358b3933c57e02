/** The training data layer: folders with captions, clear errors, and the scripts' transforms with SDXL micro-conditioning. */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scanImageFolder } from "../src/training/data/dataset.js";
import { crop, flipHorizontal, resizeShorterSide, toModelInput } from "../src/training/data/image-ops.js";
import { prepareSample } from "../src/training/data/sample.js";
import { TrainingRng } from "../src/training/rng.js";
import { circleDataset } from "./training-helpers.js";

const tmp = mkdtempSync(join(tmpdir(), "training-data-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

test("image folder: captions from .txt files or metadata.jsonl; a fixed instance prompt needs none", () => {
  const txt = circleDataset(join(tmp, "txt"), "txt");
  const items = scanImageFolder(txt);
  assert.equal(items.length, 8);
  assert.equal(items[0].caption, "a red circle");
  const meta = circleDataset(join(tmp, "meta"), "metadata", (n) => `${n} disc`);
  assert.deepEqual(scanImageFolder(meta).map((i) => i.caption).slice(0, 2), ["red disc", "green disc"]);
  assert.ok(scanImageFolder(meta, { fixedCaption: "sks dog" }).every((i) => i.caption === "sks dog"));
});

test("image folder: empty, missing, uncaptioned and truncated-JPEG datasets fail with the files named", () => {
  assert.throws(() => scanImageFolder(join(tmp, "nope")), /dataset folder not found/);
  mkdirSync(join(tmp, "empty"));
  writeFileSync(join(tmp, "empty", "notes.txt"), "x");
  assert.throws(() => scanImageFolder(join(tmp, "empty")), /empty dataset, no images found/);
  const d = circleDataset(join(tmp, "missing"), "txt");
  unlinkSync(join(d, "3.txt"));
  assert.throws(() => scanImageFolder(d), /missing captions for 1 of 8 image\(s\): 3\.png/);
  const m = circleDataset(join(tmp, "meta-missing"), "metadata");
  writeFileSync(join(m, "metadata.jsonl"), JSON.stringify({ file_name: "0.png", text: "a" }) + "\n");
  assert.throws(() => scanImageFolder(m), /missing captions for 7 of 8/);
  writeFileSync(join(m, "metadata.jsonl"), JSON.stringify({ file_name: "0.png", caption: "a" }) + "\n");
  assert.throws(() => scanImageFolder(m), /no caption column "text" \(columns: file_name, caption\)/);
  const j = circleDataset(join(tmp, "jpeg"), "txt");
  writeFileSync(join(j, "8.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0, 0, 0]));
  writeFileSync(join(j, "8.txt"), "x");
  assert.throws(() => scanImageFolder(j), /8\.jpg: truncated JPEG \(no end-of-image marker\)/);
});

const solid = (w: number, h: number, f: (x: number, y: number) => [number, number, number]) => {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(f(x, y), (y * w + x) * 3);
  return { width: w, height: h, data };
};

test("transforms: shorter side resize (torchvision sizes), crop, flip, [-1, 1] CHW", () => {
  const img = solid(40, 32, (x) => [x < 20 ? 0 : 255, 128, 255]);
  const r = resizeShorterSide(img, 16);
  assert.deepEqual([r.width, r.height], [20, 16]);
  assert.deepEqual([...r.data.subarray(0, 3)], [0, 128, 255]); // flat regions keep their value
  assert.equal(r.data[(8 * 20 + 19) * 3], 255);
  assert.deepEqual([resizeShorterSide(solid(30, 45, () => [0, 0, 0]), 20).width, resizeShorterSide(solid(30, 45, () => [0, 0, 0]), 20).height], [20, 30]);
  const c = crop(img, 2, 3, 4, 5);
  assert.deepEqual([c.width, c.height], [5, 4]);
  const f = flipHorizontal(img);
  assert.equal(f.data[0], 255);
  const t = toModelInput(solid(1, 1, () => [0, 255, 128]));
  assert.deepEqual([...t], [-1, 1, Math.fround(Math.fround(Math.fround(128 / 255) - 0.5) / 0.5)]);
});

test("sample: SDXL micro-conditioning records original size, crop corner and target size", () => {
  const d = circleDataset(join(tmp, "sample"), "txt");
  const item = scanImageFolder(d)[0];
  const centre = prepareSample(item, { resolution: 16, centerCrop: true, randomFlip: false }, new TrainingRng(0));
  // 40x32 → 20x16; centre crop x1 = round((20 - 16) / 2) = 2
  assert.deepEqual(centre.timeIds, [32, 40, 0, 2, 16, 16]);
  assert.equal(centre.pixels.length, 3 * 16 * 16);
  const corners = new Set<number>();
  const rng = new TrainingRng(3);
  for (let i = 0; i < 40; i++) corners.add(prepareSample(item, { resolution: 16, centerCrop: false, randomFlip: true }, rng).timeIds[3]);
  assert.deepEqual([...corners].sort(), [0, 1, 2, 3, 4], "random crop covers every left offset");
});
