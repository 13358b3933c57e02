import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fixture, NO_FIXTURES } from "./helpers/fixtures.js";
import { SDXL_UNET, SSD1B_UNET, VEGA_UNET } from "../src/loaders/builtin-configs/unet.js";

// The built-in copies that let a single file load alone must be the published configs, field for field.
test("built-in UNet configs equal the published SDXL, SSD-1B and Vega configs", { skip: NO_FIXTURES }, () => {
  const published = (name: string) => JSON.parse(readFileSync(fixture("configs", name, "unet_config.json"), "utf8"));
  assert.deepEqual({ ...SDXL_UNET }, published("sdxl"));
  assert.deepEqual({ ...SSD1B_UNET }, published("ssd-1b"));
  assert.deepEqual({ ...VEGA_UNET }, published("vega"));
});
