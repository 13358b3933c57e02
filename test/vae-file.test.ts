/**
 * Standalone VAE files (loaders/vae-file.ts): the LDM-named file A1111 and ComfyUI keep in models/VAE,
 * a diffusers weights file out of its folder, a checkpoint's first_stage_model: each opens with the
 * config its tensors show, and a pipeline given one as `vae` makes the images of the folder VAE.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NO_FIXTURES, diff } from "./helpers/fixtures.js";
import { tinyModelIn } from "./helpers/tiny-model.js";
import { saveTensors } from "../src/safetensors/index.js";
import { tinyVaeFile } from "./helpers/tiny-vae-file.js";
import { openVaeFile } from "../src/loaders/vae-file.js";
import { StableDiffusionXLPipeline } from "../src/pipelines/sdxl/index.js";

const tmp = mkdtempSync(join(tmpdir(), "vae-file-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ldmFile = (name: string, prefix = "", drop?: string) => tinyVaeFile(tmp, join(tmp, name), { prefix, drop });

test("VAE files: LDM names, diffusers names and a checkpoint's first_stage_model open with the config their tensors show", { skip: NO_FIXTURES }, () => {
  const folderConfig = JSON.parse(readFileSync(join(tinyModelIn(tmp), "vae", "config.json"), "utf8"));
  const diffusersFile = join(tmp, "diffusers-vae.safetensors");
  copyFileSync(join(tinyModelIn(tmp), "vae", "diffusion_pytorch_model.safetensors"), diffusersFile);
  for (const file of [ldmFile("sdxl_vae.safetensors"), diffusersFile, ldmFile("ckpt.safetensors", "first_stage_model.")]) {
    const w = openVaeFile(file);
    for (const key of ["block_out_channels", "layers_per_block", "latent_channels", "in_channels", "out_channels", "scaling_factor", "norm_num_groups", "down_block_types", "up_block_types"]) {
      assert.deepEqual(w.config[key], folderConfig[key], `${file}: ${key}`);
    }
    // the weights behind a diffusers key are the folder's
    const entry = w.source.lookup("decoder.up_blocks.0.resnets.0.conv1.weight", []);
    assert.ok(entry, file);
  }
  assert.throws(() => openVaeFile(join(tmp, "x.pt")), /only \.safetensors VAE files/);
  const notVae = join(tmp, "lora.safetensors");
  saveTensors(notVae, { "lora_unet_x.lora_down.weight": { dtype: "F32", shape: [1], data: new Float32Array(1) } });
  assert.throws(() => openVaeFile(notVae), /not a VAE file: no decoder\.up\.\* \(LDM\) or decoder\.up_blocks\.\* \(diffusers\) tensors/);
  assert.throws(() => openVaeFile(ldmFile("broken.safetensors", "", "decoder.conv_in.weight")), /no decoder\.conv_in\.weight tensor; the VAE is incomplete/);
});

test("VAE files: a pipeline given an LDM VAE file as vae makes the folder VAE's images (img2img: encoder and decoder); withVae swaps one in and out", { skip: NO_FIXTURES, timeout: 120_000 }, async () => {
  const model = tinyModelIn(tmp);
  const file = ldmFile("sdxl_vae.safetensors");
  const image = { width: 32, height: 32, data: Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37) % 256) };
  const call = { prompt: "a lighthouse", image, strength: 0.7, numInferenceSteps: 3, seed: 4, scheduler: "Euler" as const };
  const base = await StableDiffusionXLPipeline.fromPretrained(model);
  const ref = await base.img2img(call);
  const withFile = await StableDiffusionXLPipeline.fromPretrained(model, { vae: file });
  const got = await withFile.img2img(call);
  await withFile.release();
  assert.ok(diff(got.images.data, ref.images.data).relL2 < 1e-6, `relL2 ${diff(got.images.data, ref.images.data).relL2}`);
  // the file is read, not the folder's weights: another VAE changes the image
  const scaled = tinyVaeFile(tmp, join(tmp, "scaled.safetensors"), { shift: 0.25 });
  const other = await StableDiffusionXLPipeline.fromPretrained(model, { vae: scaled });
  const moved = await other.img2img(call);
  await other.release();
  assert.ok(diff(moved.images.data, ref.images.data).relL2 > 1e-2);
  // withVae: the loaded pipeline with the other VAE for one call; releasing it leaves the base working
  const swapped = await base.withVae(scaled);
  assert.deepEqual((await swapped.img2img(call)).images.data, moved.images.data);
  await swapped.release();
  assert.deepEqual((await base.img2img(call)).images.data, ref.images.data);
  await base.release();
});
