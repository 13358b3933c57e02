import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROJECT_ROOT, NO_FIXTURES } from "./helpers/fixtures.js";
import { fullSizeModelFolder } from "./helpers/full-size-model.js";
import { decodePng } from "../src/image/png.js";

const CLI = join(PROJECT_ROOT, "dist/src/cli/main.js");

// The real-size path end to end: a full SSD-1B (fp16 variant, as users download it) through the CLI.
test("full-size synth SSD-1B (fp16) generates a 512x512 image in 2 steps through the CLI", { skip: NO_FIXTURES, timeout: 20 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "ssd-1b-full-"));
  try {
    fullSizeModelFolder(dir, "ssd-1b");
    let r = spawnSync(process.execPath, [CLI, "synth", dir, "--dtype", "fp16"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    for (const c of ["unet", "vae"]) assert.ok(existsSync(join(dir, c, "diffusion_pytorch_model.fp16.safetensors")));
    for (const c of ["text_encoder", "text_encoder_2"]) assert.ok(existsSync(join(dir, c, "model.fp16.safetensors")));
    const out = join(dir, "astronaut.png");
    r = spawnSync(process.execPath, [CLI, "generate", "--model", dir, "--variant", "fp16", "--prompt", "An astronaut riding a green horse",
      "--negative-prompt", "ugly, blurry, poor quality", "--steps", "2", "--seed", "42", "--width", "512", "--height", "512", "--output", out], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const png = decodePng(readFileSync(out));
    assert.equal(png.width, 512);
    assert.equal(png.height, 512);
    // Synth weights draw no real picture, but the pixels must vary (not a constant or NaN-black image).
    const values = new Set(png.data);
    assert.ok(values.size > 16, `only ${values.size} distinct channel values`);
    assert.match(png.text.parameters ?? "", /Steps: 2, Sampler: .*Seed: 42, Size: 512x512/);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith(".png")), ["astronaut.png"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
