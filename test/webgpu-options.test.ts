import { test } from "node:test";
import assert from "node:assert/strict";
import { webgpuOverrides, webgpuProvider } from "../src/runtime/webgpu-options.js";

test("webgpu provider options: onnxruntime's defaults unless SSD1B_WEBGPU_* say otherwise; a bad value names the variable", () => {
  assert.deepEqual(webgpuProvider({}), { name: "webgpu" });
  assert.equal(webgpuOverrides({}), "");
  const env = { SSD1B_WEBGPU_LAYOUT: "NHWC", SSD1B_WEBGPU_VALIDATION: "disabled", SSD1B_WEBGPU_BUFFER_CACHE: "simple" };
  assert.deepEqual(webgpuProvider(env), { name: "webgpu", preferredLayout: "NHWC", validationMode: "disabled", storageBufferCacheMode: "simple" });
  assert.equal(webgpuOverrides(env), "preferredLayout NHWC, validationMode disabled, storageBufferCacheMode simple");
  assert.deepEqual(webgpuProvider({ SSD1B_WEBGPU_LAYOUT: "" }), { name: "webgpu" }, "empty: unset");
  assert.throws(() => webgpuProvider({ SSD1B_WEBGPU_LAYOUT: "nhwc" }), /SSD1B_WEBGPU_LAYOUT=nhwc: must be one of NCHW, NHWC/);
  assert.throws(() => webgpuProvider({ SSD1B_WEBGPU_VALIDATION: "off" }), /SSD1B_WEBGPU_VALIDATION=off: must be one of disabled, wgpuOnly, basic, full/);
});
