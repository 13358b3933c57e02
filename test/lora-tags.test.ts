import { test } from "node:test";
import assert from "node:assert/strict";
import { LoraTagError, checkLoraNames, extractLoraTags, formatLoraTag, mergeLoraTags, stripLoraTags } from "../src/prompts/lora-tags.js";

const cases: { prompt: string; text: string; tags: [string, number][] }[] = [
  { prompt: "a castle on a hill", text: "a castle on a hill", tags: [] },
  { prompt: "a castle <lora:style:0.8>", text: "a castle", tags: [["style", 0.8]] },
  { prompt: "<lora:style>a castle", text: "a castle", tags: [["style", 1]] },
  { prompt: "a castle <lora:style:1> on a hill", text: "a castle on a hill", tags: [["style", 1]] },
  { prompt: "a castle, <lora:style:.5>, at dusk", text: "a castle,, at dusk", tags: [["style", 0.5]] },
  { prompt: "a castle<lora:style:2.>", text: "a castle", tags: [["style", 2]] },
  // spacing inside the tag
  { prompt: "a castle <lora: my style : 0.75 >", text: "a castle", tags: [["my style", 0.75]] },
  // negative weights, exponents, an explicit plus
  { prompt: "<lora:a:-0.5> <lora:b:+1.25> <lora:c:1e-1> x", text: "x", tags: [["a", -0.5], ["b", 1.25], ["c", 0.1]] },
  // several tags, the same name twice, a line break kept
  { prompt: "one <lora:a:0.3>\ntwo <lora:b> three <lora:a:0.2>", text: "one\ntwo three", tags: [["a", 0.3], ["b", 1], ["a", 0.2]] },
  // other extra networks and lookalikes are text
  { prompt: "a <hypernet:h:1> cat <lora x>", text: "a <hypernet:h:1> cat <lora x>", tags: [] },
  { prompt: "  <lora:only:1>  ", text: "", tags: [["only", 1]] },
];

for (const c of cases) {
  test(`lora tags: ${JSON.stringify(c.prompt)}`, () => {
    const got = extractLoraTags(c.prompt);
    assert.equal(got.text, c.text);
    assert.deepEqual(got.tags.map((t) => [t.name, t.weight]), c.tags);
    assert.equal(stripLoraTags(c.prompt), c.text);
  });
}

const bad: { prompt: string; error: RegExp }[] = [
  { prompt: "x <lora:style:abc>", error: /<lora:style:abc>: the LoRA weight must be a number like 0\.8, got "abc"/ },
  { prompt: "x <lora:style:>", error: /the LoRA weight must be a number/ },
  { prompt: "x <lora:style:Infinity>", error: /the LoRA weight must be a number/ },
  { prompt: "x <lora::1>", error: /<lora::1>: the LoRA name is missing/ },
  { prompt: "x <lora:style:0.5:x>", error: /the LoRA weight must be a number like 0\.8, got "x"/ },
  { prompt: "x <lora:a:1:2:3>", error: /too many ":"/ },
];

for (const c of bad) {
  test(`lora tags: ${JSON.stringify(c.prompt)} is refused clearly`, () => {
    assert.throws(() => extractLoraTags(c.prompt), (e: Error) => e instanceof LoraTagError && c.error.test(e.message));
  });
}

test("lora tags: <lora:NAME:TE:UNET> gives the text encoders (first) and the UNet (second) weights of their own, as A1111", () => {
  assert.deepEqual(extractLoraTags("x <lora:style:0.5:1>").tags, [{ name: "style", weight: 1, textEncoderWeight: 0.5 }]);
  assert.deepEqual(extractLoraTags("x <lora:style:0.7:0.7>").tags, [{ name: "style", weight: 0.7 }], "equal weights are one weight");
  assert.equal(formatLoraTag({ name: "style", weight: 1, textEncoderWeight: 0.5 }), "<lora:style:0.5:1>");
  // repeated names add up per component; a LoRA with one component at 0 stays
  assert.deepEqual(mergeLoraTags(extractLoraTags("<lora:s:0.5:1> <lora:s:0.25> <lora:t:1:0> <lora:u:0:0>").tags), [
    { name: "s", weight: 1.25, textEncoderWeight: 0.75 }, { name: "t", weight: 0, textEncoderWeight: 1 },
  ]);
});

test("lora tags: unknown names are refused with the list of what exists", () => {
  const { tags } = extractLoraTags("x <lora:styl:1>");
  assert.throws(() => checkLoraNames(tags, ["style", "anime"]), (e: Error) => e instanceof LoraTagError && e.message === `unknown LoRA "styl" (available: anime, style)`);
  assert.throws(() => checkLoraNames(tags, []), /unknown LoRA "styl" \(there are none\)/);
  checkLoraNames(extractLoraTags("<lora:style> <lora:anime:2>").tags, ["style", "anime"]);
});

test("lora tags: merging adds repeated names, drops weight 0 and sorts by name; tags format as A1111's", () => {
  const merged = mergeLoraTags(extractLoraTags("<lora:b:0.5> <lora:a:1> <lora:b:0.25> <lora:c:0> <lora:d:1> <lora:d:-1>").tags);
  assert.deepEqual(merged, [{ name: "a", weight: 1 }, { name: "b", weight: 0.75 }]);
  assert.equal(merged.map(formatLoraTag).join(" "), "<lora:a:1> <lora:b:0.75>");
  assert.deepEqual(mergeLoraTags([]), []);
});
